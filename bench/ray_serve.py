"""Ray Serve placement benchmark: a service moved between edge sites under steady load; requests lost, latency.

    python bench/ray_serve.py          # needs the [ray] extra

Protocol. A local Ray cluster on loopback, one node per edge site (``edge-0``, ``edge-1``, 8 GPUs each as the
``site:<name>`` resource). The ``vision`` service (the driver's NumPy softmax model, 4 rows of 16 features per
request) runs one replica at ``edge-0``. Two client threads send requests back to back through the driver (Serve
handles, end to end) while the driver moves the service ``MOVES`` times between the sites (make-before-break:
the new replica healthy and probed, requests switched, the old replica drained and removed), confirming each move,
with ``PAUSE_S`` of steady load between moves. Reported: requests sent and answered correctly, p50/p99 latency
over every request and over those sent during a move, and each move's duration.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

from _results import run
from netpilot.change.ran import placement_intent
from netpilot.change.ran_ray import LocalSiteCluster, RayServeRanDriver, TinyClassifier
from netpilot.model.ran import SERVICES, SLICES, RanConfig, RanTopology

SITES = ("edge-0", "edge-1")
MOVES = 4
PAUSE_S = 3.0
CLIENTS = 2
results: dict = {}


def config(topology: RanTopology, site: str) -> RanConfig:
    share = np.zeros((2, 1, 2))
    loaded = np.zeros((1, 2), dtype=bool)
    k = topology.sites.index(site)
    share[:, 0, k] = 1.0
    loaded[0, k] = True
    return RanConfig(np.full((2, 3), 0.3), share, loaded, np.array([2.0, 2.0]))


def move() -> None:
    topology = RanTopology(["c0", "c1"], list(SITES), np.array([100.0, 100.0]), np.array([0, 1]),
                           np.array([8.0, 8.0]), np.array([80.0, 80.0]), np.array([[1.0, 3.0], [3.0, 1.0]]), 0.01,
                           slices=SLICES, services=SERVICES[:1])
    with LocalSiteCluster(dict.fromkeys(SITES, 8.0)):
        driver = RayServeRanDriver(topology, config(topology, SITES[0]))
        model = TinyClassifier(driver.seed)
        rows, _ = model.sample(4, np.random.default_rng(7))
        expected = tuple(int(v) for v in model.predict(rows))
        stop = threading.Event()
        lock = threading.Lock()
        log: list[tuple[float, float, bool]] = []  # (sent at, latency ms, answered right)

        def client() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    ok = driver.infer("vision", rows.tolist()).labels == expected
                except Exception:
                    ok = False
                with lock:
                    log.append((t, (time.perf_counter() - t) * 1000.0, ok))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        windows = []
        try:
            time.sleep(PAUSE_S)
            for i in range(MOVES):
                started = time.perf_counter()
                driver.load_candidate(placement_intent(topology, config(topology, SITES[(i + 1) % 2]),
                                                       np.zeros(2), why="bench"))
                driver.commit()
                driver.confirm("place_inference")
                windows.append((started, time.perf_counter()))
                time.sleep(PAUSE_S)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            driver.close()
    sent = len(log)
    answered = sum(ok for _, _, ok in log)
    latency = np.array([ms for _, ms, _ in log])
    during = np.array([ms for t, ms, _ in log if any(a <= t <= b for a, b in windows)])
    results["move"] = {
        "clients": CLIENTS, "moves": MOVES, "sent": sent, "answered": answered,
        "p50_ms": float(np.percentile(latency, 50)), "p99_ms": float(np.percentile(latency, 99)),
        "during_moves": len(during), "during_p50_ms": float(np.percentile(during, 50)),
        "during_p99_ms": float(np.percentile(during, 99)),
        "move_s": [round(b - a, 2) for a, b in windows]}
    print(results["move"])


if __name__ == "__main__":
    run("ray_serve", {"move": move}, sys.argv[1:] or ["move"], results)
