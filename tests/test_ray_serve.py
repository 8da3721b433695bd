"""The Ray Serve placement driver on a local two-node Ray cluster (one node per edge site, loopback)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
pytest.importorskip("ray.serve", reason="Ray Serve is an optional extra: pip install -e '.[ray]'")

from netpilot.autopilot.ran import RanLoop
from netpilot.change.drivers import DriverError
from netpilot.change.ran import placement_intent
from netpilot.change.ran_ray import LocalSiteCluster, RayServeRanDriver, TinyClassifier
from netpilot.change.workflow import ChangeStore, Policy
from netpilot.model.ran import SERVICES, SLICES, RanConfig, RanTopology
from netpilot.scenarios.ran import static_config
from netpilot.telemetry.sim.airan import AiRanSimulator, generate, read_llm_trace

NORTH, SOUTH = SITES = ("edge-0", "edge-1")

#: How long a test waits for Ray to deploy, answer or roll back: long, since the tests must not depend on how
#: fast (or how loaded) the machine is; a deployment that fails says so at once (DEPLOY_FAILED), not by timing out.
PATIENCE = 600.0


@pytest.fixture(scope="module")
def metro(shared_data):
    """A generated metro AI-RAN with two edge sites (8 and 9 GPUs) and the LLM trace, for the loop."""
    trace = read_llm_trace(shared_data / "edge" / "azure_llm_2023")
    network, topology = generate(20, 2, seed=3, trace=trace)
    assert tuple(topology.sites) == SITES
    return network, topology, trace


@pytest.fixture(scope="module")
def cluster(metro):
    """One Ray node per edge site of the metro, each offering its GPUs as ``site:<name>``."""
    _, topology, _ = metro
    started = time.perf_counter()
    with LocalSiteCluster(dict(zip(topology.sites, topology.gpus.tolist()))) as local:
        print(f"\ncluster up in {time.perf_counter() - started:.1f} s")
        yield local


@pytest.fixture(scope="module")
def topology() -> RanTopology:
    # Two cells next to their own site, 2 ms between sites; vision and speech (4 GB and 8 GB models on 80 GB GPUs).
    latency = np.array([[1.0, 3.0], [3.0, 1.0]])
    return RanTopology(["c0", "c1"], list(SITES), np.array([100.0, 100.0]), np.array([0, 1]),
                       np.array([4.0, 4.0]), np.array([80.0, 80.0]), latency, 0.01, slices=SLICES,
                       services=SERVICES[:2])


def config(topology: RanTopology, **where: str) -> RanConfig:
    """Each named service loaded at one site, every cell's requests for it sent there."""
    S, K, C = len(topology.services), len(topology.sites), len(topology.cells)
    share = np.zeros((C, S, K))
    loaded = np.zeros((S, K), dtype=bool)
    for s, service in enumerate(topology.services):
        if service.name in where:
            k = topology.sites.index(where[service.name])
            loaded[s, k] = True
            share[:, s, k] = 1.0
    return RanConfig(np.full((C, len(topology.slices)), 0.3), share, loaded, np.array([2.0, 2.0]))


def move(driver: RayServeRanDriver, topology: RanTopology, **where: str) -> str:
    target = config(topology, **where)
    driver.load_candidate(placement_intent(topology, target, np.array([1.0, 1.0]), why="test"))
    return driver.commit()


class Client(threading.Thread):
    """Sends vision requests back to back until stopped; counts what it sent, what came back right, and from
    which site."""

    def __init__(self, driver: RayServeRanDriver) -> None:
        super().__init__(daemon=True)
        self.driver = driver
        model = TinyClassifier(driver.seed)
        self.rows, _ = model.sample(4, np.random.default_rng(7))
        self.expected = tuple(int(v) for v in model.predict(self.rows))
        self.stop = threading.Event()
        self.sent = self.ok = 0
        self.failures: list[str] = []
        self.sites: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            try:
                answer = self.driver.infer("vision", self.rows.tolist(), cell="c0", timeout_s=PATIENCE)
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if answer.labels == self.expected:
                self.ok += 1
                self.sites.append(answer.site)
            else:
                self.failures.append(f"wrong labels {answer.labels} from {answer.site}")

    def until(self, answers: int, timeout: float = PATIENCE) -> None:
        deadline = time.monotonic() + timeout
        target = self.ok + answers
        while self.ok < target and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.02)
        assert self.ok >= target, f"{self.ok} answers, wanted {target}: {self.failures[:3]}"


