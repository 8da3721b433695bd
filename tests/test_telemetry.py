"""Telemetry: the simulator and its faults, the stores (DuckDB and the real PostgreSQL), file and NATS ingestion
with dead letters, the Prometheus exporter, and the CLI."""

from __future__ import annotations

import asyncio
import csv
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import generate_latest
from typer.testing import CliRunner

from conftest import listening, postgres_available
from netpilot.cli import app
from netpilot.errors import InputError
from netpilot.model.faults import Fault, load_faults
from netpilot.model.io import load_network
from netpilot.model.sample import bundled_network_path
from netpilot.telemetry.exporter import registry_for
from netpilot.telemetry.ingest import consume_sync, ingest_records, publish_sync, replay_file
from netpilot.telemetry.schema import Event, FaultRecord, known_entities
from netpilot.telemetry.sim.run import simulate
from netpilot.telemetry.sim.simulator import Simulator
from netpilot.telemetry.store import DuckDBStore, PostgresStore, samples_table

runner = CliRunner()
T0 = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def network():
    return load_network(bundled_network_path())


def _link(sim: Simulator, a: str, b: str) -> int:
    return sim.link_ids.index(f"link:{a}->{b}")


def _run(network, faults, steps, seed=3):
    sim = Simulator(network, seed=seed, faults=faults)
    return sim, [sim.step() for _ in range(steps)]


# --- simulator --------------------------------------------------------------------------------------------

def test_same_seed_same_run_other_seed_other_run(network):
    a = simulate(network, hours=0.25, seed=5).samples
    b = simulate(network, hours=0.25, seed=5).samples
    c = simulate(network, hours=0.25, seed=6).samples
    assert a.equals(b)
    assert not np.allclose(a.column("value").to_numpy(), c.column("value").to_numpy())


def test_traffic_follows_the_daily_profile(network):
    sim = Simulator(network, seed=1, noise=0.0)
    by_hour = []
    for _ in range(24):
        by_hour.append(sim.step().cell_traffic.sum())
        sim.minute += 59  # jump to the next hour
    assert min(by_hour[2:7]) < 0.5 * max(by_hour[18:23])  # night is quieter than evening, as in the LTE cells


def test_link_down_moves_traffic_and_raises_then_clears_an_alarm(network):
    fault = Fault(kind="link_down", target=["DE", "AT"], at_minute=2, duration_minutes=3)
    sim, steps = _run(network, [fault], 7)
    _, quiet = _run(network, [], 7)
    e = _link(sim, "DE", "AT")
    assert steps[1].link_up[e] and not steps[2].link_up[e] and not steps[4].link_up[e] and steps[5].link_up[e]
    assert steps[3].link_load[e] == 0.0
    assert not np.allclose(steps[3].link_load, quiet[3].link_load)  # rerouted elsewhere
    raised = [ev for ev in steps[2].events if ev.kind == "link_down" and ev.severity == "critical"]
    assert {ev.entity for ev in raised} == {"link:DE->AT", "link:AT->DE"}
    assert any(ev.kind == "link_down" and ev.severity == "cleared" for ev in steps[5].events)
    (truth,) = sim.truth
    assert (truth.kind, truth.target, truth.start, truth.end) == ("link_down", "DE->AT", T0 + timedelta(minutes=2),
                                                                 T0 + timedelta(minutes=5))


def test_router_down_takes_its_links_and_demands(network):
    sim, steps = _run(network, [Fault(kind="router_down", target="MK", at_minute=1)], 3)
    node = sim.arrays.index["MK"]
    assert not steps[2].node_up[node]
    touching = (sim.arrays.src == node) | (sim.arrays.dst == node)
    assert not steps[2].link_up[touching].any()
    assert any(ev.kind == "node_down" and ev.entity == "node:MK" for ev in steps[1].events)


