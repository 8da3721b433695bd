"""Inference placement on Ray Serve: the commit-confirmed driver, its model, its telemetry, a local cluster."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netpilot.change.drivers import DriverError
from netpilot.change.intents import PlaceInference, SetSlices
from netpilot.change.ran import ServingCheck, SimulatedRanDriver
from netpilot.model.ran import RanConfig, RanTopology

#: A model replica of one service at one edge site (the Serve application ``service@site``).
Pair = tuple[str, str]


def site_resource(site: str) -> str:
    """The Ray custom resource that stands for an edge site's GPUs (its node offers ``gpus`` of it)."""
    return f"site:{site}"


# --- the model a replica serves ---------------------------------------------------------------------------------


class TinyClassifier:
    """A softmax regression trained at start-up (NumPy, seeded, no downloads) on Gaussian classes; it really
    computes each answer. ``holdout_accuracy`` is what a replica's health check reads."""

    def __init__(self, seed: int = 0, features: int = 16, classes: int = 4, rows: int = 800, steps: int = 150) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(0.0, 1.0, (classes, features))
        x, y = self.sample(rows, rng)
        self.weights = np.zeros((features, classes))
        self.bias = np.zeros(classes)
        onehot = np.eye(classes)[y]
        for _ in range(steps):
            p = self._softmax(x @ self.weights + self.bias)
            self.weights -= 0.5 * x.T @ (p - onehot) / rows
            self.bias -= 0.5 * (p - onehot).mean(axis=0)
        hx, hy = self.sample(rows // 4, np.random.default_rng(seed + 1))
        self.holdout_accuracy = float((self.predict(hx) == hy).mean())

    def sample(self, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` labelled examples: each class's centre plus unit noise."""
        y = rng.integers(0, len(self.centres), rows)
        return self.centres[y] + rng.normal(0.0, 0.6, (rows, self.centres.shape[1])), y

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x @ self.weights + self.bias).argmax(axis=1))


@dataclass(frozen=True)
class Answer:
    """A replica's answer: the classes it predicted, who answered (service, site, Ray node, the site resource
    Ray assigned it) and the model's compute time."""

    labels: tuple[int, ...]
    service: str
    site: str
    node_id: str
    assigned: float
    compute_ms: float


class ModelReplica:
    """One Serve replica: trains its model at start-up; answers feature rows; its health check fails when the
    model's held-out accuracy is below ``min_accuracy`` or when it was configured to fail (fault injection)."""

    def __init__(self, service: str, site: str, seed: int, min_accuracy: float, fail_health: bool) -> None:
        import ray

        self.service, self.site = service, site
        self.model = TinyClassifier(seed)
        self.min_accuracy = min_accuracy
        self.fail_health = fail_health
        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.assigned = float(context.get_assigned_resources().get(site_resource(site), 0.0))

    def __call__(self, rows: list[list[float]]) -> Answer:
        started = time.perf_counter()
        labels = self.model.predict(np.asarray(rows, dtype=float))
        return Answer(tuple(int(v) for v in labels), self.service, self.site, self.node_id, self.assigned,
                      (time.perf_counter() - started) * 1000.0)

    def check_health(self) -> None:
        if self.fail_health:
            raise RuntimeError(f"{self.service}@{self.site}: configured to fail its health check")
        if self.model.holdout_accuracy < self.min_accuracy:
            raise RuntimeError(f"{self.service}@{self.site}: held-out accuracy {self.model.holdout_accuracy:.3f} "
                               f"below {self.min_accuracy}")


# --- typed results ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """A placement applied (or refused) on Ray: the replicas started and removed, how long it took, and when it
    failed, why (nothing it started is left running then)."""

    ok: bool
    detail: str
    started: tuple[Pair, ...]
    removed: tuple[Pair, ...]
    seconds: float


@dataclass(frozen=True)
class ReplicaStats:
    """One service at one site as Ray runs it: replicas running and the nodes they run on (from the Serve
    controller), and the requests the driver sent it (end to end over a Serve handle) with their latency."""

    service: str
    site: str
    replicas: int
    nodes: tuple[str, ...]
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


@dataclass(frozen=True)
class ServingTelemetry:
    """Per service and site (the topology's order): replicas running and mean response time (NaN where nothing
    was measured), and the stats behind them."""

    replicas: np.ndarray     # (S, K)
    response_ms: np.ndarray  # (S, K)
    stats: tuple[ReplicaStats, ...]

    def of(self, service: str, site: str) -> ReplicaStats | None:
        return next((s for s in self.stats if s.service == service and s.site == site), None)


# --- the driver -------------------------------------------------------------------------------------------------


@dataclass
class _Latency:
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    requests: int = 0
    errors: int = 0


class RayServeRanDriver(SimulatedRanDriver):
    """The RAN driver whose ``place_inference`` runs on Ray Serve (``set_slices`` stays the simulator's: no RAN
    runs on Ray). Each loaded model is a Serve application ``service@site`` of ``replicas`` replicas pinned to
    the site's node by its ``site:<name>`` resource (the model's share of a GPU's memory). A commit starts the
    new replicas, waits until they are healthy and answer a probe correctly, switches requests over, lets the old
    ones drain and removes them; when a new replica fails its health check it removes what it started and raises
    (the old placement never stopped). With ``confirm_s`` a commit not confirmed in time is rolled back (the
    previous replicas started again, make-before-break) and ``reverted`` is set.

    Ray must be initialised (``ray.init``) on a cluster whose nodes offer the sites' resources; the running
    placement is deployed when the driver is made."""

    def __init__(self, topology: RanTopology, running: RanConfig, *, replicas: int = 1, confirm_s: float | None = None,
                 health_timeout_s: float = 60.0, drain_timeout_s: float = 10.0, min_accuracy: float = 0.9,
                 unhealthy: Collection[Pair] = (), seed: int = 0) -> None:
        super().__init__(topology, running)
        import ray
        from ray import serve

        if not ray.is_initialized():
            raise DriverError("Ray is not initialised: ray.init(address=...) first")
        serve.start(proxy_location="Disabled")
        self.replicas = replicas
        self.confirm_s = confirm_s
        self.health_timeout_s = health_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self.min_accuracy = min_accuracy
        self.unhealthy = frozenset(unhealthy)
        self.seed = seed
        self.reverted = threading.Event()
        self.last_result: ApplyResult | None = None
        self._route_lock = threading.Lock()      # the live replicas, running config and in-flight counts
        self._change_lock = threading.RLock()    # one commit, confirm or rollback at a time
        self._handles: dict[Pair, Any] = {}
        self._inflight: dict[Pair, int] = {}
        self._latency: dict[Pair, _Latency] = {}
        self._rng = random.Random(seed)
        self._timer: threading.Timer | None = None
        self._commits = 0  # commits so far: a confirm timer rolls back only the commit it was set for
        probe_model = TinyClassifier(seed)
        self._probe_rows, _ = probe_model.sample(8, np.random.default_rng(seed + 2))
        self._probe_labels = tuple(int(v) for v in probe_model.predict(self._probe_rows))
        result = self._transition(self._pairs(running), lambda: None)
        if not result.ok:
            raise DriverError(f"the running placement could not be deployed: {result.detail}")

    # --- what runs where --------------------------------------------------------------------------------------

    def _pairs(self, config: RanConfig) -> set[Pair]:
        topo = self.index.topology
        return {(topo.services[s].name, topo.sites[k]) for s, k in zip(*np.nonzero(config.loaded))}

    @staticmethod
    def app_name(pair: Pair) -> str:
        return f"{pair[0]}@{pair[1]}"

    def _demand(self, pair: Pair) -> float:
        """The share of the site's GPUs one replica takes: its model's memory over a GPU's (whole GPUs past one)."""
        topo = self.index.topology
        memory = topo.services[self.index.service[pair[0]]].memory_gb
        share = memory / float(topo.gpu_memory_gb[self.index.site[pair[1]]])
        return round(share, 4) if share <= 1.0 else float(math.ceil(share))

    def site_nodes(self) -> dict[str, str]:
        """Edge site -> the Ray node offering its resource (the nodes alive)."""
        import ray

        found = {}
        for node in ray.nodes():
            if node.get("Alive"):
                for name in node.get("Resources", {}):
                    if name.startswith("site:"):
                        found[name[len("site:"):]] = node["NodeID"]
        return found

    def live(self) -> frozenset[Pair]:
        with self._route_lock:
            return frozenset(self._handles)

    # --- applying a placement ---------------------------------------------------------------------------------

    def _start(self, pairs: Sequence[Pair]) -> dict[Pair, Any]:
        from ray import serve

        deployment = serve.deployment(ModelReplica)
        targets = []
        for service, site in pairs:
            options = deployment.options(
                name=service, num_replicas=self.replicas, max_constructor_retry_count=1,
                health_check_period_s=1.0, health_check_timeout_s=10.0, graceful_shutdown_wait_loop_s=0.5,
                ray_actor_options={"num_cpus": 0, "resources": {site_resource(site): self._demand((service, site))}})
            app = options.bind(service, site, self.seed, self.min_accuracy, (service, site) in self.unhealthy)
            targets.append(serve.RunTarget(app, name=self.app_name((service, site)), route_prefix=None))
        handles = serve.run_many(targets, wait_for_ingress_deployment_creation=False,
                                 wait_for_applications_running=False)
        return dict(zip(pairs, handles))

    def _wait_healthy(self, pairs: Sequence[Pair]) -> str | None:
        """None once every application of ``pairs`` runs healthy, else why not (failed, or not in time)."""
        from ray import serve

        deadline = time.monotonic() + self.health_timeout_s
        waiting = {self.app_name(p) for p in pairs}
        while waiting:
            applications = serve.status().applications
            for name in list(waiting):
                app = applications.get(name)
                if app is None:
                    continue
                status = app.status.value
                if status == "RUNNING":
                    waiting.discard(name)
                elif status in ("DEPLOY_FAILED", "UNHEALTHY"):
                    messages = "; ".join(d.message.splitlines()[0] for d in app.deployments.values() if d.message)
                    return f"{name}: {status} ({messages or app.message})"
            if waiting and time.monotonic() > deadline:
                return f"{', '.join(sorted(waiting))}: not healthy within {self.health_timeout_s:.0f} s"
            if waiting:
                time.sleep(0.2)
        return None

    def _probe(self, handles: Mapping[Pair, Any]) -> str | None:
        """None when each new application answers the probe rows with the model's labels from its site."""
        responses = {pair: handle.remote(self._probe_rows.tolist()) for pair, handle in handles.items()}
        for (service, site), response in responses.items():
            try:
                answer = response.result(timeout_s=self.health_timeout_s)
            except Exception as exc:  # any failure of the call is the probe failing; the message says which
                return f"{service}@{site}: the probe failed ({type(exc).__name__}: {exc})"
            if answer.labels != self._probe_labels or answer.site != site:
                return f"{service}@{site}: the probe got {answer.labels} from {answer.site}"
        return None

    def _remove(self, pairs: Collection[Pair]) -> None:
        from ray import serve

        for pair in pairs:
            serve.delete(self.app_name(pair), _blocking=False)
        names = {self.app_name(p) for p in pairs}
        deadline = time.monotonic() + self.health_timeout_s
        while names & set(serve.status().applications) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _transition(self, target: set[Pair], switch: Callable[[], None]) -> ApplyResult:
        """Make-before-break: start ``target``'s new replicas, wait until healthy and probed, then (under the
        routing lock) make them live and call ``switch``; drain and remove the replicas no longer wanted."""
        started_at = time.perf_counter()
        with self._route_lock:
            current = set(self._handles)
        new = sorted(target - current)
        old = sorted(current - target)
        nodes = self.site_nodes()
        missing = sorted({site for _, site in new if site not in nodes})
        if missing:
            return ApplyResult(False, f"no Ray node offers {', '.join(map(site_resource, missing))}", (), (),
                               time.perf_counter() - started_at)
        try:
            handles = self._start(new) if new else {}
            why = self._wait_healthy(new) or self._probe(handles)
        except Exception as exc:  # Serve refused the applications or Ray failed (the message says why)
            why = f"Serve refused the new deployments: {type(exc).__name__}: {exc}"
            try:
                self._remove(new)
            except Exception as cleanup:  # what is left over is named, and nothing was switched
                why += f"; removing them failed too ({type(cleanup).__name__}: {cleanup})"
            return ApplyResult(False, why, (), (), time.perf_counter() - started_at)
        if why is not None:
            self._remove(new)
            return ApplyResult(False, f"health check failed, nothing changed: {why}", (), (),
                               time.perf_counter() - started_at)
        with self._route_lock:
            for pair in old:
                self._handles.pop(pair)
            self._handles.update(handles)
            switch()
        deadline = time.monotonic() + self.drain_timeout_s
        while time.monotonic() < deadline:
            with self._route_lock:
                if not any(self._inflight.get(p, 0) for p in old):
                    break
            time.sleep(0.01)
        self._remove(old)
        return ApplyResult(True, f"started {len(new)} and removed {len(old)} model deployments", tuple(new),
                           tuple(old), time.perf_counter() - started_at)

    # --- the commit-confirmed contract ------------------------------------------------------------------------

    def load_candidate(self, intent: SetSlices | PlaceInference) -> None:
        with self._change_lock:
            super().load_candidate(intent)

    def commit(self) -> str:
        """Run the candidate; returns its kind. A placement whose new replicas fail their health check raises
        :class:`DriverError` with the old placement still serving (``last_result`` says why)."""
        with self._change_lock:
            if self._candidate is None or self._candidate[0] != "place_inference":
                return super().commit()
            kind, config, reserved = self._candidate
            if kind in self._previous:
                raise DriverError(f"a {kind} commit awaits confirmation")
            self._candidate = None
            previous = (self.running, self.reserved)

            def switch() -> None:
                self.running = config
                if reserved is not None:
                    self.reserved = reserved
                # The slice split is the simulator's part: it keeps what runs now.
                self.running.slice_shares = previous[0].slice_shares

            result = self._transition(self._pairs(config), switch)
            self.last_result = result
            if not result.ok:
                raise DriverError(result.detail)
            self._previous[kind] = previous
            self.reverted.clear()
            self._commits += 1
            if self.confirm_s is not None:
                self._timer = threading.Timer(self.confirm_s, self._expire, args=(kind, self._commits))
                self._timer.daemon = True
                self._timer.start()
            return kind

    def _expire(self, kind: str, commit: int) -> None:
        with self._change_lock:
            # Only the commit this timer was set for: a timer that fired while its commit was being confirmed,
            # and got the lock after a newer commit, must not roll the newer one back.
            if kind in self._previous and commit == self._commits:
                self.rollback(kind)
                self.reverted.set()

    def confirm(self, kind: str) -> None:
        with self._change_lock:
            if kind == "place_inference" and self._timer is not None:
                self._timer.cancel()
                self._timer = None
            super().confirm(kind)

    def rollback(self, kind: str) -> None:
        """Put the previous placement back, make-before-break (its replicas started again before the new ones
        go). Raises :class:`DriverError` when its replicas do not come up (the new placement keeps serving)."""
        with self._change_lock:
            if kind != "place_inference":
                super().rollback(kind)
                return
            if kind not in self._previous:
                raise DriverError(f"no {kind} commit to roll back")
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            before, reserved = self._previous[kind]

            def switch() -> None:
                self._previous.pop(kind)
                after = self.running.copy()
                after.share, after.loaded, after.gpus_on = before.share.copy(), before.loaded.copy(), \
                    before.gpus_on.copy()
                self.running, self.reserved = after, reserved

            result = self._transition(self._pairs(before), switch)
            self.last_result = result
            if not result.ok:
                raise DriverError(f"rollback failed: {result.detail}")

    def check(self) -> ServingCheck:
        """Every model the running placement loads runs on Ray: its application RUNNING with all its replicas."""
        from ray import serve

        applications = serve.status().applications
        with self._route_lock:
            wanted = self._pairs(self.running) | set(self._handles)
        missing = []
        for pair in sorted(wanted):
            app = applications.get(self.app_name(pair))
            running = 0 if app is None else sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())
            if app is None or app.status.value != "RUNNING" or running < self.replicas:
                missing.append(self.app_name(pair))
        if missing:
            return ServingCheck(False, f"not running as committed on Ray: {', '.join(missing)}", tuple(missing))
        return ServingCheck(True, f"{len(wanted)} model deployments running on Ray")

    # --- serving and telemetry --------------------------------------------------------------------------------

    def _pick(self, service: str, cell: str | None) -> Pair:
        topo = self.index.topology
        s = self.index.service.get(service)
        if s is None:
            raise DriverError(f"no service {service!r}")
        sites = [k for k, name in enumerate(topo.sites) if (service, name) in self._handles]
        if not sites:
            raise DriverError(f"{service} is loaded nowhere")
        share = self.running.share[:, s, :]
        weights = share[self.index.cell[cell]] if cell is not None else share.sum(axis=0)
        w = [float(weights[k]) for k in sites]
        if sum(w) <= 0:
            w = [1.0] * len(sites)
        return service, topo.sites[self._rng.choices(sites, weights=w)[0]]

    def infer(self, service: str, rows: Sequence[Sequence[float]], cell: str | None = None,
              timeout_s: float = 30.0) -> Answer:
        """Send one request to a site running ``service`` (drawn by the running placement's share of ``cell``'s
        requests, or of all cells'), end to end over a Serve handle; its latency is recorded."""
        with self._route_lock:
            pair = self._pick(service, cell)
            handle = self._handles[pair]
            self._inflight[pair] = self._inflight.get(pair, 0) + 1
            stats = self._latency.setdefault(pair, _Latency())
        started = time.perf_counter()
        try:
            answer: Answer = handle.remote([list(map(float, r)) for r in rows]).result(timeout_s=timeout_s)
        except Exception:
            with self._route_lock:
                stats.errors += 1
            raise
        finally:
            with self._route_lock:
                self._inflight[pair] -= 1
        with self._route_lock:
            stats.requests += 1
            stats.samples.append((time.perf_counter() - started) * 1000.0)
        return answer

    def latencies(self, service: str) -> np.ndarray:
        """The recorded latencies (ms) of ``service``'s requests, every site together."""
        with self._route_lock:
            return np.array([v for (name, _), stats in self._latency.items() if name == service
                             for v in stats.samples])

    def telemetry(self) -> ServingTelemetry:
        """Replica counts per service and site read back from Ray (the Serve controller's replicas and the node
        each runs on), with the latencies of the requests sent through :meth:`infer`."""
        from ray import serve
        from ray.serve.context import _get_global_client

        topo = self.index.topology
        details = _get_global_client().get_serve_details()["applications"]
        applications = serve.status().applications
        replicas = np.zeros((len(topo.services), len(topo.sites)))
        response = np.full((len(topo.services), len(topo.sites)), np.nan)
        stats = []
        with self._route_lock:
            latency = {p: (list(v.samples), v.requests, v.errors) for p, v in self._latency.items()}
            pairs = set(self._handles) | set(latency)
        for service, site in sorted(pairs):
            name = self.app_name((service, site))
            running, nodes = 0, ()
            if name in applications:
                running = sum(d.replica_states.get("RUNNING", 0) for d in applications[name].deployments.values())
                found = details.get(name, {}).get("deployments", {})
                nodes = tuple(sorted({r["node_id"] for d in found.values() for r in d.get("replicas", [])
                                      if r.get("state") == "RUNNING"}))
            samples, requests, errors = latency.get((service, site), ([], 0, 0))
            p50, p99, mean = ((float(np.percentile(samples, 50)), float(np.percentile(samples, 99)),
                               float(np.mean(samples))) if samples else (math.nan,) * 3)
            s, k = self.index.service[service], self.index.site[site]
            replicas[s, k] = running
            response[s, k] = mean
            stats.append(ReplicaStats(service, site, running, nodes, requests, errors, p50, p99, mean))
        return ServingTelemetry(replicas, response, tuple(stats))

    def close(self) -> None:
        """Stop the confirm timer and remove every model deployment this driver runs."""
        with self._change_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            with self._route_lock:
                pairs = list(self._handles)
                self._handles.clear()
            self._remove(pairs)


# --- a local cluster, one node per edge site --------------------------------------------------------------------


class LocalSiteCluster:
    """A Ray cluster on this machine with one node per edge site offering ``site:<name>`` for its GPUs (the
    first site's node is the head), Ray initialised on it and Serve started without an HTTP proxy. Use as a
    context manager or call :meth:`shutdown`; it stops only the processes it started."""

    def __init__(self, sites: Mapping[str, float], cpus_per_node: int = 1) -> None:
        import ray
        from ray import serve
        from ray.cluster_utils import Cluster

        if ray.is_initialized():
            raise DriverError("Ray is already initialised in this process")
        names = list(sites)
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": cpus_per_node, "include_dashboard": False,
            "resources": {site_resource(names[0]): float(sites[names[0]])}})
        try:
            for name in names[1:]:
                self.cluster.add_node(num_cpus=cpus_per_node, resources={site_resource(name): float(sites[name])})
            ray.init(address=self.cluster.address, include_dashboard=False, log_to_driver=False)
            self.cluster.wait_for_nodes()
            serve.start(proxy_location="Disabled")
        except Exception:
            self.shutdown()
            raise

    def shutdown(self) -> None:
        import ray
        from ray import serve

        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        self.cluster.shutdown()

    def __enter__(self) -> LocalSiteCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
