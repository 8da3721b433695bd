"""Edge AI inference placement on GPU sites shared with the RAN: which site serves which cell's requests for
which service, exactly (HiGHS MIP) or fast (greedy), with a migration cost when re-placing.

The model. Site ``k`` has ``gpus[k]`` GPUs of ``gpu_memory_gb[k]`` each, of which a share ``ran_share[k]`` is
reserved for RAN processing; netpilot may power on ``n_k <= floor((1 - ran_share[k]) gpus[k])`` of the rest.
Service ``s`` needs ``memory_gb`` per site where it is loaded and ``gpu_seconds`` per request. Cell ``c`` sends
``rate[c, s]`` requests per second. A request from ``c`` may go to ``k`` only if the round trip over the network
plus the service's response time at the utilisation cap meets the SLO:
``2 latency[c, k] + 1000 gpu_seconds / (1 - u_k) <= slo_ms`` (an M/M/1 bound, in ms), where ``u_k`` is the
site's utilisation cap: ``max_utilisation``, or lower where ``site_utilisation`` says so (a site run cooler answers
sooner, so it reaches cells further away; ``cooler_caps`` picks such sites for requests no site serves).
Per site, compute ``sum rate gpu_seconds <= u_k * n_k`` and memory ``sum_s loaded memory <= n_k *
gpu_memory_gb``. Objective, in this order: serve everything (unserved requests cost ``UNSERVED``), then use few
GPUs, then low latency; re-placing, each model loaded where it was not costs ``migration_cost`` GPUs' worth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from netpilot.model.kernels import jit
from netpilot.model.ran import Service
from netpilot.optimize import highs

__all__ = ["Placement", "PlacementProblem", "Service", "cooler_caps", "place_cooler", "place_fast", "place_mip"]

#: Cost of one request per second left unserved, in GPUs: large enough that serving always comes first.
UNSERVED = 1000.0
#: Cost of one request per second times one millisecond of round trip, in GPUs: the last tie-breaker.
LATENCY = 1e-6


@dataclass(frozen=True)
class PlacementProblem:
    cells: list[str]
    sites: list[str]
    services: list[Service]
    rate: np.ndarray            # (C, S) requests/s
    latency_ms: np.ndarray      # (C, K) one way, from the twin
    gpus: np.ndarray            # (K,)
    gpu_memory_gb: np.ndarray   # (K,) per GPU
    ran_share: np.ndarray       # (K,) share of GPUs reserved for the RAN now
    max_utilisation: float = 0.8
    previous: np.ndarray | None = None   # (S, K) bool: models loaded before (for re-placement)
    migration_cost: float = 0.5
    site_utilisation: np.ndarray | None = None  # (K,) per-site caps in (0, max_utilisation]; None: the cap

    def __post_init__(self) -> None:
        c, s, k = len(self.cells), len(self.services), len(self.sites)
        checks = {"rate": (self.rate, (c, s)), "latency_ms": (self.latency_ms, (c, k)), "gpus": (self.gpus, (k,)),
                  "gpu_memory_gb": (self.gpu_memory_gb, (k,)), "ran_share": (self.ran_share, (k,))}
        for name, (array, shape) in checks.items():
            if np.shape(array) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(array)}")
            if not np.isfinite(array).all() or (np.asarray(array) < 0).any():
                raise ValueError(f"{name} must be finite and non-negative")
        if (self.ran_share > 1).any():
            raise ValueError("ran_share must be at most 1")
        if not 0 < self.max_utilisation < 1:
            raise ValueError("max_utilisation must lie in (0, 1)")
        if self.site_utilisation is not None and (
                np.shape(self.site_utilisation) != (k,) or not np.isfinite(self.site_utilisation).all()
                or (np.asarray(self.site_utilisation) <= 0).any()
                or (np.asarray(self.site_utilisation) > self.max_utilisation + 1e-12).any()):
            raise ValueError(f"site_utilisation must have shape ({k},) with caps in (0, max_utilisation]")

    @cached_property
    def caps(self) -> np.ndarray:
        """(K,) each site's utilisation cap."""
        if self.site_utilisation is None:
            return np.full(len(self.sites), self.max_utilisation)
        return np.asarray(self.site_utilisation, dtype=float)

    @property
    def gpu_seconds(self) -> np.ndarray:
        return np.array([s.gpu_seconds for s in self.services])

    @property
    def memory(self) -> np.ndarray:
        return np.array([s.memory_gb for s in self.services])

    @property
    def available_gpus(self) -> np.ndarray:
        """(K,) GPUs netpilot may use: what the RAN leaves, whole GPUs only."""
        return np.floor((1.0 - self.ran_share) * self.gpus + 1e-9)

    def allowed(self) -> np.ndarray:
        """(C, S, K) bool: the SLO can hold for requests of ``c`` for ``s`` served at ``k`` (at its cap)."""
        response = 1000.0 * self.gpu_seconds[:, None] / (1.0 - self.caps[None, :])  # (S, K)
        budget = np.array([s.slo_ms for s in self.services])[None, :, None]
        return 2.0 * self.latency_ms[:, None, :] + response[None, :, :] <= budget + 1e-9