def test_degradation_loses_and_fills_the_link(network):
    fault = Fault(kind="link_degrade", target=["DE", "AT"], at_minute=1, loss=0.05, capacity_factor=0.5)
    sim, steps = _run(network, [fault], 3)
    _, quiet = _run(network, [], 3)
    e = _link(sim, "DE", "AT")
    assert steps[2].link_loss[e] >= 0.05
    assert steps[2].link_utilisation[e] == pytest.approx(2 * quiet[2].link_utilisation[e])
    assert any(ev.kind == "high_loss" and ev.entity == "link:DE->AT" for ev in steps[1].events)


def test_flapping_link_alternates(network):
    sim, steps = _run(network, [Fault(kind="link_flap", target=["DE", "AT"], at_minute=0, period_minutes=2)], 6)
    e = _link(sim, "DE", "AT")
    assert [bool(s.link_up[e]) for s in steps] == [False, True] * 3


def test_cell_outage_flash_crowd_and_edge_failure(network):
    cell = "DE-cell1"
    faults = [Fault(kind="cell_outage", target="DE-cell1", at_minute=1),
              Fault(kind="flash_crowd", target="FR-cell1", at_minute=1, multiplier=3.0),
              Fault(kind="edge_failure", target=network.nodes_of_kind("edge_site")[0].id, at_minute=1)]
    sim, steps = _run(network, faults, 2)
    _, quiet = _run(network, [], 2)
    c = sim.cell_ids.index(f"cell:{cell}")
    assert not steps[1].cell_up[c] and steps[1].cell_traffic[c] == 0.0
    f = sim.cell_ids.index("cell:FR-cell1")
    assert steps[1].cell_traffic[f] == pytest.approx(3.0 * quiet[1].cell_traffic[f])
    assert not steps[1].edge_up[0] and steps[1].edge_gpu[0] == 0.0
    assert {ev.kind for ev in steps[1].events} >= {"cell_down", "edge_site_down"}


def test_misconfigured_metric_shifts_traffic_silently(network):
    sim, steps = _run(network, [Fault(kind="misconfig", target=["DE", "AT"], at_minute=1, metric=60000)], 2)
    _, quiet = _run(network, [], 2)
    e = _link(sim, "DE", "AT")
    assert steps[1].link_load[e] < 0.5 * quiet[1].link_load[e]
    assert not any(ev.kind == "link_down" for ev in steps[1].events)


def test_routing_changes_while_running(network):
    sim = Simulator(network, seed=2)
    before = sim.step()
    e = _link(sim, "DE", "AT")
    heavier = sim.metric.copy()
    heavier[e] = 65000
    sim.set_metrics(heavier)
    after = sim.step()
    assert after.link_load[e] < before.link_load[e]


def _detour(sim: Simulator) -> tuple[str, str, str]:
    """Routers a, b with a demand and a direct link a->b, and c with links a->c->b."""
    ids, links = sim.arrays.node_ids, set(sim.link_ids)
    for a, b in sim.pairs:
        if sim.network.nodes[a].kind != "router" or sim.network.nodes[b].kind != "router":
            continue
        na, nb = ids[a], ids[b]
        if f"link:{na}->{nb}" not in links:
            continue
        for c in ids:
            if f"link:{na}->{c}" in links and f"link:{c}->{nb}" in links and c not in (na, nb):
                return na, nb, c
    raise AssertionError("the sample network has no detour")


