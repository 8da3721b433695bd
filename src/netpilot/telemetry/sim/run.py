"""A whole simulation run: step the simulator, collect samples and events, write them as Parquet."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from netpilot.model.faults import Fault
from netpilot.model.frame import METRIC_NAMES, entity_names, sample_codes
from netpilot.model.network import Network
from netpilot.telemetry.schema import Event, FaultRecord
from netpilot.telemetry.sim.simulator import Simulator
from netpilot.telemetry.store import SAMPLE_SCHEMA


@dataclass
class SimulationResult:
    samples: pa.Table
    events: list[Event]
    truth: list[FaultRecord]
    overload: list[float] = field(default_factory=list)  # Mbit/s above capacity per step

    def events_table(self) -> pa.Table:
        return pa.table({"ts": pa.array([e.ts for e in self.events], pa.timestamp("us", tz="UTC")),
                         "entity": [e.entity for e in self.events], "kind": [e.kind for e in self.events],
                         "severity": [e.severity for e in self.events], "text": [e.text for e in self.events]})


def simulate(network: Network, *, hours: float, step_seconds: float = 60.0, faults: list[Fault] | None = None,
             seed: int = 0, on_step: Callable[[int, int], None] | None = None) -> SimulationResult:
    sim = Simulator(network, seed=seed, step_seconds=step_seconds, faults=faults)
    steps = round(hours * 3600 / step_seconds)
    ts_parts, entity_parts, metric_parts, value_parts = [], [], [], []
    events: list[Event] = []
    overload = []
    for i in range(steps):
        result = sim.step()
        entities, metrics, values = sample_codes(sim, result)
        ts_parts.append(np.full(len(values), np.datetime64(result.ts.replace(tzinfo=None), "us")))
        entity_parts.append(entities)
        metric_parts.append(metrics)
        value_parts.append(values)
        events.extend(result.events)
        overload.append(result.overload)
        if on_step is not None:
            on_step(i + 1, steps)

    def spelled(parts: list[np.ndarray], names: list[str] | tuple[str, ...]) -> pa.Array:
        codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(names))).cast(
            pa.string())

    ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, dtype="datetime64[us]")
    table = pa.table({"ts": pa.array(ts, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
                      "entity": spelled(entity_parts, entity_names(sim)),
                      "metric": spelled(metric_parts, METRIC_NAMES),
                      "value": pa.array(np.concatenate(value_parts) if value_parts else [], pa.float64())},
                     schema=SAMPLE_SCHEMA)
    return SimulationResult(table, events, list(sim.truth), overload)


def write_result(result: SimulationResult, out: Path) -> dict[str, Path]:
    """``out`` (samples), ``out``.events.parquet and ``out``.faults.json (the ground truth, kept apart)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    paths = {"samples": out, "events": stem.with_name(stem.name + ".events.parquet"),
             "faults": stem.with_name(stem.name + ".faults.json")}
    samples = result.samples.combine_chunks().rename_columns(["timestamp", "entity", "metric", "value"])
    pq.write_table(samples, paths["samples"], compression="zstd")
    events = result.events_table()
    pq.write_table(events.rename_columns(["timestamp", *events.column_names[1:]]), paths["events"],
                   compression="zstd")
    paths["faults"].write_text(json.dumps([
        {"fault_id": f.fault_id, "kind": f.kind, "target": f.target, "start": f.start.isoformat(),
         "end": f.end.isoformat() if f.end else None, "params": f.params} for f in result.truth], indent=1) + "\n")
    return paths


__all__ = ["SimulationResult", "simulate", "write_result"]