@dataclass
class Placement:
    share: np.ndarray    # (C, S, K) share of each cell's requests for each service served at each site
    loaded: np.ndarray   # (S, K) bool
    gpus_on: np.ndarray  # (K,) GPUs powered for inference
    method: str
    seconds: float
    info: dict = field(default_factory=dict)

    def unserved(self, problem: PlacementProblem) -> np.ndarray:
        """(C, S) requests/s that no site serves."""
        left = np.clip(1.0 - self.share.sum(axis=2), 0.0, 1.0)
        return problem.rate * np.where(left < 1e-9, 0.0, left)

    def compute(self, problem: PlacementProblem) -> np.ndarray:
        """(K,) GPU-seconds per second of inference at each site."""
        return np.einsum("csk,cs,s->k", self.share, problem.rate, problem.gpu_seconds)

    def objective(self, problem: PlacementProblem) -> float:
        latency = float(np.einsum("csk,cs,ck->", self.share, problem.rate, 2.0 * problem.latency_ms))
        loads = 0.0
        if problem.previous is not None:
            loads = float((self.loaded & ~problem.previous).sum())
        return (UNSERVED * float(self.unserved(problem).sum()) + float(self.gpus_on.sum())
                + LATENCY * latency + problem.migration_cost * loads)

    def violations(self, problem: PlacementProblem, tolerance: float = 1e-6) -> list[str]:
        """Everything this placement breaks, in words (empty when feasible)."""
        problems = []
        if (self.share < -tolerance).any() or (self.share.sum(axis=2) > 1 + tolerance).any():
            problems.append("shares must be non-negative and add up to at most 1 per (cell, service)")
        bad = (self.share > tolerance) & ~problem.allowed()
        for c, s, k in zip(*np.nonzero(bad)):
            problems.append(f"{problem.cells[c]}/{problem.services[s].name} at {problem.sites[k]} breaks the SLO")
        unloaded = (self.share > tolerance) & ~self.loaded[None, :, :]
        for s, k in {(s, k) for _, s, k in zip(*np.nonzero(unloaded))}:
            problems.append(f"{problem.services[s].name} is not loaded at {problem.sites[k]}")
        compute, caps = self.compute(problem), problem.caps
        for k in np.flatnonzero(compute > caps * self.gpus_on + tolerance):
            problems.append(f"{problem.sites[k]}: {compute[k]:.3g} GPU-s/s exceeds {caps[k]:.0%} of "
                            f"{self.gpus_on[k]:g} GPUs")
        memory = self.loaded.astype(float).T @ problem.memory
        for k in np.flatnonzero(memory > self.gpus_on * problem.gpu_memory_gb + tolerance):
            problems.append(f"{problem.sites[k]}: models need {memory[k]:.3g} GB, {self.gpus_on[k]:g} GPUs hold "
                            f"{self.gpus_on[k] * problem.gpu_memory_gb[k]:.3g} GB")
        for k in np.flatnonzero(self.gpus_on > problem.available_gpus + tolerance):
            problems.append(f"{problem.sites[k]}: {self.gpus_on[k]:g} GPUs on, only {problem.available_gpus[k]:g} "
                            "left by the RAN")
        return problems


def _gpus_needed(compute, memory, problem: PlacementProblem, site=slice(None)):
    """Whole GPUs that carry ``compute`` (GPU-s/s) under the utilisation cap and hold ``memory`` (GB), for all
    sites or the ones ``site`` picks."""
    by_compute = np.ceil(np.asarray(compute) / problem.caps[site] - 1e-9)
    by_memory = np.ceil(np.asarray(memory) / np.maximum(problem.gpu_memory_gb[site], 1e-12) - 1e-9)
    return np.maximum(by_compute, by_memory).clip(min=0)


def place_fast(problem: PlacementProblem) -> Placement:
    """Greedy packing (``_pack``): the cheapest requests first (by GPU time), the most constrained among them
    first. Each fills the spare room of GPUs already on at allowed sites (nearest first), and only then powers
    more GPUs, at the allowed site that needs the fewest (preferring sites that run the model already, then the
    nearest); demand splits over sites when one fills. Then what it left unserved is served where room can be
    made (``_repair``), and GPUs are turned off one at a time while what they carry fits on GPUs that are on
    anyway, along paths of moves between sites (``_drop_gpus``)."""
    started = time.perf_counter()
    allowed = problem.allowed()
    share, loaded = _pack(problem, allowed)
    share, loaded = _repair(problem, share, loaded, allowed)
    share, loaded = _drop_gpus(problem, share, loaded, allowed)
    compute = np.einsum("csk,cs,s->k", share, problem.rate, problem.gpu_seconds)
    gpus_on = _gpus_needed(compute, loaded.astype(float).T @ problem.memory, problem)
    return Placement(share, loaded, gpus_on, "fast", time.perf_counter() - started)