def test_explicit_path_splits_carry_exactly_their_share(network):
    direct, detour = Simulator(network, seed=2, noise=0.0), Simulator(network, seed=2, noise=0.0)
    a, b, c = _detour(direct)
    direct.set_path_splits({(a, b): [([a, b], 1.0)]})
    detour.set_path_splits({(a, b): [([a, c, b], 0.25), ([a, b], 0.75)]})
    one, other = direct.step(), detour.step()
    p = int(np.flatnonzero((direct.pairs == [direct.arrays.index[a], direct.arrays.index[b]]).all(axis=1))[0])
    level = one.link_load[_link(direct, a, b)] - other.link_load[_link(direct, a, b)]
    moved = other.link_load[_link(direct, a, c)] - one.link_load[_link(direct, a, c)]
    assert level == pytest.approx(moved) and level > 0
    # The quarter that moved is a quarter of the pair's volume at this step.
    share_of_peak = direct.profile[0] / direct.profile.max()  # Monday 00:00, no noise
    assert level == pytest.approx(0.25 * direct.base_volume[p] * share_of_peak)
    # A failed path's share goes to the surviving one; with none left, the IGP takes over.
    detour.inject(Fault(kind="link_down", target=[a, c], at_minute=detour.minute))
    after = detour.step()
    assert after.link_load[_link(direct, a, c)] == 0.0


def test_fault_file_errors_name_the_line(tmp_path, network):
    path = tmp_path / "faults.yaml"
    path.write_text("faults:\n- {kind: link_down, target: [DE, AT], at_minute: 5}\n"
                    "- {kind: meteor_strike, target: DE, at_minute: 9}\n")
    with pytest.raises(InputError) as info:
        load_faults(path)
    problem = info.value.problems[0]
    assert problem.line == 3 and "kind" in (problem.field or "")
    path.write_text("- {kind: link_down, target: [DE, XX], at_minute: 5}\n")
    with pytest.raises(ValueError, match="no link between DE and XX"):
        Simulator(network, faults=load_faults(path))


# --- stores -----------------------------------------------------------------------------------------------