def deployed_apps() -> set[str]:
    from ray import serve

    return set(serve.status().applications)


@pytest.fixture(scope="module")
def placed(cluster, topology):
    """vision on edge-0 and speech on edge-1, two replicas each."""
    driver = RayServeRanDriver(topology, config(topology, vision="edge-0", speech="edge-1"), replicas=2,
                               health_timeout_s=PATIENCE)
    yield driver
    driver.close()
    assert not deployed_apps() & {"vision@edge-0", "speech@edge-1"}


def test_placement_lands_replicas_on_their_sites(placed):
    nodes = placed.site_nodes()
    assert set(nodes) == set(SITES) and nodes[NORTH] != nodes[SOUTH]
    seen = placed.telemetry()
    assert seen.of("vision", NORTH).replicas == 2 and seen.of("speech", SOUTH).replicas == 2
    assert seen.of("vision", NORTH).nodes == (nodes[NORTH],)
    assert seen.of("speech", SOUTH).nodes == (nodes[SOUTH],)
    assert seen.replicas.tolist() == [[2, 0], [0, 2]]
    assert placed.live() == {("vision", NORTH), ("speech", SOUTH)}
    assert placed.check().ok
    # Each replica holds its model's share of a GPU there (4 GB, 8 GB of 80 GB), as Ray assigned it.
    answer = placed.infer("speech", [[0.0] * 16])
    assert (answer.site, answer.node_id, answer.assigned) == (SOUTH, nodes[SOUTH], pytest.approx(0.1))
    answer = placed.infer("vision", [[0.0] * 16])
    assert (answer.site, answer.node_id, answer.assigned) == (NORTH, nodes[NORTH], pytest.approx(0.05))


def test_telemetry_reads_replica_counts_and_latency(placed):
    before = placed.telemetry().of("vision", NORTH).requests
    rows = [[0.5] * 16, [-0.5] * 16]
    for i in range(30):
        placed.infer("vision", rows, cell=f"c{i % 2}")
    seen = placed.telemetry()
    vision = seen.of("vision", NORTH)
    assert (vision.replicas, vision.requests - before, vision.errors) == (2, 30, 0)
    assert 0.0 < vision.p50_ms <= vision.p99_ms and vision.mean_ms > 0.0
    s, k = 0, SITES.index(NORTH)
    assert seen.response_ms[s, k] == pytest.approx(vision.mean_ms)
    speech = seen.of("speech", SOUTH)
    if speech.requests == 0:  # nothing measured there (unless the placement test ran first)
        assert np.isnan(speech.p50_ms) and np.isnan(seen.response_ms[1, 1])
    assert seen.replicas[1, 1] == 2 and seen.replicas[1, 0] == 0 and np.isnan(seen.response_ms[1, 0])


def test_moving_a_service_between_sites_loses_no_request(cluster, topology):
    driver = RayServeRanDriver(topology, config(topology, vision="edge-0", speech="edge-0"),
                               health_timeout_s=PATIENCE)
    client = Client(driver)
    try:
        client.start()
        client.until(20)
        started = time.perf_counter()
        assert move(driver, topology, vision="edge-1", speech="edge-0") == "place_inference"
        took = time.perf_counter() - started
        client.until(20)
        client.stop.set()
        client.join(PATIENCE)
        assert driver.last_result.started == (("vision", SOUTH),)
        assert driver.last_result.removed == (("vision", NORTH),)
        # Every request sent was answered, with the model's labels; first from edge-0, last from edge-1.
        assert client.failures == [] and client.ok == client.sent
        assert client.sites[0] == NORTH and client.sites[-1] == SOUTH
        assert client.sites.index(SOUTH) > 0 and NORTH not in client.sites[client.sites.index(SOUTH):]
        assert deployed_apps() >= {"vision@edge-1", "speech@edge-0"} and "vision@edge-0" not in deployed_apps()
        assert driver.pending("place_inference")
        driver.confirm("place_inference")
        assert not driver.pending("place_inference")
        seen = driver.telemetry()
        north, south = seen.of("vision", NORTH), seen.of("vision", SOUTH)
        assert north.replicas == 0 and south.replicas == 1
        assert north.requests + south.requests == client.sent and north.errors == south.errors == 0
        latencies = driver.latencies("vision")
        assert len(latencies) == client.sent
        print(f"\nmove vision edge-0 -> edge-1: {client.sent} sent, {client.ok} answered, move {took:.1f} s, "
              f"p50 {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms")
    finally:
        client.stop.set()
        driver.close()