def _pack(problem: PlacementProblem, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``place_fast``'s greedy packing: (share, loaded)."""
    n_cells, n_services, n_sites = problem.rate.shape[0], len(problem.services), len(problem.sites)
    tau, mem = problem.gpu_seconds, problem.memory
    cap_gpus = problem.available_gpus
    share = np.zeros((n_cells, n_services, n_sites))
    loaded = np.zeros((n_services, n_sites), dtype=bool) if problem.previous is None else problem.previous.copy()
    loaded &= cap_gpus[None, :] > 0
    memory = loaded.astype(float).T @ mem
    gpus_on = np.minimum(np.ceil(memory / np.maximum(problem.gpu_memory_gb, 1e-12) - 1e-9), cap_gpus)
    demands = np.argwhere(problem.rate > 0)
    cells, services = demands[:, 0], demands[:, 1]
    # Unserved requests are what costs most, so when GPUs run short the cheapest requests should get them:
    # services by GPU time per request, then the demands with the fewest allowed sites, then the largest.
    # (Other orders, biggest first or most constrained first, were measured and never did better.)
    rank = np.lexsort((-problem.rate[cells, services] * tau[services], allowed[cells, services].sum(axis=1),
                       tau[services]))
    _pack_kernel(demands[rank].astype(np.int64), problem.rate.astype(float), tau.astype(float), mem.astype(float),
                 np.argsort(problem.latency_ms, axis=1).astype(np.int64), allowed, cap_gpus.astype(float),
                 problem.caps.astype(float), problem.gpu_memory_gb.astype(float), share, loaded, memory, gpus_on,
                 np.zeros(n_sites))
    loaded &= share.sum(axis=0) > 1e-12
    return share, loaded


@jit
def _pack_kernel(demands, rate, tau, mem, nearest, allowed, cap_gpus, util, gpu_memory, share, loaded, memory,
                 gpus_on, compute):  # pragma: no cover - compiled
    """In place on ``share``, ``loaded``, ``memory``, ``gpus_on`` and ``compute``: each (cell, service) of
    ``demands`` in turn, over the sites it may use in ``nearest`` order (see ``place_fast``)."""
    n_sites = nearest.shape[1]
    sites = np.empty(n_sites, dtype=np.int64)
    active = np.empty(n_sites, dtype=np.bool_)
    for i in range(demands.shape[0]):
        c, s = demands[i, 0], demands[i, 1]
        need = rate[c, s] * tau[s]  # GPU-seconds per second for the whole demand
        left = 1.0
        n = 0
        for j in range(n_sites):
            if allowed[c, s, nearest[c, j]]:
                sites[n] = nearest[c, j]
                active[n] = True
                n += 1
        # 1. Room on GPUs that are on already.
        for r in range(n):
            if left <= 1e-12:
                break
            k = sites[r]
            extra = 0.0 if loaded[s, k] else mem[s]
            if memory[k] + extra > gpus_on[k] * gpu_memory[k] + 1e-9:
                continue
            room = util[k] * gpus_on[k] - compute[k]
            if room <= 1e-12:
                continue
            take = min(left, room / need) if need > 0 else left
            _put(share, compute, memory, loaded, c, s, k, take, need, extra)
            left -= take
        # 2. Power more GPUs where it takes the fewest (then where the model runs, then the nearest).
        while left > 1e-12:
            best, best_ratio, best_unloaded = -1, 0.0, True
            for r in range(n):
                k = sites[r]
                if not active[r] or gpus_on[k] >= cap_gpus[k]:
                    continue
                extra = 0.0 if loaded[s, k] else mem[s]
                want = min(_gpus_for(compute[k] + left * need, memory[k] + extra, util[k], gpu_memory[k]),
                           cap_gpus[k])
                added = want - gpus_on[k]
                if added <= 0:
                    continue
                ratio = added / min(1.0, (util[k] * want - compute[k]) / max(left * need, 1e-300))
                unloaded = not loaded[s, k]
                if best < 0 or ratio < best_ratio or (ratio == best_ratio and unloaded < best_unloaded):
                    best, best_ratio, best_unloaded = r, ratio, unloaded
            if best < 0:
                break  # nothing left anywhere allowed: this part stays unserved
            k = sites[best]
            extra = 0.0 if loaded[s, k] else mem[s]
            gpus_on[k] = min(_gpus_for(compute[k] + left * need, memory[k] + extra, util[k], gpu_memory[k]),
                             cap_gpus[k])
            if memory[k] + extra > gpus_on[k] * gpu_memory[k] + 1e-9:
                active[best] = False
                continue
            room = util[k] * gpus_on[k] - compute[k]
            take = min(left, room / need) if need > 0 else left
            _put(share, compute, memory, loaded, c, s, k, take, need, extra)
            left -= take
            if take <= 1e-12:
                active[best] = False


@jit
def _put(share, compute, memory, loaded, c, s, k, take, need, extra):  # pragma: no cover - compiled
    """A share ``take`` of demand (c, s) served at ``k``: its compute, the model's memory where it was not loaded."""
    share[c, s, k] += take
    compute[k] += take * need
    memory[k] += extra
    loaded[s, k] = True


@jit
def _gpus_for(compute, memory, util, gpu_memory):  # pragma: no cover - compiled
    """``_gpus_needed`` for one site, as a scalar."""
    return max(np.ceil(compute / util - 1e-9), np.ceil(memory / max(gpu_memory, 1e-12) - 1e-9), 0.0)


def _repair(problem: PlacementProblem, share: np.ndarray, loaded: np.ndarray,
            allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Serve what the packing left unserved where room can be made: for each unserved demand (the largest
    first), at each site it reaches (nearest first), the room under the site's cap on every GPU it may power,
    and then room made there by moving other requests the site serves to other sites they reach that have room
    (the packing fills a site's spare room with whatever reaches it, first come; a demand that reaches that site
    alone comes later). Only where something is unserved; GPUs are counted afterwards."""
    rate, tau, mem = problem.rate, problem.gpu_seconds, problem.memory
    left = np.clip(1.0 - share.sum(axis=2), 0.0, 1.0) * (rate > 0)
    if not (left > 1e-9).any():
        return share, loaded
    share, loaded = share.copy(), loaded.copy()
    available = problem.available_gpus
    unit = rate * tau                                          # (C, S) GPU-s/s of a whole demand
    demands = np.argwhere(left > 1e-9)
    demands = demands[np.argsort(-left[demands[:, 0], demands[:, 1]] * unit[demands[:, 0], demands[:, 1]],
                                 kind="stable")]
    _repair_kernel(demands.astype(np.int64), left, unit, mem.astype(float),
                   np.argsort(problem.latency_ms, axis=1).astype(np.int64), allowed, available.astype(float),
                   problem.caps * available, available * problem.gpu_memory_gb,
                   np.einsum("csk,cs,s->k", share, rate, tau), loaded.astype(float).T @ mem, share, loaded)
    loaded &= share.sum(axis=0) > 1e-12
    return share, loaded


@jit
def _repair_kernel(demands, left, unit, mem, nearest, allowed, available, limit, memory_cap, compute, memory, share,
                   loaded):  # pragma: no cover - compiled
    """``_repair``'s loops, in place on ``share``, ``loaded``, ``compute`` and ``memory``: ``limit`` is the
    GPU-s/s each site may carry on all its GPUs, ``memory_cap`` the GB they hold."""
    n_cells, n_services, n_sites = share.shape
    for i in range(demands.shape[0]):
        c, s = demands[i, 0], demands[i, 1]
        need = left[c, s] * unit[c, s]                         # GPU-s/s
        for r in range(n_sites):
            k = nearest[c, r]
            if need <= 1e-12:
                break
            if not allowed[c, s, k] or available[k] <= 0 or not (
                    loaded[s, k] or memory[k] + mem[s] <= memory_cap[k] + 1e-9):
                continue
            # Room made at k: move others' requests to sites they reach with room, until ``need`` fits.
            short = need - (limit[k] - compute[k])
            if short > 1e-12:
                for c2 in range(n_cells):
                    for s2 in range(n_services):
                        if short <= 1e-12:
                            break
                        if share[c2, s2, k] <= 1e-12 or (c2 == c and s2 == s) or unit[c2, s2] <= 0:
                            continue
                        for r2 in range(n_sites):
                            j = nearest[c2, r2]
                            if short <= 1e-12 or share[c2, s2, k] <= 1e-12:
                                break
                            if j == k or not allowed[c2, s2, j] or available[j] <= 0 or not (
                                    loaded[s2, j] or memory[j] + mem[s2] <= memory_cap[j] + 1e-9):
                                continue
                            room = limit[j] - compute[j]
                            if room <= 1e-12:
                                continue
                            moved = min(share[c2, s2, k], room / unit[c2, s2], short / unit[c2, s2])
                            share[c2, s2, k] -= moved
                            compute[k] -= moved * unit[c2, s2]
                            share[c2, s2, j] += moved
                            compute[j] += moved * unit[c2, s2]
                            if not loaded[s2, j]:
                                loaded[s2, j] = True
                                memory[j] += mem[s2]
                            short -= moved * unit[c2, s2]
                    if short <= 1e-12:
                        break
            room = limit[k] - compute[k]
            if room <= 1e-12:
                continue
            take = min(need, room)
            amount = take / unit[c, s]
            share[c, s, k] += amount
            compute[k] += amount * unit[c, s]
            if not loaded[s, k]:
                loaded[s, k] = True
                memory[k] += mem[s]
            need -= take


def _drop_gpus(problem: PlacementProblem, share: np.ndarray, loaded: np.ndarray,
               allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn GPUs off one at a time while what they carry fits on GPUs that are on anyway: see ``_drop_kernel``.
    Keeps every request served where it was served (shares move between sites, their sums do not), every SLO,
    cap and memory limit, and takes a step only where it lowers the objective (GPUs, models loaded anew,
    latency)."""
    n_c, n_s, n_k = share.shape
    rate, tau, mem = problem.rate, problem.gpu_seconds, problem.memory
    loaded = loaded.copy()
    flat = np.ascontiguousarray((share * loaded[None, :, :]).reshape(n_c * n_s, n_k))
    # Each demand's sites, nearest first (CSR): those within its SLO with GPUs the RAN leaves.
    ok = (allowed & (rate > 0)[:, :, None] & (problem.available_gpus > 0)[None, None, :]).reshape(n_c * n_s, n_k)
    order = np.repeat(np.argsort(problem.latency_ms, axis=1, kind="stable"), n_s, axis=0)
    ok_sorted = np.take_along_axis(ok, order, axis=1)
    sites = order[ok_sorted].astype(np.int64)
    start = np.concatenate([[0], np.cumsum(ok_sorted.sum(axis=1))]).astype(np.int64)
    # And each site's demands (CSR): those it may serve.
    served_at, demands = np.nonzero(ok.T)
    first = np.concatenate([[0], np.cumsum(np.bincount(served_at, minlength=n_k))]).astype(np.int64)
    compute = flat.T @ (rate * tau).ravel()
    gpus = _gpus_needed(compute, loaded.astype(float).T @ mem, problem).astype(float)
    load_cost = (np.zeros((n_s, n_k)) if problem.previous is None
                 else problem.migration_cost * ~np.asarray(problem.previous, dtype=bool))
    latency_cost = (LATENCY * rate[:, :, None] * 2.0 * problem.latency_ms[:, None, :]).reshape(n_c * n_s, n_k)
    _drop_kernel(flat, (rate * tau).ravel(), np.tile(np.arange(n_s, dtype=np.int64), n_c), start, sites, first,
                 demands.astype(np.int64), problem.caps.astype(float), problem.gpu_memory_gb.astype(float),
                 mem.astype(float), problem.available_gpus.astype(float), gpus, loaded, load_cost.astype(float),
                 np.ascontiguousarray(latency_cost))
    return flat.reshape(n_c, n_s, n_k), loaded


@jit
def _drop_kernel(share, unit, service, start, sites, first, demands, caps, gpu_memory, memory_gb, available, gpus,
                 loaded, load_cost, latency_cost):  # pragma: no cover - compiled
    """In place, on ``share`` (demands x sites; demand ``d`` is cell ``d // S``, service ``service[d]``),
    ``gpus`` and ``loaded``: ``_drop_all``; then, for each site with no GPU on and one the RAN leaves, a GPU
    there and ``_drop_all`` again (that site kept), kept where that turns off more GPUs than it powers (the
    greedy may have powered GPUs at sites where another site's single GPU would have carried what spills at
    two), repeated while one is kept. Returns the objective's change."""
    n_d, n_k = share.shape
    n_s = loaded.shape[0]
    compute = np.zeros(n_k)
    count = np.zeros((n_s, n_k), dtype=np.int64)  # demands served per (service, site): the model stays while > 0
    for d in range(n_d):
        for k in range(n_k):
            if share[d, k] > 0.0:
                compute[k] += share[d, k] * unit[d]
                count[service[d], k] += 1
    memory = np.zeros(n_k)
    for s in range(n_s):
        for k in range(n_k):
            loaded[s, k] = count[s, k] > 0
            if loaded[s, k]:
                memory[k] += memory_gb[s]
    args = (share, unit, service, start, sites, first, demands, caps, gpu_memory, memory_gb, gpus, loaded,
            load_cost, latency_cost, compute, count, memory)
    skip = np.zeros(n_k, dtype=np.bool_)
    total = _drop_all(skip, *args)
    queue = np.empty(n_k, dtype=np.int64)
    improved = True
    while improved:
        improved = False
        for j in range(n_k):
            if gpus[j] > 0.0 or available[j] < 1.0:
                continue
            # Only a site with a path of moves to j can turn a GPU off with j's room (every other one failed
            # already, and fewer GPUs elsewhere will not help it): those that serve a demand j may serve, and
            # so on back (memory aside: a few too many tried). Two at least, or the GPU at j cannot pay.
            skip[:] = True
            skip[j] = False
            queue[0], head, tail = j, 0, 1
            while head < tail:
                b = queue[head]
                head += 1
                for i in range(first[b], first[b + 1]):
                    d = demands[i]
                    for r in range(start[d], start[d + 1]):
                        a = sites[r]
                        if skip[a] and gpus[a] >= 1.0 and share[d, a] > 0.0:
                            skip[a] = False
                            queue[tail] = a
                            tail += 1
            skip[j] = True
            if tail < 3:
                continue
            saved = (share.copy(), gpus.copy(), loaded.copy(), compute.copy(), count.copy(), memory.copy())
            gpus[j] += 1.0
            change = 1.0 + _drop_all(skip, *args)
            if change < -1e-9:
                total += change
                improved = True
                continue
            share[:], gpus[:], loaded[:] = saved[0], saved[1], saved[2]
            compute[:], count[:], memory[:] = saved[3], saved[4], saved[5]
    return total


@jit
def _drop_all(skip, share, unit, service, start, sites, first, demands, caps, gpu_memory, memory_gb, gpus, loaded,
              load_cost, latency_cost, compute, count, memory):  # pragma: no cover - compiled
    """For each site ``skip`` does not mark, the one whose load spills least past one GPU fewer first: lower its
    GPUs by one and push the spill out along augmenting paths (max flow), site to site over the demands they
    both may serve (``sites[start[d]:start[d + 1]]``, nearest first; ``demands[first[k]:first[k + 1]]`` those
    site ``k`` may serve), into room under the caps of GPUs on elsewhere; a site reached by a demand whose model
    it does not run must hold that model in its GPUs' memory. Kept where the whole spill moves and the objective
    falls (a GPU, less ``load_cost`` of models loaded anew, plus ``latency_cost`` per share moved); undone
    otherwise. Repeated until no site's GPU comes off. In place, with ``compute``, ``count`` (demands served
    per service and site) and ``memory`` kept up to date. Returns the objective's change. A greedy packing
    leaves a fractional GPU at many sites; moving requests one hop (to a site with room) recovers few of them,
    a path of moves recovers the rest."""
    n_d, n_k = share.shape
    n_s = loaded.shape[0]
    size = 64  # the undo log: each move's demand, sites, and the shares and loads before it
    log_d = np.empty(size, dtype=np.int64)
    log_a = np.empty(size, dtype=np.int64)
    log_b = np.empty(size, dtype=np.int64)
    log_values = np.empty((size, 4))
    parent_site = np.empty(n_k, dtype=np.int64)
    parent_demand = np.empty(n_k, dtype=np.int64)
    visited = np.zeros(n_k, dtype=np.bool_)
    queue = np.empty(n_k, dtype=np.int64)
    spill = np.empty(n_k)
    total = 0.0
    improved = True
    while improved:
        improved = False
        for k in range(n_k):
            spill[k] = compute[k] - caps[k] * (gpus[k] - 1.0) if gpus[k] >= 1.0 else np.inf
        for k in np.argsort(spill):
            if gpus[k] < 1.0 or skip[k]:
                continue
            fewer = gpus[k] - 1.0
            # Memory is judged after the moves, not before: models that leave k free theirs (a site whose last
            # GPU comes off must lose every model).
            if fewer == 0.0:  # every model leaves: requests that take no GPU time must move too; keep it simple
                blocked = False
                for d in range(n_d):
                    if share[d, k] > 0.0 and unit[d] <= 0.0:
                        blocked = True
                        break
                if blocked:
                    continue
            excess = compute[k] - caps[k] * fewer
            n_log = 0
            change = 0.0
            gpus[k] = fewer
            while excess > 1e-12:
                # Breadth first from k: a -> b through a demand served at a that b may serve.
                visited[:] = False
                visited[k] = True
                head, tail, sink = 0, 1, -1
                queue[0] = k
                while head < tail and sink < 0:
                    a = queue[head]
                    head += 1
                    for j in range(first[a], first[a + 1]):
                        d = demands[j]
                        if share[d, a] <= 0.0 or unit[d] <= 0.0:
                            continue
                        s = service[d]
                        for i in range(start[d], start[d + 1]):
                            b = sites[i]
                            if visited[b] or gpus[b] < 1.0:
                                continue
                            if not loaded[s, b] and memory[b] + memory_gb[s] > gpus[b] * gpu_memory[b] + 1e-9:
                                continue
                            visited[b] = True
                            parent_site[b] = a
                            parent_demand[b] = d
                            if caps[b] * gpus[b] - compute[b] > 1e-12:
                                sink = b
                                break
                            queue[tail] = b
                            tail += 1
                        if sink >= 0:
                            break
                if sink < 0:
                    break
                amount = min(excess, caps[sink] * gpus[sink] - compute[sink])
                b = sink
                while b != k:
                    d = parent_demand[b]
                    amount = min(amount, share[d, parent_site[b]] * unit[d])
                    b = parent_site[b]
                b = sink
                while b != k:
                    a, d = parent_site[b], parent_demand[b]
                    s = service[d]
                    if n_log == size:
                        size *= 2
                        log_d = np.concatenate((log_d, np.empty(n_log, dtype=np.int64)))
                        log_a = np.concatenate((log_a, np.empty(n_log, dtype=np.int64)))
                        log_b = np.concatenate((log_b, np.empty(n_log, dtype=np.int64)))
                        log_values = np.concatenate((log_values, np.empty((n_log, 4))))
                    log_d[n_log], log_a[n_log], log_b[n_log] = d, a, b
                    log_values[n_log, 0], log_values[n_log, 1] = share[d, a], share[d, b]
                    log_values[n_log, 2], log_values[n_log, 3] = compute[a], compute[b]
                    n_log += 1
                    x = amount / unit[d]
                    if share[d, a] - x <= 1e-12:
                        x = share[d, a]
                    change += x * (latency_cost[d, b] - latency_cost[d, a])
                    share[d, a] -= x
                    compute[a] -= x * unit[d]
                    if share[d, a] == 0.0:
                        count[s, a] -= 1
                        if count[s, a] == 0:
                            loaded[s, a] = False
                            memory[a] -= memory_gb[s]
                            change -= load_cost[s, a]
                    if share[d, b] == 0.0:
                        count[s, b] += 1
                        if count[s, b] == 1:
                            loaded[s, b] = True
                            memory[b] += memory_gb[s]
                            change += load_cost[s, b]
                    share[d, b] += x
                    compute[b] += x * unit[d]
                    b = a
                excess -= amount
            if excess <= 1e-12 and memory[k] <= fewer * gpu_memory[k] + 1e-9 and change - 1.0 < -1e-9:
                compute[k] = max(compute[k], 0.0)
                total += change - 1.0
                improved = True
                continue
            gpus[k] = fewer + 1.0  # undo, newest move first
            for i in range(n_log - 1, -1, -1):
                d, a, b = log_d[i], log_a[i], log_b[i]
                s = service[d]
                if share[d, b] > 0.0 and log_values[i, 1] == 0.0:
                    count[s, b] -= 1
                if share[d, a] == 0.0 and log_values[i, 0] > 0.0:
                    count[s, a] += 1
                share[d, a], share[d, b] = log_values[i, 0], log_values[i, 1]
                compute[a], compute[b] = log_values[i, 2], log_values[i, 3]
            for i in range(n_log):
                for site in (log_a[i], log_b[i]):
                    for s in range(n_s):
                        if (count[s, site] > 0) != loaded[s, site]:
                            loaded[s, site] = count[s, site] > 0
                            memory[site] += memory_gb[s] if loaded[s, site] else -memory_gb[s]
    return total


def cooler_caps(problem: PlacementProblem, placement: Placement, floor: float, *, step: float = 0.01
                ) -> np.ndarray | None:
    """Per-site utilisation caps under which the requests ``placement`` leaves unserved can be reached: a site
    run cooler answers sooner (M/M/1), so it meets the SLO of cells further away. For each unserved demand, the
    largest first, the sites (up, with GPUs the RAN leaves) that would meet its SLO at a cap of ``floor`` or more
    are taken by the highest such cap (the nearest first); each is lowered to that cap (down to a multiple of
    ``step``) and its room under it (on every GPU it may power, less what the placement has it carry and what
    earlier demands took) counted, until the demand is covered. Sites that reach the demand at their cap
    already count their room without moving. ``None`` when no cap moves: then a cooler site would not help."""
    unserved = placement.unserved(problem)
    if not (unserved > 1e-9).any() or floor >= problem.max_utilisation:
        return None
    tau, mem = problem.gpu_seconds, problem.memory
    caps = problem.caps.copy()
    available = problem.available_gpus
    slo = np.array([s.slo_ms for s in problem.services])
    headroom = slo[None, :, None] - 2.0 * problem.latency_ms[:, None, :]                  # (C, S, K) ms
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(headroom > 0, 1.0 - 1000.0 * tau[None, :, None] / headroom, -np.inf)
    reach = np.floor(reach / step + 1e-9) * step                   # the cap each site would need, on the grid
    carried = placement.compute(problem)
    loaded = placement.loaded.copy()
    memory_free = available * problem.gpu_memory_gb - loaded.astype(float).T @ mem
    taken = np.zeros(len(problem.sites))
    moved = False
    demands = np.argwhere(unserved > 1e-9)
    for c, s in sorted(demands.tolist(), key=lambda cs: -unserved[cs[0], cs[1]] * tau[cs[1]]):
        need = unserved[c, s] * tau[s]
        cap_at = np.minimum(reach[c, s], caps)
        for k in np.lexsort((problem.latency_ms[c], -cap_at)).tolist():
            if need <= 1e-12 or cap_at[k] < floor - 1e-9:
                break
            if available[k] <= 0 or (not loaded[s, k] and memory_free[k] < mem[s] - 1e-9):
                continue
            room = cap_at[k] * available[k] - carried[k] - taken[k]
            if room <= 1e-12:
                continue
            if cap_at[k] < caps[k] - 1e-12:
                caps[k] = cap_at[k]
                moved = True
            if not loaded[s, k]:
                loaded[s, k] = True
                memory_free[k] -= mem[s]
            use = min(room, need)
            taken[k] += use
            need -= use
    return caps if moved else None


def place_cooler(problem: PlacementProblem, floor: float) -> tuple[PlacementProblem, Placement]:
    """``place_fast``; where it leaves requests unserved that sites run cooler would reach (``cooler_caps``, no
    cap below ``floor``), ``place_fast`` again under those caps. Whichever placement is better, with the problem
    it solves (the cooled one carries its ``site_utilisation``); its ``seconds`` count both passes."""
    first = place_fast(problem)
    caps = cooler_caps(problem, first, floor)
    if caps is None:
        return problem, first
    cooled = replace(problem, site_utilisation=caps)
    second = place_fast(cooled)
    spent = first.seconds + second.seconds
    if second.objective(cooled) < first.objective(problem) - 1e-9:
        second.seconds = spent
        return cooled, second
    first.seconds = spent
    return problem, first


def place_mip(problem: PlacementProblem, *, time_limit: float | None = 600.0, abs_gap: float = 0.05) -> Placement:
    """The exact placement: one MIP over every allowed (cell, service, site), solved by HiGHS to within
    ``abs_gap`` of the optimum in objective units (GPUs), since a relative gap would hide whole GPUs behind the
    large price of unserved demand."""
    started = time.perf_counter()
    n_cells, n_services, n_sites = problem.rate.shape[0], len(problem.services), len(problem.sites)
    allowed = problem.allowed() & (problem.rate[:, :, None] > 0)
    triples = np.argwhere(allowed)
    n_x = len(triples)
    demands = np.argwhere(problem.rate > 0)
    n_z = len(demands)
    n_y, n_n = n_services * n_sites, n_sites
    # Columns: x (share per allowed triple), z (unserved share per demand), y (model loaded), n (GPUs on).
    x0, z0, y0, g0 = 0, n_x, n_x + n_z, n_x + n_z + n_y
    n_cols = g0 + n_n
    c_idx, s_idx, k_idx = triples.T
    rate_x = problem.rate[c_idx, s_idx]
    demand_index = -np.ones((n_cells, n_services), dtype=np.int64)
    demand_index[demands[:, 0], demands[:, 1]] = np.arange(n_z)
    rows, cols, vals, lower, upper = [], [], [], [], []
    row = 0
    # Every demand's shares plus its unserved share make 1.
    rows += [row + demand_index[c_idx, s_idx], row + np.arange(n_z)]
    cols += [x0 + np.arange(n_x), z0 + np.arange(n_z)]
    vals += [np.ones(n_x), np.ones(n_z)]
    lower.append(np.ones(n_z))
    upper.append(np.ones(n_z))
    row += n_z
    # Only where the model is loaded: x - y <= 0.
    rows += [row + np.arange(n_x), row + np.arange(n_x)]
    cols += [x0 + np.arange(n_x), y0 + s_idx * n_sites + k_idx]
    vals += [np.ones(n_x), -np.ones(n_x)]
    lower.append(np.full(n_x, -np.inf))
    upper.append(np.zeros(n_x))
    row += n_x
    # Compute: sum rate * tau * x - max_util * n <= 0 per site.
    rows += [row + k_idx, row + np.arange(n_sites)]
    cols += [x0 + np.arange(n_x), g0 + np.arange(n_sites)]
    vals += [rate_x * problem.gpu_seconds[s_idx], -problem.caps]
    lower.append(np.full(n_sites, -np.inf))
    upper.append(np.zeros(n_sites))
    row += n_sites
    # Memory: sum memory * y - gpu_memory * n <= 0 per site.
    site_of_y = np.tile(np.arange(n_sites), n_services)
    service_of_y = np.repeat(np.arange(n_services), n_sites)
    rows += [row + site_of_y, row + np.arange(n_sites)]
    cols += [y0 + np.arange(n_y), g0 + np.arange(n_sites)]
    vals += [problem.memory[service_of_y], -problem.gpu_memory_gb]
    lower.append(np.full(n_sites, -np.inf))
    upper.append(np.zeros(n_sites))
    row += n_sites
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row, n_cols))
    cost = np.zeros(n_cols)
    cost[x0:z0] = LATENCY * rate_x * 2.0 * problem.latency_ms[c_idx, k_idx]
    cost[z0:y0] = UNSERVED * problem.rate[demands[:, 0], demands[:, 1]]
    if problem.previous is not None:
        cost[y0:g0] = problem.migration_cost * (~problem.previous).ravel()
    cost[g0:] = 1.0
    col_upper = np.concatenate([np.ones(n_x + n_z + n_y), problem.available_gpus])
    integrality = np.concatenate([np.zeros(n_x + n_z), np.ones(n_y + n_n)])
    result = highs.solve(cost, matrix, np.concatenate(lower), np.concatenate(upper), np.zeros(n_cols), col_upper,
                         integrality=integrality, time_limit=time_limit, mip_gap=0.0,
                         mip_abs_gap=abs_gap)
    if not np.isfinite(result.x).all():
        raise RuntimeError(f"HiGHS found no placement (status {result.status})")
    share = np.zeros((n_cells, n_services, n_sites))
    share[c_idx, s_idx, k_idx] = np.clip(result.x[x0:z0], 0.0, 1.0)
    loaded = result.x[y0:g0].reshape(n_services, n_sites) > 0.5
    share *= loaded[None, :, :]
    gpus_on = np.round(result.x[g0:])
    return Placement(share, loaded, gpus_on, "mip", time.perf_counter() - started,
                     info={"status": result.status, "objective": result.objective})
