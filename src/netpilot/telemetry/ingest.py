"""Getting telemetry in: file replay (CSV, Parquet) and a NATS JetStream consumer. Good records are stored,
bad ones go to the dead-letter table with the reason and the record as it came; both are counted."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from netpilot.errors import InputError, read_utf8
from netpilot.telemetry.schema import (
    CATALOGUE,
    DeadLetter,
    Sample,
    check_record,
    entity_kind,
    parse_timestamp,
    ratio_ceiling,
)
from netpilot.telemetry.store import SAMPLE_SCHEMA, Store, table_of

DEFAULT_SUBJECT = "netpilot.telemetry"
DEFAULT_STREAM = "NETPILOT_TELEMETRY"


@dataclass
class IngestReport:
    """``accepted`` good records, of which ``stored`` were new and the rest ``duplicates`` (of stored samples or
    of each other: replays and redeliveries); ``dead`` went to the dead-letter table for ``reasons``."""

    accepted: int = 0
    dead: int = 0
    reasons: Counter = field(default_factory=Counter)
    stored: int = 0

    @property
    def duplicates(self) -> int:
        return self.accepted - self.stored

    def add(self, other: IngestReport) -> None:
        self.accepted += other.accepted
        self.dead += other.dead
        self.stored += other.stored
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "dead_lettered": self.dead, "duplicates": self.duplicates,
                "accepted": self.accepted, "reasons": dict(self.reasons)}


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0]


def ingest_records(records: Iterable[tuple[str, Any]], store: Store, entities: set[str] | None) -> IngestReport:
    """Check each ``(source, record)``; store the good ones in one write, dead-letter the rest."""
    records = list(records)
    fast = _as_table(records)
    if fast is not None:
        # Well-typed batches (the common case) are checked column-wise; anything odd takes the per-record path.
        good_table, dead = check_table(fast, entities, "batch")
        if not dead:
            stored = store.write(good_table)
            return IngestReport(good_table.num_rows, 0, Counter(), stored)
    good: list[Sample] = []
    dead: list[DeadLetter] = []
    now = datetime.now(UTC)
    for source, record in records:
        try:
            good.append(check_record(_normalise(record), entities))
        except ValueError as exc:
            dead.append(DeadLetter(now, source, str(exc), json.dumps(record, default=str)))
    stored = store.write(table_of(good))
    store.dead_letter(dead)
    return IngestReport(len(good), len(dead), Counter(_reason_key(d.reason) for d in dead), stored)


def _as_table(records: list[tuple[str, Any]]) -> pa.Table | None:
    if len(records) < 256 or not all(isinstance(r, dict) for _, r in records):
        return None
    try:
        table = pa.Table.from_pylist([r for _, r in records])
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None
    if not {"timestamp", "entity", "metric", "value"} <= set(table.column_names):
        return None
    if not (pa.types.is_floating(table.column("value").type) or pa.types.is_integer(table.column("value").type)):
        return None
    return table


def _normalise(record: Any) -> Any:
    if isinstance(record, dict) and "timestamp" not in record and "ts" in record:
        record = {**record, "timestamp": record["ts"]}
        del record["ts"]
    return record


def check_table(table: pa.Table, entities: set[str] | None, source: str,
                first_row: int = 1) -> tuple[pa.Table, list[DeadLetter]]:
    """The vectorised ``check_record`` for a whole Arrow table (a Parquet file): (good samples, dead letters)."""
    names = set(table.column_names)
    ts_name = "ts" if "ts" in names else "timestamp"
    missing = [c for c in (ts_name, "entity", "metric", "value") if c not in names]
    if missing:
        raise InputError.at(f"missing column(s) {', '.join(missing)}; expected ts (or timestamp), entity, metric, "
                            "value [, unit]", file=source)
    n = table.num_rows
    reason = np.full(n, "", dtype=object)

    def fail(mask: np.ndarray, text: str) -> None:
        hit = mask & (reason == "")
        reason[hit] = text

    ts = table.column(ts_name)
    if pa.types.is_timestamp(ts.type):
        ts = ts.cast(pa.timestamp("us", tz="UTC")) if ts.type.tz else \
            pc.assume_timezone(ts.cast(pa.timestamp("us")), "UTC")
    elif pa.types.is_string(ts.type) and _all_iso_with_offset(ts):
        ts = pc.strptime(ts, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=True)
    else:
        ts = pa.array([_timestamp_or_none(v) for v in ts.to_pylist()], pa.timestamp("us", tz="UTC"))
    fail(np.asarray(ts.is_null().to_numpy(zero_copy_only=False)), "timestamp: missing or unreadable")

    entity = table.column("entity").cast(pa.string())
    # The US spelling (utilization) is stored as the catalogue spells it.
    metric = pc.replace_substring(table.column("metric").cast(pa.string()), "utilization", "utilisation")
    fail(np.asarray(pc.or_(entity.is_null(), metric.is_null()).to_numpy(zero_copy_only=False)),
         "missing field(s): entity or metric")
    if entities is not None:
        known = pc.is_in(entity, value_set=pa.array(sorted(entities), pa.string()))
        fail(~np.asarray(pc.fill_null(known, False).to_numpy(zero_copy_only=False)), "entity: not in the network")
    pair = pc.binary_join_element_wise(pc.fill_null(entity, ""), pc.fill_null(metric, ""), "|")
    uniques = pc.unique(pair).to_pylist()
    units = {}
    for key in uniques:
        ent, _, met = key.partition("|")
        try:
            units[key] = CATALOGUE[(entity_kind(ent), met)].unit
        except (ValueError, KeyError):
            units[key] = None
    valid = np.array([units[k] is not None for k in uniques], dtype=bool)
    index = np.asarray(pc.index_in(pair, value_set=pa.array(uniques, pa.string())).to_numpy(zero_copy_only=False))
    fail(~valid[index], "entity/metric: unknown entity kind or metric")

    value = table.column("value")
    try:
        numbers = np.asarray(pc.cast(value, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A text column with some non-numbers: parse value by value so only the bad rows are dead-lettered.
        numbers = np.array([_to_float(v) for v in value.to_pylist()], dtype=float)
    fail(~np.isfinite(numbers), "value: not a finite number")
    metric_names = [k.partition("|")[2] for k in uniques]
    ceiling = np.array([ratio_ceiling(m) if units[k] == "ratio" else np.inf for k, m in zip(uniques, metric_names)],
                       dtype=float)[index]
    fail(((numbers < 0.0) & np.isfinite(ceiling)) | (numbers > ceiling), "value: a ratio out of its range")
    if "unit" in names:
        given = np.array(table.column("unit").cast(pa.string()).to_pylist(), dtype=object)
        expected = np.array([units[k] for k in uniques], dtype=object)[index]
        wrong = np.array([g not in (None, "") and g != e for g, e in zip(given, expected)], dtype=bool)
        fail(wrong, "unit: does not match the metric's unit")

    ok = reason == ""
    good = pa.table({"ts": ts.filter(pa.array(ok)), "entity": entity.filter(pa.array(ok)),
                     "metric": metric.filter(pa.array(ok)), "value": pa.array(numbers[ok], pa.float64())},
                    schema=SAMPLE_SCHEMA)
    now = datetime.now(UTC)
    bad_rows = np.flatnonzero(~ok)
    dead = []
    if len(bad_rows):
        raw_rows = table.take(pa.array(bad_rows)).to_pylist()
        dead = [DeadLetter(now, f"{source}:row {row + first_row}", str(reason[row]), json.dumps(raw, default=str))
                for row, raw in zip(bad_rows, raw_rows)]
    return good, dead


def _all_iso_with_offset(ts: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every value parses as ``YYYY-MM-DDTHH:MM:SS±HH:MM`` (what netpilot itself publishes)."""
    parsed = pc.strptime(ts, format="%Y-%m-%dT%H:%M:%S%z", unit="us", error_is_null=True)
    return parsed.null_count == ts.null_count


