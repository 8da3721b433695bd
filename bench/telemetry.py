"""Telemetry benchmarks: simulator speed, and ingestion rates into DuckDB, PostgreSQL and from NATS.

    python bench/telemetry.py                  # every section
    python bench/telemetry.py sim duckdb       # sections: sim, duckdb, postgres, nats
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from rich.console import Console
from rich.progress import Progress

from _results import run
from netpilot.model.sample import build_sample_network
from netpilot.telemetry.ingest import consume_sync, publish_sync
from netpilot.telemetry.schema import known_entities
from netpilot.telemetry.sim.run import simulate
from netpilot.telemetry.store import DuckDBStore, PostgresStore

ROOT = Path(__file__).resolve().parents[1]
REPETITA = ROOT.parent / "shared" / "data" / "te" / "repetita" / "2016TopologyZooUCL_inverseCapacity"
console = Console(width=250, soft_wrap=True)
results: dict[str, object] = {}
_cache: dict[str, object] = {}


def big_network():
    """Cogentco (197 routers) with two cells per router and four edge sites: 595 nodes."""
    if "network" not in _cache:
        _cache["network"] = build_sample_network(REPETITA / "Cogentco.graph", REPETITA / "Cogentco.0000.demands")
    return _cache["network"]


def day_of_samples():
    if "day" not in _cache:
        network = big_network()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("simulating 24 h", total=1440)
            started = time.perf_counter()
            result = simulate(network, hours=24, step_seconds=60, seed=1,
                              on_step=lambda i, n: progress.update(task, completed=i))
            seconds = time.perf_counter() - started
        _cache["day"] = (result, seconds)
    return _cache["day"]


def section_sim() -> None:
    network = big_network()
    result, seconds = day_of_samples()
    results["sim"] = {"nodes": len(network.nodes), "links": len(network.links), "demands": len(network.demands),
                      "steps": 1440, "seconds": seconds, "samples": result.samples.num_rows}
    console.print("\n### Simulator: 24 h at 1-minute steps\n")
    console.print("| network | nodes | links | demands | samples | seconds | target |\n|---|---|---|---|---|---|---|")
    console.print(f"| Cogentco + access layer | {len(network.nodes)} | {len(network.links)} | {len(network.demands)} "
                  f"| {result.samples.num_rows:,} | {seconds:.1f} | ≤ 10 s |")


def _rate(store, table, batch: int = 200_000) -> tuple[float, int]:
    started = time.perf_counter()
    stored = 0
    for offset in range(0, table.num_rows, batch):
        stored += store.write(table.slice(offset, batch))
    return table.num_rows / (time.perf_counter() - started), stored


def section_duckdb() -> None:
    result, _ = day_of_samples()
    table = result.samples.slice(0, 2_000_000)
    with TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "bench.duckdb")
        rate, stored = _rate(store, table)
        replay_rate, _ = _rate(store, table)
        store.close()
    results["duckdb"] = {"rows": table.num_rows, "samples_per_s": rate, "replay_samples_per_s": replay_rate,
                         "stored": stored}
    console.print(f"\n### DuckDB ingestion ({table.num_rows:,} samples, batches of 200,000)\n\n"
                  f"| first write | replay of the same (all duplicates) | target |\n|---|---|---|\n"
                  f"| {rate:,.0f} samples/s | {replay_rate:,.0f} samples/s | ≥ 1,000,000 samples/s |")


def section_postgres() -> None:
    result, _ = day_of_samples()
    table = result.samples.slice(0, 500_000)
    store = PostgresStore("postgresql://postgres@127.0.0.1:5432/test", schema=f"bench_{uuid.uuid4().hex[:8]}")
    try:
        rate, stored = _rate(store, table, batch=100_000)
        replay_rate, replay_stored = _rate(store, table, batch=100_000)
        count = store.count()
    finally:
        store.drop()
        store.close()
    keys = table.group_by(["ts", "entity", "metric"]).aggregate([]).num_rows
    results["postgres"] = {"rows": table.num_rows, "samples_per_s": rate, "stored": stored,
                           "replay_samples_per_s": replay_rate, "replay_stored": replay_stored,
                           "distinct_keys": keys, "count_after_replay": count}
    console.print(f"\n### PostgreSQL ingestion ({table.num_rows:,} samples, COPY of integer ids + upsert in batches "
                  f"of 100,000)\n\n| first write | replay (all duplicates) | stored | stored by the replay | "
                  f"distinct keys | target |\n|---|---|---|---|---|---|\n| {rate:,.0f} samples/s | "
                  f"{replay_rate:,.0f} samples/s | {stored:,} | {replay_stored:,} | {keys:,} | "
                  f"≥ 200,000 samples/s |")


def section_nats() -> None:
    result, _ = day_of_samples()
    network = big_network()
    table = result.samples.slice(0, 200_000)
    ts = table.column("ts").to_pylist()
    records = [{"timestamp": t.isoformat(), "entity": e, "metric": m, "value": v}
               for t, e, m, v in zip(ts, table.column("entity").to_pylist(), table.column("metric").to_pylist(),
                                     table.column("value").to_pylist())]
    tag = uuid.uuid4().hex[:8]
    subject, stream = f"npbench.{tag}", f"NPBENCH_{tag}"
    url = "nats://127.0.0.1:4222"
    started = time.perf_counter()
    publish_sync(url, records, subject=subject, stream=stream, per_message=500)
    published = time.perf_counter()
    store = DuckDBStore()
    report = consume_sync(url, store, known_entities(network), subject=subject, stream=stream, durable=tag,
                          batch=64, idle_seconds=1.0)
    consumed = time.perf_counter() - 1.0  # the consumer waits one idle second before it stops
    count = store.count()
    import asyncio

    async def cleanup() -> None:
        import nats
        nc = await nats.connect(url)
        await nc.jetstream().delete_stream(stream)
        await nc.close()
    asyncio.run(cleanup())
    consume_rate = len(records) / (consumed - published)
    end_to_end = len(records) / (consumed - started)
    results["nats"] = {"records": len(records), "consume_samples_per_s": consume_rate,
                       "end_to_end_samples_per_s": end_to_end, "stored": count, "dead": report.dead,
                       "lost": len(records) - count - report.dead}
    console.print(f"\n### NATS JetStream → DuckDB ({len(records):,} samples, 500 per message)\n\n"
                  f"| consume + store | publish + consume + store | stored | lost | target |\n|---|---|---|---|---|\n"
                  f"| {consume_rate:,.0f} samples/s | {end_to_end:,.0f} samples/s | {count:,} | "
                  f"{len(records) - count - report.dead} | ≥ 100,000 samples/s, zero loss |")


SECTIONS = {"sim": section_sim, "duckdb": section_duckdb, "postgres": section_postgres, "nats": section_nats}


def main(argv: list[str]) -> None:
    run("telemetry", SECTIONS, argv or list(SECTIONS), results)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