@pytest.fixture(params=["duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "duckdb":
        s = DuckDBStore(tmp_path / "t.duckdb")
        yield s
        s.close()
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    s = PostgresStore("postgresql://postgres@127.0.0.1:5432/test", schema=f"t_{uuid.uuid4().hex[:12]}")
    yield s
    s.drop()
    s.close()


def _table(rows):
    return samples_table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def test_a_batch_with_a_missing_value_is_refused_whole_and_the_store_goes_on(store):
    good = [(T0 + timedelta(minutes=i), "link:A->B", "utilisation", 0.1 * i) for i in range(3)]
    import pyarrow as pa

    from netpilot.telemetry.store import SAMPLE_SCHEMA

    bad = pa.table({"ts": [T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)],
                    "entity": ["link:C->D", "link:C->D"], "metric": ["utilisation", "utilisation"],
                    "value": [0.5, None]}).cast(SAMPLE_SCHEMA)  # a reading with no value: null, not NaN
    with pytest.raises(InputError, match="row 1: no value") as refused:
        store.write(bad)
    assert refused.value.problems[0].field == "value"
    assert store.write(_table(good)) == 3  # the connection is still usable
    assert len(store.query("link:C->D", "utilisation")[0]) == 0  # nothing of the refused batch was kept
    assert store.query("link:A->B", "utilisation")[1].tolist() == pytest.approx([0.0, 0.1, 0.2])


def test_store_writes_are_idempotent_and_queries_read_back(store):
    rows = [(T0 + timedelta(minutes=i), "link:A->B", "utilisation", 0.1 * i) for i in range(10)]
    assert store.write(_table(rows)) == 10
    store.write(_table(rows[3:6]))  # a replay
    store.write(_table([(T0 + timedelta(minutes=4), "link:A->B", "utilisation", 9.0)]))  # a correction
    assert store.count() == 10
    ts, values = store.query("link:A->B", "utilisation", T0 + timedelta(minutes=2), T0 + timedelta(minutes=6))
    assert list(np.round(values, 6)) == [0.2, 0.3, 9.0, 0.5]
    assert ts[0] == np.datetime64("2026-01-05T00:02:00")
    (latest,) = store.latest("link:A->B", "utilisation")
    assert latest.value == pytest.approx(0.9) and latest.ts == T0 + timedelta(minutes=9)
    window = store.between(T0 + timedelta(minutes=4), T0 + timedelta(minutes=5))  # one tick of everything
    assert [(s.ts, s.entity, s.value) for s in window] == [(T0 + timedelta(minutes=4), "link:A->B", 9.0)]
    assert store.retention(T0 + timedelta(minutes=5)) == 5
    assert store.count() == 5


def test_store_keeps_events_faults_and_dead_letters(store):
    store.write_events([Event(T0, "link:A->B", "link_down", "critical", "link down")])
    store.write_faults([FaultRecord("F1", "link_down", "A->B", T0, None, {"one_way": False})])
    from netpilot.telemetry.schema import DeadLetter
    store.dead_letter([DeadLetter(T0, "f.csv:3", "value: not a number", '{"value": "x"}')])
    assert store.events()[0].kind == "link_down"
    assert store.faults()[0].params == {"one_way": False}
    assert store.dead_letters()[0].source == "f.csv:3"


def test_duplicate_rows_inside_one_batch_keep_the_last(store):
    rows = [(T0, "cell:C", "users", 1.0), (T0, "cell:C", "users", 2.0)]
    store.write(_table(rows))
    assert store.query("cell:C", "users")[1].tolist() == [2.0]


def _postgres_schema() -> tuple[str, str]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    return "postgresql://postgres@127.0.0.1:5432/test", f"t_{uuid.uuid4().hex[:12]}"


def test_postgres_upsert_by_integer_ids_stores_a_replay_of_a_large_batch_once():
    dsn, schema = _postgres_schema()
    store = PostgresStore(dsn, schema=schema)
    try:
        n = 5_000
        entities = [f"link:{i % 97}->{(i * 7) % 89}" for i in range(n)]
        metrics = ["utilisation" if i % 3 else "drops" for i in range(n)]
        ts = [T0 + timedelta(minutes=i // 50) for i in range(n)]
        values = np.arange(n, dtype=float)
        keys = set(zip(ts, entities, metrics, strict=True))
        first = store.write(samples_table(ts, entities, metrics, values))
        assert first == len(keys) == store.count()
        # A replay, shuffled and with new values for a few keys: nothing new is stored, the corrections land.
        order = np.random.default_rng(3).permutation(n)
        replay = values.copy()
        replay[:10] += 1000.0
        assert store.write(samples_table([ts[i] for i in order], [entities[i] for i in order],
                                         [metrics[i] for i in order], replay[order])) == 0
        assert store.count() == len(keys)
        last = {}
        for i in range(n):
            last[(ts[i], entities[i], metrics[i])] = replay[i]
        (stamp, entity, metric), expected = next(iter(last.items()))
        _, got = store.query(entity, metric, stamp, stamp + timedelta(seconds=1))
        assert got.tolist() == [expected]
        # A second connection resolves names to the same ids (nothing cached per connection is assumed).
        other = PostgresStore(dsn, schema=schema)
        try:
            assert other.write(samples_table(ts[:100], entities[:100], metrics[:100], replay[:100])) == 0
            assert other.count() == len(keys)
        finally:
            other.close()
    finally:
        store.drop()
        store.close()


def test_postgres_batch_newer_than_the_store_and_overlapping_it_stores_each_key_once():
    dsn, schema = _postgres_schema()
    store = PostgresStore(dsn, schema=schema)
    try:
        old = [(T0 + timedelta(minutes=i), "link:A->B", "utilisation", float(i)) for i in range(5)]
        assert store.write(_table(old)) == 5
        # Minutes 3-4 are stored (one corrected), 5-7 are newer than anything stored: 3 new keys, 1 correction.
        mixed = [(T0 + timedelta(minutes=i), "link:A->B", "utilisation", 100.0 + i if i == 4 else float(i))
                 for i in range(3, 8)]
        assert store.write(_table(mixed)) == 3
        assert store.count() == 8
        assert store.query("link:A->B", "utilisation")[1].tolist() == [0.0, 1.0, 2.0, 3.0, 104.0, 5.0, 6.0, 7.0]
        assert store.write(_table(mixed)) == 0 and store.count() == 8  # a replay stores nothing
    finally:
        store.drop()
        store.close()


def test_postgres_writer_racing_another_for_the_newest_keys_falls_back_to_the_upsert():
    """Another connection stores keys newer than the store's newest time after this writer has looked: the plain
    INSERT meets them, is rolled back to its savepoint, and the batch is upserted (last write wins)."""
    import threading

    import psycopg

    dsn, schema = _postgres_schema()
    store = PostgresStore(dsn, schema=schema)
    rival = psycopg.connect(dsn, autocommit=False)
    try:
        assert store.write(_table([(T0, "cell:C", "users", 1.0)])) == 1
        later = [(T0 + timedelta(minutes=i), "cell:C", "users", float(i)) for i in range(1, 4)]
        # The rival inserts minute 2 and holds its transaction open, so the writer's INSERT waits on that key.
        entity_id, metric_id = (rival.execute(f"SELECT id FROM {schema}.{t} WHERE name = %s", [n]).fetchone()[0]
                                for t, n in (("entities", "cell:C"), ("metrics", "users")))
        rival.execute(f"INSERT INTO {schema}.points VALUES (%s, %s, %s, -1.0)", [later[1][0], entity_id, metric_id])
        (writer_pid,) = store.db.execute("SELECT pg_backend_pid()").fetchone()
        store.db.commit()
        stored: list[int] = []
        thread = threading.Thread(target=lambda: stored.append(store.write(_table(later))))
        thread.start()
        for _ in range(600):  # until the writer waits on the rival's row lock (at most a minute)
            (waiting,) = rival.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = "
                                       "'Lock'", [writer_pid]).fetchone()
            if waiting or not thread.is_alive():
                break
            threading.Event().wait(0.1)
        assert waiting, "the writer never waited on the rival's key"
        rival.commit()
        thread.join(60)
        assert stored == [2]  # minutes 1 and 3; minute 2 was the rival's and now holds the writer's value
        assert store.count() == 4
        assert store.query("cell:C", "users")[1].tolist() == [1.0, 1.0, 2.0, 3.0]
    finally:
        rival.close()
        store.drop()
        store.close()


def test_postgres_store_of_the_text_keyed_layout_is_migrated_without_losing_a_sample():
    import psycopg

    dsn, schema = _postgres_schema()
    raw = psycopg.connect(dsn, autocommit=True)
    try:
        raw.execute(f"CREATE SCHEMA {schema}")
        raw.execute(f"""CREATE TABLE {schema}.samples (ts TIMESTAMPTZ NOT NULL, entity TEXT NOT NULL,
            metric TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, PRIMARY KEY (ts, entity, metric))""")
        raw.execute(f"CREATE TABLE {schema}.events (ts TIMESTAMPTZ NOT NULL, entity TEXT NOT NULL, kind TEXT "
                    "NOT NULL, severity TEXT NOT NULL, text TEXT NOT NULL)")
        rows = [(T0 + timedelta(minutes=i), f"cell:{i % 4}", "users" if i % 2 else "prb", float(i))
                for i in range(40)]
        with raw.cursor() as cur:
            cur.executemany(f"INSERT INTO {schema}.samples VALUES (%s, %s, %s, %s)", rows)
        raw.execute(f"INSERT INTO {schema}.events VALUES (%s, 'cell:0', 'alarm', 'minor', 'kept')", [T0])
        store = PostgresStore(dsn, schema=schema)
        try:
            assert store.count() == 40
            for stamp, entity, metric, value in rows[::7]:
                assert store.query(entity, metric, stamp, stamp + timedelta(seconds=1))[1].tolist() == [value]
            assert [e.text for e in store.events()] == ["kept"]
            assert store.write(_table(rows)) == 0 and store.count() == 40  # the old rows are the same keys
            assert store.write(_table([(T0, "cell:9", "users", 1.0)])) == 1
            (kind,) = raw.execute("SELECT relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE n.nspname = %s AND relname = 'samples'", [schema]).fetchone()
            assert kind == "v"  # the old table is gone, a view with its columns reads the new one
            assert raw.execute(f"SELECT count(*) FROM {schema}.samples").fetchone()[0] == 41
        finally:
            store.drop()
            store.close()
    finally:
        raw.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        raw.close()


# --- ingestion --------------------------------------------------------------------------------------------

def _csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "entity", "metric", "value", "unit"])
        writer.writerows(rows)