def _timestamp_or_none(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if value is not None else None
    except ValueError:
        return None


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def read_csv_records(path: Path) -> Iterator[tuple[str, dict]]:
    with io.StringIO(read_utf8(path), newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return
        for line, row in enumerate(reader, start=2):
            yield f"{path}:{line}", {k: (v if v != "" else None) for k, v in row.items() if k is not None}


def replay_file(path: str | Path, store: Store, entities: set[str] | None, *, batch: int = 50_000) -> IngestReport:
    """Store every good sample of a CSV or Parquet file (long form: ts/timestamp, entity, metric, value[, unit])."""
    path = Path(path)
    if not path.exists():
        raise InputError.at("no such file", file=path)
    report = IngestReport()
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        offset = 0
        try:
            parquet = pq.ParquetFile(path)
            for record_batch in parquet.iter_batches(batch_size=batch):
                table = pa.Table.from_batches([record_batch])
                good, dead = check_table(table, entities, str(path), first_row=offset + 1)
                stored = store.write(good)
                store.dead_letter(dead)
                report.add(IngestReport(good.num_rows, len(dead), Counter(_reason_key(d.reason) for d in dead),
                                        stored))
                offset += table.num_rows
        except (pa.ArrowException, OSError) as exc:  # corrupt or truncated: what came before it is stored
            raise InputError.at(f"not a readable Parquet file after row {offset} ({exc}); the rows before it "
                                "are stored", file=path) from None
        return report
    if path.suffix.lower() != ".csv":
        raise InputError.at("telemetry files are .csv or .parquet", file=path)
    chunk: list[tuple[str, dict]] = []
    for item in read_csv_records(path):
        chunk.append(item)
        if len(chunk) >= batch:
            report.add(ingest_records(chunk, store, entities))
            chunk = []
    if chunk:
        report.add(ingest_records(chunk, store, entities))
    return report


# --- NATS JetStream -----------------------------------------------------------------------------------------

async def _jetstream(url: str, stream: str, subject: str):
    try:
        import nats
        from nats.js.errors import NotFoundError
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise RuntimeError("NATS ingestion needs nats-py: pip install 'netpilot[nats]'") from exc
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=2)
    js = nc.jetstream()
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{subject}.>"])
    return nc, js


async def publish(url: str, records: Iterable[Any], *, subject: str = DEFAULT_SUBJECT,
                  stream: str = DEFAULT_STREAM, per_message: int = 100) -> int:
    """Publish records (JSON) to JetStream, ``per_message`` records to a message; returns messages sent."""
    nc, js = await _jetstream(url, stream, subject)
    sent = 0
    chunk: list[Any] = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= per_message:
                await js.publish(f"{subject}.samples", json.dumps(chunk, default=str).encode())
                sent, chunk = sent + 1, []
        if chunk:
            await js.publish(f"{subject}.samples", json.dumps(chunk, default=str).encode())
            sent += 1
    finally:
        await nc.close()
    return sent


async def consume(url: str, store: Store, entities: set[str] | None, *, subject: str = DEFAULT_SUBJECT,
                  stream: str = DEFAULT_STREAM, durable: str = "netpilot-ingest", batch: int = 64,
                  idle_seconds: float = 1.0, max_messages: int | None = None, ack: bool = True,
                  ack_wait_seconds: float = 30.0) -> IngestReport:
    """Pull messages from a durable JetStream consumer, store them, then acknowledge them.

    A message is acknowledged only after its samples (or its dead letters) are committed, so a crash of
    netpilot loses nothing: JetStream redelivers what was not acknowledged, and idempotent writes absorb the
    repeats. Stops after ``idle_seconds`` with nothing to read, or after ``max_messages``.
    ``ack=False`` reads without acknowledging (it stands for a crash between storing and acknowledging);
    ``ack_wait_seconds`` is how long JetStream waits for an acknowledgement before redelivering.
    """
    nc, js = await _jetstream(url, stream, subject)
    report = IngestReport()
    seen = 0
    try:
        from nats.js.api import ConsumerConfig

        sub = await js.pull_subscribe(f"{subject}.>", durable=durable,
                                      config=ConsumerConfig(ack_wait=ack_wait_seconds))
        while max_messages is None or seen < max_messages:
            want = batch if max_messages is None else min(batch, max_messages - seen)
            try:
                messages = await sub.fetch(want, timeout=idle_seconds)
            except TimeoutError:
                break
            items: list[tuple[str, Any]] = []
            unreadable: list[DeadLetter] = []
            for msg in messages:
                label = f"nats:{msg.subject}#{msg.metadata.sequence.stream}"
                try:
                    payload = json.loads(msg.data)
                except (ValueError, UnicodeDecodeError) as exc:
                    unreadable.append(DeadLetter(datetime.now(UTC), label, f"message: not JSON ({exc})",
                                                 msg.data.decode("utf-8", "replace")))
                    continue
                for record in payload if isinstance(payload, list) else [payload]:
                    items.append((label, record))
            report.add(ingest_records(items, store, entities))
            store.dead_letter(unreadable)
            report.add(IngestReport(0, len(unreadable), Counter("message" for _ in unreadable)))
            if ack:
                for msg in messages:
                    await msg.ack()
            seen += len(messages)
    finally:
        await nc.close()
    return report


def consume_sync(*args: Any, **kwargs: Any) -> IngestReport:
    return asyncio.run(consume(*args, **kwargs))


def publish_sync(*args: Any, **kwargs: Any) -> int:
    return asyncio.run(publish(*args, **kwargs))
