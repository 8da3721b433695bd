"""Old (main) and new PostgresStore alternating on the same 500,000 samples, batches of 100,000: first write
and replay, samples/s; rows stored checked each time."""

import importlib.util
import statistics
import sys
import time
import uuid

import pyarrow.parquet as pq

from netpilot.telemetry.store import PostgresStore as New

spec = importlib.util.spec_from_file_location("store_main", "/tmp/speed/store_main.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
Old = mod.PostgresStore
DSN = "postgresql://postgres@127.0.0.1:5432/test"
table = pq.read_table("/tmp/speed/samples.parquet")
keys = table.group_by(["ts", "entity", "metric"]).aggregate([]).num_rows


def rate(store, batch=100_000):
    t = time.perf_counter()
    stored = 0
    for off in range(0, table.num_rows, batch):
        stored += store.write(table.slice(off, batch))
    return table.num_rows / (time.perf_counter() - t), stored


res = {}
for rnd in range(int(sys.argv[1])):
    for name, cls in (("main", Old), ("speed", New)) if rnd % 2 == 0 else (("speed", New), ("main", Old)):
        store = cls(DSN, schema=f"pgcmp_{uuid.uuid4().hex[:8]}")
        try:
            first, s1 = rate(store)
            replay, s2 = rate(store)
            count = store.count()
        finally:
            store.drop()
            store.close()
        assert s1 == keys == count and s2 == 0, (s1, s2, count, keys)
        res.setdefault(name, []).append((first, replay))
        print(
            rnd,
            name,
            f"first {first:,.0f}/s replay {replay:,.0f}/s stored {s1:,} then {s2} count {count:,} keys {keys:,}",
            flush=True,
        )
for name, v in res.items():
    f = sorted(a for a, _ in v)
    r = sorted(b for _, b in v)
    print(
        name,
        f"first median {statistics.median(f):,.0f} min {f[0]:,.0f} max {f[-1]:,.0f} | "
        f"replay median {statistics.median(r):,.0f} min {r[0]:,.0f} max {r[-1]:,.0f}",
    )
print(
    "ratio of medians first",
    statistics.median(a for a, _ in res["speed"]) / statistics.median(a for a, _ in res["main"]),
    "replay",
    statistics.median(b for _, b in res["speed"]) / statistics.median(b for _, b in res["main"]),
)
