"""Where telemetry is kept: one small interface, DuckDB embedded by default, PostgreSQL as the server option.

Writes are idempotent on ``(ts, entity, metric)``: the same sample written twice (a replay, a redelivery after a
restart) is stored once, with the last value. Samples travel as Arrow tables with columns ``ts`` (UTC
timestamps), ``entity``, ``metric``, ``value``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from netpilot.errors import InputError
from netpilot.telemetry.schema import DeadLetter, Event, FaultRecord, Sample

SAMPLE_SCHEMA = pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("entity", pa.string()),
                           ("metric", pa.string()), ("value", pa.float64())])


def samples_table(ts: Iterable[datetime] | np.ndarray, entity: list[str], metric: list[str],
                  value: np.ndarray | list[float]) -> pa.Table:
    return pa.table({"ts": pa.array(list(ts) if not isinstance(ts, np.ndarray) else ts,
                                    type=pa.timestamp("us", tz="UTC")),
                     "entity": pa.array(entity, pa.string()), "metric": pa.array(metric, pa.string()),
                     "value": pa.array(np.asarray(value, dtype=float), pa.float64())}, schema=SAMPLE_SCHEMA)


def table_of(samples: list[Sample]) -> pa.Table:
    return samples_table([s.ts for s in samples], [s.entity for s in samples], [s.metric for s in samples],
                         [s.value for s in samples])



def _complete(samples: pa.Table) -> pa.Table:
    """``samples`` when every row has a time, entity, metric and value; else an InputError naming the first row
    and field missing one (a store keeps no half sample, and the batch is refused whole)."""
    for name in ("ts", "entity", "metric", "value"):
        column = samples.column(name)
        if column.null_count:
            row = next(i for i, missing in enumerate(column.is_null().to_pylist()) if missing)
            raise InputError.at(f"row {row}: no {name} (a sample needs a time, entity, metric and value)",
                                field=name)
    return samples

class Store(Protocol):
    """The telemetry store interface every backend implements. ``write`` returns how many samples were new
    (the rest were duplicates of stored ones, or of each other, and updated in place)."""

    def write(self, samples: pa.Table) -> int: ...
    def query(self, entity: str, metric: str, start: datetime | None = None,
              end: datetime | None = None) -> tuple[np.ndarray, np.ndarray]: ...
    def latest(self, entity: str | None = None, metric: str | None = None) -> list[Sample]: ...
    def between(self, start: datetime, end: datetime) -> list[Sample]: ...
    def retention(self, before: datetime) -> int: ...
    def write_events(self, events: list[Event]) -> int: ...
    def events(self, start: datetime | None = None, end: datetime | None = None) -> list[Event]: ...
    def write_faults(self, faults: list[FaultRecord]) -> int: ...
    def faults(self) -> list[FaultRecord]: ...
    def dead_letter(self, letters: list[DeadLetter]) -> int: ...
    def dead_letters(self) -> list[DeadLetter]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


_TABLES = """
CREATE TABLE IF NOT EXISTS samples (ts TIMESTAMPTZ NOT NULL, entity VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    value DOUBLE PRECISION NOT NULL, PRIMARY KEY (ts, entity, metric));
CREATE TABLE IF NOT EXISTS events (ts TIMESTAMPTZ NOT NULL, entity VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    severity VARCHAR NOT NULL, text VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS faults (fault_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, target VARCHAR NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL, end_ts TIMESTAMPTZ, params VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (received TIMESTAMPTZ NOT NULL, source VARCHAR NOT NULL,
    reason VARCHAR NOT NULL, raw VARCHAR NOT NULL);
"""


def _distinct(letters: list[DeadLetter]) -> list[DeadLetter]:
    """One letter per (source, reason, record), the first received."""
    seen: dict[tuple[str, str, str], DeadLetter] = {}
    for letter in letters:
        seen.setdefault((letter.source, letter.reason, letter.raw), letter)
    return list(seen.values())


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DuckDBStore:
    """The embedded default: one DuckDB file (or ``:memory:``)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        import duckdb

        self.path = str(path)
        self.db = duckdb.connect(self.path)
        self.db.execute("SET TimeZone = 'UTC'")
        # No primary-key index on samples: DuckDB's per-row index upkeep costs more than the anti-join in
        # ``write``, which finds existing keys by scanning only the batch's time range (zone maps skip the rest).
        self.db.execute(_TABLES.replace(",\n    value DOUBLE PRECISION NOT NULL, PRIMARY KEY (ts, entity, metric))",
                                        ",\n    value DOUBLE PRECISION NOT NULL)"))

    def write(self, samples: pa.Table) -> int:
        if samples.num_rows == 0:
            return 0
        batch = _complete(samples.cast(SAMPLE_SCHEMA))
        self.db.register("incoming", batch)
        try:
            self.db.execute("BEGIN TRANSACTION")
            # Last write wins within the batch too (a duplicate inside one delivery).
            self.db.execute("""CREATE OR REPLACE TEMP TABLE batch AS
                SELECT ts, entity, metric, last(value ORDER BY rownum) AS value FROM
                  (SELECT *, row_number() OVER () AS rownum FROM incoming) GROUP BY ts, entity, metric""")
            ((low, high),) = self.db.execute("SELECT CAST(min(ts) AS TIMESTAMP), CAST(max(ts) AS TIMESTAMP) "
                                             "FROM batch").fetchall()
            low, high = _utc(low), _utc(high)
            self.db.execute("""CREATE OR REPLACE TEMP TABLE existing AS
                SELECT b.ts, b.entity, b.metric, b.value FROM batch b JOIN
                  (SELECT ts, entity, metric FROM samples WHERE ts BETWEEN ? AND ?) s
                  USING (ts, entity, metric)""", [low, high])
            self.db.execute("""UPDATE samples SET value = e.value FROM existing e
                WHERE samples.ts = e.ts AND samples.entity = e.entity AND samples.metric = e.metric
                  AND samples.ts BETWEEN ? AND ?""", [low, high])
            ((new,),) = self.db.execute("""SELECT count(*) FROM batch ANTI JOIN existing
                USING (ts, entity, metric)""").fetchall()
            self.db.execute("""INSERT INTO samples SELECT * FROM batch ANTI JOIN existing USING (ts, entity, metric)""")
            self.db.execute("COMMIT")
        except Exception:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.unregister("incoming")
        return int(new)

    def query(self, entity: str, metric: str, start: datetime | None = None,
              end: datetime | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps as datetime64[us] UTC, values), in time order, ``start <= ts < end``."""
        sql = "SELECT epoch_us(ts) AS us, value FROM samples WHERE entity = ? AND metric = ?"
        params: list[object] = [entity, metric]
        if start is not None:
            sql += " AND ts >= ?"
            params.append(_utc(start))
        if end is not None:
            sql += " AND ts < ?"
            params.append(_utc(end))
        columns = self.db.execute(sql + " ORDER BY ts", params).fetchnumpy()
        return np.asarray(columns["us"], dtype="int64").astype("datetime64[us]"), np.asarray(columns["value"], float)

    def between(self, start: datetime, end: datetime) -> list[Sample]:
        """Every sample with ``start <= ts < end`` (one tick of every entity, for the loop)."""
        rows = self.db.execute("SELECT CAST(ts AS TIMESTAMP), entity, metric, value FROM samples "
                               "WHERE ts >= ? AND ts < ? ORDER BY ts", [_utc(start), _utc(end)]).fetchall()
        return [Sample(_utc(ts), e, m, v) for ts, e, m, v in rows]

    def latest(self, entity: str | None = None, metric: str | None = None) -> list[Sample]:
        where, params = _filters(entity, metric)
        rows = self.db.execute(f"""SELECT CAST(ts AS TIMESTAMP), entity, metric, value FROM samples {where}
            QUALIFY row_number() OVER (PARTITION BY entity, metric ORDER BY ts DESC) = 1
            ORDER BY entity, metric""", params).fetchall()
        return [Sample(_utc(ts), e, m, v) for ts, e, m, v in rows]

    def retention(self, before: datetime) -> int:
        ((count,),) = self.db.execute("SELECT count(*) FROM samples WHERE ts < ?", [_utc(before)]).fetchall()
        self.db.execute("DELETE FROM samples WHERE ts < ?", [_utc(before)])
        self.db.execute("DELETE FROM events WHERE ts < ?", [_utc(before)])
        return int(count)

    def write_events(self, events: list[Event]) -> int:
        if events:
            self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                                [(_utc(e.ts), e.entity, e.kind, e.severity, e.text) for e in events])
        return len(events)

    def events(self, start: datetime | None = None, end: datetime | None = None) -> list[Event]:
        rows = self.db.execute("SELECT CAST(ts AS TIMESTAMP), entity, kind, severity, text FROM events "
                               "WHERE ts >= ? AND ts < ? "
                               "ORDER BY ts, entity", [_utc(start) or datetime.min.replace(tzinfo=UTC),
                                                       _utc(end) or datetime.max.replace(tzinfo=UTC)]).fetchall()
        return [Event(_utc(r[0]), *r[1:]) for r in rows]

    def write_faults(self, faults: list[FaultRecord]) -> int:
        if faults:
            self.db.executemany("INSERT OR REPLACE INTO faults VALUES (?, ?, ?, ?, ?, ?)",
                                [(f.fault_id, f.kind, f.target, _utc(f.start), _utc(f.end), json.dumps(f.params))
                                 for f in faults])
        return len(faults)

    def faults(self) -> list[FaultRecord]:
        rows = self.db.execute("SELECT fault_id, kind, target, CAST(start_ts AS TIMESTAMP), CAST(end_ts AS TIMESTAMP), "
                               "params FROM faults ORDER BY start_ts, fault_id").fetchall()
        return [FaultRecord(r[0], r[1], r[2], _utc(r[3]), _utc(r[4]), json.loads(r[5])) for r in rows]

    def dead_letter(self, letters: list[DeadLetter]) -> int:
        """Store each letter once: a replay of the same source, reason and record adds nothing."""
        letters = _distinct(letters)
        if letters:
            self.db.executemany("INSERT INTO dead_letters SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM "
                                "dead_letters WHERE source = ? AND reason = ? AND raw = ?)",
                                [(_utc(d.received), d.source, d.reason, d.raw, d.source, d.reason, d.raw)
                                 for d in letters])
        return len(letters)

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.db.execute("SELECT CAST(received AS TIMESTAMP), source, reason, raw FROM dead_letters "
                               "ORDER BY received").fetchall()
        return [DeadLetter(_utc(r[0]), r[1], r[2], r[3]) for r in rows]

    def count(self) -> int:
        ((count,),) = self.db.execute("SELECT count(*) FROM samples").fetchall()
        return int(count)

    def close(self) -> None:
        self.db.close()


def _filters(entity: str | None, metric: str | None, placeholder: str = "?") -> tuple[str, list[object]]:
    clauses, params = [], []
    if entity is not None:
        clauses.append(f"entity = {placeholder}")
        params.append(entity)
    if metric is not None:
        clauses.append(f"metric = {placeholder}")
        params.append(metric)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


_PG_TABLES = """
CREATE TABLE IF NOT EXISTS events (ts TIMESTAMPTZ NOT NULL, entity TEXT NOT NULL, kind TEXT NOT NULL,
    severity TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faults (fault_id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL, end_ts TIMESTAMPTZ, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (received TIMESTAMPTZ NOT NULL, source TEXT NOT NULL,
    reason TEXT NOT NULL, raw TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS metrics (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS points (ts TIMESTAMPTZ NOT NULL, entity_id INTEGER NOT NULL, metric_id INTEGER NOT NULL,
    value DOUBLE PRECISION NOT NULL, PRIMARY KEY (ts, entity_id, metric_id));
CREATE OR REPLACE VIEW samples AS SELECT p.ts, e.name AS entity, m.name AS metric, p.value
    FROM points p JOIN entities e ON e.id = p.entity_id JOIN metrics m ON m.id = p.metric_id;
"""

# PostgreSQL's binary COPY format: a header, per row a field count and each field as (length, big-endian value),
# a trailer. timestamptz travels as microseconds since 2000-01-01 UTC.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY_TRAILER = b"\xff\xff"
_PG_COPY_ROW = np.dtype([("fields", ">i2"), ("ts_len", ">i4"), ("ts", ">i8"), ("entity_len", ">i4"),
                         ("entity_id", ">i4"), ("metric_len", ">i4"), ("metric_id", ">i4"), ("value_len", ">i4"),
                         ("value", ">f8")])
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in microseconds since 1970-01-01


def _unique_violation() -> type[Exception]:
    from psycopg.errors import UniqueViolation

    return UniqueViolation


class PostgresStore:
    """PostgreSQL (psycopg 3): samples keyed by ``(ts, entity_id, metric_id)`` with small name tables, written
    by binary COPY into a temporary table, then a plain INSERT of the rows newer than anything stored and one
    upsert of the rest.

    The key used to be ``(ts, entity, metric)`` over text, and the upsert into that B-tree was the cost of
    ingestion (142,000 samples/s); integer ids make it a third of the width and compare without collation.
    A store made by that schema is migrated when opened (one transaction: names into the id tables, every
    row copied, the counts compared, the old table dropped only if they agree). ``samples`` remains as a view
    with the old columns for anyone reading with SQL. ``schema`` keeps netpilot's tables apart (tests use a
    throw-away schema per run).
    """

    def __init__(self, dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres", schema: str = "netpilot") -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - only without the extra
            raise RuntimeError("the PostgreSQL store needs psycopg: pip install 'netpilot[postgres]'") from exc
        check_schema_name(schema)
        self.schema = schema
        self.db = psycopg.connect(dsn, autocommit=False)
        self._ids: dict[str, dict[str, int]] = {"entities": {}, "metrics": {}}
        with self.db.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cur.execute(f"SET search_path TO {schema}")
            # Serialise schema set-up and migration between stores opening at once.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"netpilot-store:{schema}"])
            old = self._text_keyed_samples(cur)
            if old:
                cur.execute("ALTER TABLE samples RENAME TO samples_text_keyed")
            cur.execute(_PG_TABLES)
            if old:
                self._migrate(cur)
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS incoming_points (ts TIMESTAMPTZ, entity_id INTEGER, "
                        "metric_id INTEGER, value DOUBLE PRECISION) ON COMMIT DELETE ROWS")
        self.db.commit()

    @staticmethod
    def _text_keyed_samples(cur) -> bool:
        """Whether this schema holds a ``samples`` table of the first layout (text entity and metric)."""
        (kind,) = cur.execute("""SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relname = 'samples'""").fetchone() or (None,)
        return kind == "r"

    @staticmethod
    def _migrate(cur) -> None:
        cur.execute("INSERT INTO entities (name) SELECT DISTINCT entity FROM samples_text_keyed "
                    "ON CONFLICT (name) DO NOTHING")
        cur.execute("INSERT INTO metrics (name) SELECT DISTINCT metric FROM samples_text_keyed "
                    "ON CONFLICT (name) DO NOTHING")
        cur.execute("""INSERT INTO points (ts, entity_id, metric_id, value)
            SELECT s.ts, e.id, m.id, s.value FROM samples_text_keyed s
            JOIN entities e ON e.name = s.entity JOIN metrics m ON m.name = s.metric
            ON CONFLICT (ts, entity_id, metric_id) DO UPDATE SET value = EXCLUDED.value""")
        (before,) = cur.execute("SELECT count(*) FROM samples_text_keyed").fetchone()
        (after,) = cur.execute("SELECT count(*) FROM points").fetchone()
        if after < before:
            raise RuntimeError(f"migrating the samples table to integer keys copied {after} of {before} rows; "
                               "nothing was changed (the transaction is rolled back)")
        cur.execute("DROP TABLE samples_text_keyed")

    def _name_ids(self, cur, table: str, names: list[str]) -> np.ndarray:
        """Ids of ``names`` in ``entities`` or ``metrics``, adding the new ones (cached per connection)."""
        known = self._ids[table]
        new = [name for name in names if name not in known]
        if new:
            cur.execute(f"INSERT INTO {table} (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING",
                        [new])
            for name, ident in cur.execute(f"SELECT name, id FROM {table} WHERE name = ANY(%s)", [new]):
                known[name] = ident
        return np.fromiter((known[name] for name in names), dtype=np.int64, count=len(names))

    def _codes(self, cur, table: str, column: pa.ChunkedArray) -> np.ndarray:
        encoded = column.combine_chunks().dictionary_encode()
        ids = self._name_ids(cur, table, encoded.dictionary.to_pylist())
        return ids[encoded.indices.to_numpy(zero_copy_only=False)]

    def write(self, samples: pa.Table) -> int:
        if samples.num_rows == 0:
            return 0
        samples = _complete(samples.cast(SAMPLE_SCHEMA))  # the binary COPY would store a missing value as NaN
        try:
            new = self._write(samples)
        except BaseException:
            self.db.rollback()  # the connection stays usable, and nothing of the batch is kept
            self._ids = {"entities": {}, "metrics": {}}  # names the batch added are gone with it
            raise
        self.db.commit()
        return new

    def _write(self, samples: pa.Table) -> int:
        with self.db.cursor() as cur:
            entity = self._codes(cur, "entities", samples.column("entity"))
            metric = self._codes(cur, "metrics", samples.column("metric"))
            ts = samples.column("ts").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
            value = samples.column("value").to_numpy()
            # Within a batch the last write of a key wins: keep each key's last row (a stable sort by key, then
            # the last of each run), so the upsert needs no DISTINCT ON.
            order = np.lexsort((metric, entity, ts))
            key_ts, key_e, key_m = ts[order], entity[order], metric[order]
            last = np.ones(len(order), dtype=bool)
            last[:-1] = (key_ts[1:] != key_ts[:-1]) | (key_e[1:] != key_e[:-1]) | (key_m[1:] != key_m[:-1])
            keep = order[last]
            key_ts = key_ts[last]
            # Binary COPY: the rows are laid out in PostgreSQL's wire format by NumPy (times as microseconds
            # since 2000-01-01, what timestamptz is on the wire), so neither side formats or parses text.
            rows = np.empty(len(keep), dtype=_PG_COPY_ROW)
            rows["fields"], rows["ts_len"], rows["entity_len"], rows["metric_len"], rows["value_len"] = 4, 8, 4, 4, 8
            rows["ts"] = key_ts - _PG_EPOCH_US
            rows["entity_id"], rows["metric_id"], rows["value"] = entity[keep], metric[keep], value[keep]
            with cur.copy("COPY incoming_points (ts, entity_id, metric_id, value) FROM STDIN WITH (FORMAT binary)") \
                    as copy:
                copy.write(_PG_COPY_HEADER + rows.tobytes() + _PG_COPY_TRAILER)
            # Telemetry mostly arrives newer than anything stored: those rows cannot conflict, and a plain INSERT
            # costs ~0.6 of an upsert (no speculative insertion). Rows at or before the newest stored time go
            # through the upsert. A concurrent writer storing newer rows first makes the plain INSERT fail on the
            # key: it is rolled back to the savepoint and the whole batch upserted instead, so a replay or a race
            # still stores every key once, last write winning.
            (newest,) = cur.execute("SELECT (extract(epoch FROM max(ts)) * 1000000)::bigint FROM points").fetchone()
            fresh = len(key_ts) if newest is None else int(np.count_nonzero(key_ts > newest))
            new = 0
            if fresh:
                where = "" if fresh == len(key_ts) else \
                    " WHERE ts > timestamptz 'epoch' + %s * interval '1 microsecond'"
                try:
                    with self.db.transaction():  # a savepoint
                        new = cur.execute("INSERT INTO points (ts, entity_id, metric_id, value) SELECT ts, entity_id, "
                                          "metric_id, value FROM incoming_points" + where,
                                          [newest] if where else None).rowcount
                except _unique_violation():
                    fresh, new = 0, 0
            if fresh < len(key_ts):
                where = " WHERE ts <= timestamptz 'epoch' + %s * interval '1 microsecond'" if fresh else ""
                # xmax = 0 marks a row that was inserted rather than updated; a replay of the same value writes
                # nothing (no new row version, no WAL).
                (upserted,) = cur.execute(f"""WITH upserted AS (
                    INSERT INTO points (ts, entity_id, metric_id, value)
                    SELECT ts, entity_id, metric_id, value FROM incoming_points{where}
                    ON CONFLICT (ts, entity_id, metric_id) DO UPDATE SET value = EXCLUDED.value
                    WHERE points.value IS DISTINCT FROM EXCLUDED.value
                    RETURNING (xmax = 0) AS inserted)
                    SELECT count(*) FILTER (WHERE inserted) FROM upserted""", [newest] if where else None).fetchone()
                new += upserted
        return int(new)

    def query(self, entity: str, metric: str, start: datetime | None = None,
              end: datetime | None = None) -> tuple[np.ndarray, np.ndarray]:
        sql = "SELECT ts, value FROM samples WHERE entity = %s AND metric = %s"
        params: list[object] = [entity, metric]
        if start is not None:
            sql += " AND ts >= %s"
            params.append(_utc(start))
        if end is not None:
            sql += " AND ts < %s"
            params.append(_utc(end))
        with self.db.cursor() as cur:
            rows = cur.execute(sql + " ORDER BY ts", params).fetchall()
        self.db.commit()
        ts = np.array([r[0].astimezone(UTC).replace(tzinfo=None) for r in rows], dtype="datetime64[us]")
        return ts, np.array([r[1] for r in rows], dtype=float)

    def between(self, start: datetime, end: datetime) -> list[Sample]:
        """Every sample with ``start <= ts < end``."""
        with self.db.cursor() as cur:
            rows = cur.execute("SELECT ts, entity, metric, value FROM samples WHERE ts >= %s AND ts < %s "
                               "ORDER BY ts", [_utc(start), _utc(end)]).fetchall()
        self.db.commit()
        return [Sample(_utc(ts), e, m, v) for ts, e, m, v in rows]

    def latest(self, entity: str | None = None, metric: str | None = None) -> list[Sample]:
        where, params = _filters(entity, metric, "%s")
        with self.db.cursor() as cur:
            rows = cur.execute(f"""SELECT DISTINCT ON (entity, metric) ts, entity, metric, value FROM samples {where}
                ORDER BY entity, metric, ts DESC""", params).fetchall()
        self.db.commit()
        return [Sample(_utc(ts), e, m, v) for ts, e, m, v in rows]

    def retention(self, before: datetime) -> int:
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM points WHERE ts < %s", [_utc(before)])
            count = cur.rowcount
            cur.execute("DELETE FROM events WHERE ts < %s", [_utc(before)])
        self.db.commit()
        return int(count)

    def _many(self, sql: str, rows: list[tuple]) -> int:
        if rows:
            with self.db.cursor() as cur:
                cur.executemany(sql, rows)
            self.db.commit()
        return len(rows)

    def write_events(self, events: list[Event]) -> int:
        return self._many("INSERT INTO events VALUES (%s, %s, %s, %s, %s)",
                          [(_utc(e.ts), e.entity, e.kind, e.severity, e.text) for e in events])

    def events(self, start: datetime | None = None, end: datetime | None = None) -> list[Event]:
        with self.db.cursor() as cur:
            rows = cur.execute("SELECT ts, entity, kind, severity, text FROM events WHERE ts >= %s AND ts < %s "
                               "ORDER BY ts, entity", [_utc(start) or datetime.min.replace(tzinfo=UTC),
                                                       _utc(end) or datetime.max.replace(tzinfo=UTC)]).fetchall()
        self.db.commit()
        return [Event(_utc(r[0]), *r[1:]) for r in rows]

    def write_faults(self, faults: list[FaultRecord]) -> int:
        return self._many("""INSERT INTO faults VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (fault_id) DO UPDATE
            SET kind = EXCLUDED.kind, target = EXCLUDED.target, start_ts = EXCLUDED.start_ts,
                end_ts = EXCLUDED.end_ts, params = EXCLUDED.params""",
                          [(f.fault_id, f.kind, f.target, _utc(f.start), _utc(f.end), json.dumps(f.params))
                           for f in faults])

    def faults(self) -> list[FaultRecord]:
        with self.db.cursor() as cur:
            rows = cur.execute("SELECT * FROM faults ORDER BY start_ts, fault_id").fetchall()
        self.db.commit()
        return [FaultRecord(r[0], r[1], r[2], _utc(r[3]), _utc(r[4]), json.loads(r[5])) for r in rows]

    def dead_letter(self, letters: list[DeadLetter]) -> int:
        """Store each letter once: a replay of the same source, reason and record adds nothing."""
        return self._many("INSERT INTO dead_letters SELECT %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM "
                          "dead_letters WHERE source = %s AND reason = %s AND raw = %s)",
                          [(_utc(d.received), d.source, d.reason, d.raw, d.source, d.reason, d.raw)
                           for d in _distinct(letters)])

    def dead_letters(self) -> list[DeadLetter]:
        with self.db.cursor() as cur:
            rows = cur.execute("SELECT * FROM dead_letters ORDER BY received").fetchall()
        self.db.commit()
        return [DeadLetter(_utc(r[0]), r[1], r[2], r[3]) for r in rows]

    def count(self) -> int:
        with self.db.cursor() as cur:
            (n,) = cur.execute("SELECT count(*) FROM points").fetchone()
        self.db.commit()
        return int(n)

    def drop(self) -> None:
        """Remove this store's schema and everything in it."""
        with self.db.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def open_store(url: str | Path) -> Store:
    """A store from a location: ``postgresql://...`` (optionally ``?schema=name``), ``duckdb:///path.db``, or a
    plain path to a DuckDB file. DuckDB URLs follow SQLAlchemy's convention: three slashes for a path relative to
    the working directory (``duckdb:///netpilot.duckdb``), four for an absolute one (``duckdb:////var/np.duckdb``),
    and ``duckdb://`` or ``duckdb:///:memory:`` for a store in memory."""
    text = str(url)
    if text.startswith("duckdb:"):
        text = duckdb_path(text)
    if text.startswith(("postgresql://", "postgres://")):
        dsn, schema = split_schema(text, default="netpilot")
        return PostgresStore(dsn, schema=schema)
    return DuckDBStore(text)


def duckdb_path(url: str) -> str:
    """The file a ``duckdb://`` URL names (SQLAlchemy's convention), or ``:memory:``."""
    if not url.startswith("duckdb://"):
        raise ValueError(f"{url!r}: a DuckDB URL is duckdb:///relative/path or duckdb:////absolute/path")
    rest = url[len("duckdb://"):]
    if not rest:
        return ":memory:"
    host, slash, path = rest.partition("/")
    if host or not slash:
        raise ValueError(f"{url!r}: a DuckDB URL has no host (duckdb:///relative/path or "
                         "duckdb:////absolute/path)")
    return path or ":memory:"


def check_schema_name(schema: str) -> None:
    """A PostgreSQL schema name netpilot will put in SQL: lower-case letters, digits and _ only."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters, digits and _")


def split_schema(url: str, *, default: str) -> tuple[str, str]:
    """``postgresql://...?schema=name&...`` -> (the DSN without ``schema``, the schema name or ``default``)."""
    base, _, query = url.partition("?")
    schema, rest = default, []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        if key == "schema":
            schema = value
        else:
            rest.append(part)
    return base + ("?" + "&".join(rest) if rest else ""), schema