def test_csv_replay_dead_letters_bad_records_and_keeps_the_good(tmp_path, network):
    path = tmp_path / "in.csv"
    _csv(path, [
        ["2026-01-05T00:02:00Z", "link:DE->AT", "utilisation", "0.5", "ratio"],
        ["2026-01-05T00:01:00Z", "link:DE->AT", "utilisation", "0.4", ""],      # out of order: fine
        ["2026-01-05T00:01:00Z", "link:DE->AT", "utilisation", "0.4", ""],      # duplicate: stored once
        ["yesterday", "link:DE->AT", "utilisation", "0.5", ""],                  # bad timestamp
        ["2026-01-05T00:03:00Z", "link:XX->YY", "utilisation", "0.5", ""],       # unknown entity
        ["2026-01-05T00:03:00Z", "link:DE->AT", "utilisation", "nan", ""],       # NaN
        ["2026-01-05T00:03:00Z", "link:DE->AT", "utilisation", "high", ""],      # wrong type
        ["2026-01-05T00:03:00Z", "link:DE->AT", "utilisation", "50", "percent"],  # wrong unit
        ["2026-01-05T00:03:00Z", "link:DE->AT", "prb_utilisation", "0.5", ""],  # metric of another kind
    ])
    store = DuckDBStore()
    report = replay_file(path, store, known_entities(network))
    assert (report.accepted, report.dead) == (3, 6)
    assert store.count() == 2
    reasons = {d.source.rsplit(":", 1)[1]: d.reason for d in store.dead_letters()}
    assert reasons["5"].startswith("timestamp") and reasons["6"].startswith("entity")
    assert reasons["7"].startswith("value") and reasons["8"].startswith("value")
    assert reasons["9"].startswith("unit") and reasons["10"].startswith("entity/metric")
    assert json.loads(store.dead_letters()[0].raw)["timestamp"] == "yesterday"


