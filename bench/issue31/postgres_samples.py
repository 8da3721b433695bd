"""The telemetry benchmark's samples written to a Parquet file for the PostgreSQL ingest runs."""

import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import telemetry as T
from netpilot.telemetry.sim.run import simulate

t = time.perf_counter()
r = simulate(T.big_network(), hours=1, step_seconds=60, seed=1)
print("sim", time.perf_counter() - t, r.samples.num_rows)
pq.write_table(r.samples.slice(0, 500_000), "/tmp/speed/samples.parquet")
