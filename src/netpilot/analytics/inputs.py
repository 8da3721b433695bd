"""Series for the analytics commands: a CSV of ``timestamp,value[,label]`` or telemetry Parquet, checked, with
errors that name the file, line and column."""

from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from netpilot.errors import InputError, read_utf8
from netpilot.telemetry.schema import parse_timestamp


@dataclass
class Series:
    """One series in input order. ``values`` may hold NaN for a missing sample; ``timestamps`` are UTC."""

    name: str
    timestamps: list[datetime]
    values: np.ndarray
    entity: str | None = None
    metric: str | None = None

    def step_seconds(self) -> float:
        """The median spacing of the timestamps (irregular series are fine; this is only for labelling)."""
        if len(self.timestamps) < 2:
            return 60.0
        gaps = np.diff([t.timestamp() for t in self.timestamps])
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else 60.0


def read_series(path: str | Path) -> list[Series]:
    """A CSV with a header naming ``timestamp`` and ``value`` (other columns, ``label`` included, are never
    read), or telemetry Parquet (``timestamp, entity, metric, value``), one series per entity and metric."""
    path = Path(path)
    if not path.exists():
        raise InputError.at("no such file", file=path)
    if path.suffix.lower() == ".parquet":
        return _read_parquet(path)
    return [_read_csv(path)]


def _read_csv(path: Path) -> Series:
    with io.StringIO(read_utf8(path), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError.at("empty file; expected a header timestamp,value[,label]", file=path, line=1)
        names = [h.strip().lower() for h in header]
        for column in ("timestamp", "value"):
            if column not in names:
                raise InputError.at(f"no {column!r} column in the header {header}", file=path, line=1)
        t_col, v_col = names.index("timestamp"), names.index("value")
        timestamps, values = [], []
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(t_col, v_col):
                raise InputError.at(f"{len(row)} field(s), expected at least {max(t_col, v_col) + 1}",
                                    file=path, line=line)
            timestamps.append(_timestamp(row[t_col], path, line))
            values.append(_number(row[v_col], path, line))
    if not values:
        raise InputError.at("no data rows after the header", file=path, line=2)
    return Series(path.stem, timestamps, np.array(values, dtype=float))


def _timestamp(text: str, path: Path, line: int) -> datetime:
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise InputError.at(f"timestamp {text.strip()!r}: {exc}", file=path, line=line, field="timestamp") from None


def _number(text: str, path: Path, line: int) -> float:
    text = text.strip()
    if text == "" or text.lower() in ("nan", "null", "na", "-"):
        return math.nan  # a gap: scored as missing, never a crash
    try:
        return float(text)
    except ValueError:
        raise InputError.at(f"value {text!r} is not a number", file=path, line=line, field="value") from None


def _read_parquet(path: Path) -> list[Series]:
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputError.at(f"not a readable Parquet file ({exc})", file=path) from None
    missing = {"timestamp", "entity", "metric", "value"} - set(table.column_names)
    if missing:
        raise InputError.at(f"lacks column(s) {sorted(missing)}; expected timestamp, entity, metric, value",
                            file=path)
    if not pa.types.is_timestamp(table["timestamp"].type):
        raise InputError.at(f"column timestamp is {table['timestamp'].type}, expected a timestamp", file=path,
                            field="timestamp")
    table = table.sort_by([("entity", "ascending"), ("metric", "ascending"), ("timestamp", "ascending")])
    entity = table["entity"].to_numpy(zero_copy_only=False)
    metric = table["metric"].to_numpy(zero_copy_only=False)
    values = table["value"].cast(pa.float64()).to_numpy(zero_copy_only=False)
    times = table["timestamp"].to_pylist()
    change = np.flatnonzero(np.r_[True, (entity[1:] != entity[:-1]) | (metric[1:] != metric[:-1]), True])
    out = []
    for start, stop in itertools.pairwise(change):
        e, m = str(entity[start]), str(metric[start])
        stamps = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times[start:stop]]
        out.append(Series(f"{e}|{m}", stamps, np.asarray(values[start:stop], dtype=float), e, m))
    return out