def test_parquet_replay_of_a_simulation_stores_every_sample(tmp_path, network):
    result = simulate(network, hours=0.1, seed=1)
    path = tmp_path / "s.parquet"
    pq.write_table(result.samples, path)
    store = DuckDBStore()
    report = replay_file(path, store, known_entities(network))
    assert report.dead == 0 and report.accepted == result.samples.num_rows == store.count()
    again = replay_file(path, store, known_entities(network))
    assert again.accepted == report.accepted and store.count() == report.accepted


@pytest.mark.skipif(not listening(4222), reason="NATS is not listening on 127.0.0.1:4222")
def test_nats_consumer_loses_nothing_across_a_restart(network):
    tag = uuid.uuid4().hex[:10]
    subject, stream = f"nptest.{tag}", f"NPTEST_{tag}"
    good = [{"timestamp": (T0 + timedelta(minutes=i)).isoformat(), "entity": "link:DE->AT",
             "metric": "load", "value": float(i), "unit": "Mbit/s"} for i in range(250)]
    bad = [{"timestamp": T0.isoformat(), "entity": "link:DE->AT", "metric": "load", "value": "NaN"},
           {"timestamp": T0.isoformat(), "entity": "cell:nowhere", "metric": "users", "value": 3}]
    url = "nats://127.0.0.1:4222"
    assert publish_sync(url, good + bad, subject=subject, stream=stream, per_message=10) == 26
    store = DuckDBStore()
    entities = known_entities(network)
    # netpilot stores the first 5 messages and dies before acknowledging them...
    first = consume_sync(url, store, entities, subject=subject, stream=stream, durable=tag, max_messages=5,
                         ack=False, ack_wait_seconds=1.0)
    assert first.accepted == 50 and store.count() == 50
    # ...restarts with the same durable consumer, and JetStream redelivers what was never acknowledged.
    time.sleep(1.5)
    rest = consume_sync(url, store, entities, subject=subject, stream=stream, durable=tag, idle_seconds=1.0,
                        ack_wait_seconds=1.0)
    assert rest.dead == 2 and rest.accepted == 250  # the 5 redelivered messages and the 21 never read
    assert rest.duplicates == 50  # ...whose samples were already stored: counted, not stored twice
    assert store.count() == 250
    assert {d.reason.split(":")[0] for d in store.dead_letters()} == {"value", "entity"}
    # Everything is acknowledged now: a third start finds nothing.
    assert consume_sync(url, store, entities, subject=subject, stream=stream, durable=tag,
                        idle_seconds=0.5).accepted == 0

    async def cleanup():
        import nats
        nc = await nats.connect(url)
        await nc.jetstream().delete_stream(stream)
        await nc.close()
    asyncio.run(cleanup())