def test_a_failed_health_check_keeps_the_previous_placement(cluster, topology):
    driver = RayServeRanDriver(topology, config(topology, vision="edge-0"), unhealthy={("vision", SOUTH)},
                               health_timeout_s=PATIENCE)
    client = Client(driver)
    try:
        client.start()
        with pytest.raises(DriverError, match=r"health check failed.*vision@edge-1: DEPLOY_FAILED"):
            move(driver, topology, vision="edge-1")
        client.until(5)
        client.stop.set()
        client.join(PATIENCE)
        assert driver.live() == {("vision", NORTH)}
        assert driver.running.loaded[:, 0].tolist() == [True, False] and not driver.running.loaded[:, 1].any()
        assert not driver.pending("place_inference")
        assert "vision@edge-1" not in deployed_apps()
        assert client.failures == [] and client.ok == client.sent and set(client.sites) == {NORTH}
    finally:
        client.stop.set()
        driver.close()


def test_a_failed_post_check_rolls_back_to_the_previous_deployments(cluster, topology):
    from ray import serve

    driver = RayServeRanDriver(topology, config(topology, vision="edge-0"), health_timeout_s=PATIENCE)
    try:
        move(driver, topology, vision="edge-1")
        assert driver.check().ok
        serve.delete("vision@edge-1")  # the new deployment goes away behind the driver's back
        seen = driver.check()
        assert not seen.ok and seen.missing == ("vision@edge-1",)
        driver.rollback("place_inference")
        assert driver.check().ok and driver.live() == {("vision", NORTH)}
        assert driver.last_result.started == (("vision", NORTH),)
        assert driver.infer("vision", [[0.0] * 16]).site == NORTH
    finally:
        driver.close()


def test_an_unconfirmed_placement_rolls_back_at_its_deadline(cluster, topology):
    driver = RayServeRanDriver(topology, config(topology, vision="edge-0"), confirm_s=1.0,
                               health_timeout_s=PATIENCE)
    client = Client(driver)
    try:
        client.start()
        move(driver, topology, vision="edge-1")
        # Moved, unless the 1 s deadline already passed on a slow machine (then the rollback below has happened).
        assert driver.live() == {("vision", SOUTH)} or driver.reverted.is_set()
        assert driver.reverted.wait(PATIENCE), "the confirm deadline passed without a rollback"
        client.until(5)
        client.stop.set()
        client.join(PATIENCE)
        assert driver.live() == {("vision", NORTH)} and not driver.pending("place_inference")
        assert driver.running.loaded[0].tolist() == [True, False]
        assert "vision@edge-1" not in deployed_apps()
        # Moved there and back with every request answered (how many went south depends on the machine's speed).
        assert client.failures == [] and client.ok == client.sent
        assert client.sites[-1] == NORTH
    finally:
        client.stop.set()
        driver.close()


def test_the_loop_places_inference_on_ray(cluster, metro):
    network, topology, trace = metro
    sim = AiRanSimulator(topology, seed=4, trace=trace)
    driver = RayServeRanDriver(topology, static_config(topology, sim).copy(), health_timeout_s=PATIENCE)
    driver.reserved = topology.ran_gpus(topology.prbs.astype(float))
    try:
        changes = ChangeStore(":memory:", Policy(auto_approve=["set_slices", "place_inference"]))
        loop = RanLoop(topology, network, driver, changes)
        for _ in range(3):
            loop.observe(sim.step(driver.running)[0])
        placements = [c for c in changes.list() if c.intents[0]["intent"] == "place_inference"]
        assert placements and {c.state for c in placements} <= {"done", "checking", "rolled_back"}
        assert any(c.state in ("done", "checking") for c in placements)
        print(f"\nloop: placements {[c.state for c in placements]}, last {driver.last_result}")
        # What Ray runs is what the driver says runs: a model deployment exactly where a model is loaded.
        seen = driver.telemetry()
        assert (seen.replicas > 0).tolist() == driver.running.loaded.tolist()
        assert driver.live() == {(topology.services[s].name, topology.sites[k])
                                 for s, k in zip(*np.nonzero(driver.running.loaded))}
    finally:
        driver.close()