def test_ingest_records_counts_reasons():
    store = DuckDBStore()
    report = ingest_records([("a", {"timestamp": 0, "entity": "node:R", "metric": "up", "value": 1}),
                             ("b", {"entity": "node:R"}), ("c", [1, 2])], store, None)
    assert report.accepted == 1 and report.dead == 2
    assert report.reasons == {"missing field(s)": 1, "record is a list, not an object": 1}


# --- exporter and CLI -------------------------------------------------------------------------------------

def test_prometheus_exporter_shows_the_latest_values():
    store = DuckDBStore()
    store.write(_table([(T0, "link:A->B", "utilisation", 0.25), (T0 + timedelta(minutes=1), "link:A->B",
                                                                 "utilisation", 0.75),
                        (T0, "cell:C1", "users", 12.0)]))
    text = generate_latest(registry_for(store)).decode()
    assert 'netpilot_link_utilisation_ratio{entity="A->B"} 0.75' in text
    assert 'netpilot_cell_users_count{entity="C1"} 12.0' in text


def test_cli_simulates_with_faults_ingests_and_queries(tmp_path):
    faults = tmp_path / "f.yaml"
    faults.write_text("- {kind: link_down, target: [DE, AT], at_minute: 2, duration_minutes: 2}\n")
    out = tmp_path / "run.parquet"
    result = runner.invoke(app, ["sim", "run", "--network", str(bundled_network_path()), "--hours", "0.1",
                                 "--faults", str(faults), "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "run.faults.json").read_text())
    assert truth[0]["kind"] == "link_down" and truth[0]["target"] == "DE->AT"
    events = pq.read_table(tmp_path / "run.events.parquet").to_pylist()
    assert any(e["kind"] == "link_down" and e["entity"] == "link:DE->AT" for e in events)
    db = tmp_path / "t.duckdb"
    result = runner.invoke(app, ["telemetry", "ingest", str(out), "--store", f"duckdb:///{db}", "--network",
                                 str(bundled_network_path()), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dead_lettered"] == 0 and report["duplicates"] == 0 and report["stored"] > 0
    again = runner.invoke(app, ["telemetry", "ingest", str(out), "--store", str(db), "--json"])
    assert json.loads(again.output)["duplicates"] == report["stored"]
    assert pq.read_schema(out).names == ["timestamp", "entity", "metric", "value"]
    result = runner.invoke(app, ["telemetry", "query", "--store", str(db), "--entity", "link:DE->AT",
                                 "--metric", "up", "--json"])
    points = json.loads(result.output)["points"]
    assert [p["value"] for p in points] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def test_cli_reports_bad_inputs_without_a_traceback(tmp_path):
    faults = tmp_path / "f.yaml"
    faults.write_text("- {kind: link_down, target: [DE, AT], at_minute: -1}\n")
    result = runner.invoke(app, ["sim", "run", "--network", str(bundled_network_path()), "--faults", str(faults),
                                 "--out", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2 and "at_minute" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["telemetry", "ingest", str(tmp_path / "missing.csv"), "--store",
                                 str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["telemetry", "query", "--store", str(tmp_path / "x.duckdb"), "--entity",
                                 "link:A->B", "--metric", "prb_utilisation"])
    assert result.exit_code == 2 and "not defined for link" in result.output


def test_shipped_profile_is_what_the_lte_cells_give(shared_data):
    from netpilot.model.profile import bundled_profile
    from netpilot.telemetry.sim.profile import derive_weekly_profile

    cells = shared_data / "telemetry" / "lte_barcelona"
    derived = derive_weekly_profile([cells / "ElBorn.csv", cells / "LesCorts.csv", cells / "PobleSec.csv"])
    assert np.allclose(bundled_profile(), derived, atol=1e-5)


def test_example_fault_file_runs(network):
    from pathlib import Path

    faults = load_faults(Path(__file__).resolve().parents[1] / "examples" / "faults.yaml")
    sim = Simulator(network, faults=faults)
    frames = {}
    for _ in range(310):  # through every fault's window
        frame = sim.step()
        frames[round(frame.minute)] = frame
    assert [t.kind for t in sim.truth] == [f.kind for f in faults]
    link = {lk.id: i for i, lk in enumerate(network.links)}
    # DE-AT degraded from minute 60 to 90: 2 % loss, half its capacity.
    assert frames[59].link_loss[link["DE->AT"]] < 0.02 <= frames[60].link_loss[link["DE->AT"]]
    assert frames[60].link_utilisation[link["DE->AT"]] > 1.8 * frames[59].link_utilisation[link["DE->AT"]]
    assert frames[90].link_loss[link["DE->AT"]] < 0.02
    # FR-CH down from 120 to 165, both ways.
    fr_ch = [link["FR->CH"], link["CH->FR"]]
    assert frames[119].link_up[fr_ch].all() and not frames[120].link_up[fr_ch].any()
    assert frames[165].link_up[fr_ch].all()
    # A crowd of 3x at UK (the router and its cells) from 200 to 240.
    cell = sim.cell_ids.index("cell:UK-cell1")
    assert frames[200].cell_traffic[cell] > 2.5 * frames[199].cell_traffic[cell]
    assert frames[240].cell_traffic[cell] < 1.2 * frames[199].cell_traffic[cell]
    # MK down from 270 to 290.
    mk = sim.node_ids.index("node:MK")
    assert frames[269].node_up[mk] and not frames[270].node_up[mk] and frames[290].node_up[mk]
    # NL-DE at metric 50000 from 300 on: no shortest path takes it any more.
    assert frames[299].link_load[link["NL->DE"]] > 0 and frames[300].link_load[link["NL->DE"]] == 0


def test_parquet_with_text_columns_is_checked_row_by_row(tmp_path, network):
    import pyarrow as pa

    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({
        "timestamp": ["2026-01-05T00:00:00Z", "1767571260", "not a time", "2026-01-05 00:03:00"],
        "entity": ["link:DE->AT"] * 4, "metric": ["load"] * 4, "value": ["1.5", "high", "2", "3"]}), path)
    store = DuckDBStore()
    report = replay_file(path, store, known_entities(network))
    assert (report.accepted, report.dead) == (2, 2)
    reasons = {d.source.rsplit(" ", 1)[1]: d.reason for d in store.dead_letters()}
    assert reasons["2"].startswith("value") and reasons["3"].startswith("timestamp")
    assert store.query("link:DE->AT", "load")[1].tolist() == [1.5, 3.0]
