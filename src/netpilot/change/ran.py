"""RAN changes: the ``set_slices`` and ``place_inference`` intents made from and applied to the running RAN
configuration, their verification (guarantees, the RAN's GPU reservation, SLOs, GPU count and memory, any one
edge site failing), and the simulator's driver for them with commit-confirmed semantics."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from netpilot.change.drivers import DriverError
from netpilot.change.intents import PlaceInference, SetSlices
from netpilot.change.verify import Check, CheckKind, Report, VerificationFigures
from netpilot.model.ran import RanConfig, RanTopology

#: Kinds of change the RAN driver takes.
RAN_CAPABILITIES = frozenset({"set_slices", "place_inference"})


@dataclass(frozen=True)
class RanPlacementTarget:
    """What a placement is verified against: the forecast requests (C, S), the RAN's GPU need forecast (K,),
    which sites are up, the utilisation cap the SLO bound assumes, and per site a lower cap where the placement
    runs it cooler (``site_utilisation``, (K,); None: the cap everywhere)."""

    rate: np.ndarray
    ran_need: np.ndarray
    site_up: np.ndarray
    max_utilisation: float = 0.8
    site_utilisation: np.ndarray | None = None

    def caps(self) -> np.ndarray:
        """(K,) each site's utilisation cap."""
        if self.site_utilisation is None:
            return np.full(len(self.site_up), self.max_utilisation)
        return np.minimum(np.asarray(self.site_utilisation, dtype=float), self.max_utilisation)


def slices_intent(topology: RanTopology, cells: np.ndarray, shares: np.ndarray, why: str | None = None
                  ) -> SetSlices:
    # Built from the planner's own arrays and the topology's names, so pydantic's validation is skipped (it
    # costs more than the planning at thousands of cells); the driver checks every name it is given.
    return SetSlices.model_construct(intent="set_slices", slices=[s.name for s in topology.slices],
                                     cells=[topology.cells[i] for i in cells],
                                     # Rounded down: the shares sent never add up past the cell's PRBs.
                                     shares=(np.floor(shares * 1e6) / 1e6).tolist(), why=why)


def placement_intent(topology: RanTopology, config: RanConfig, reserved: np.ndarray, why: str | None = None
                     ) -> PlaceInference:
    sites, cells = topology.sites, topology.cells
    c_idx, s_idx, k_idx = np.nonzero(config.share > 1e-9)
    values = np.round(config.share[c_idx, s_idx, k_idx], 6).tolist()
    routes: dict[str, dict[str, dict[str, float]]] = {svc.name: {} for svc in topology.services}
    names = [svc.name for svc in topology.services]
    for c, s, k, value in zip(c_idx.tolist(), s_idx.tolist(), k_idx.tolist(), values, strict=True):
        per_cell = routes[names[s]]
        cell = cells[c]
        if cell in per_cell:
            per_cell[cell][sites[k]] = value
        else:
            per_cell[cell] = {sites[k]: value}
    # As for slices_intent: typed, built from the planner's arrays, names checked by the driver.
    return PlaceInference.model_construct(
        intent="place_inference", ran_reserved={sites[k]: round(float(r), 4) for k, r in enumerate(reserved)},
        gpus_on={sites[k]: int(g) for k, g in enumerate(config.gpus_on)},
        loaded={svc.name: [sites[k] for k in np.flatnonzero(config.loaded[s])]
                for s, svc in enumerate(topology.services)},
        routes=routes, why=why)


class RanIndex:
    """Names to indices for one topology (built once: intents name cells, sites and services)."""

    def __init__(self, topology: RanTopology) -> None:
        self.topology = topology
        self.cell = {c: i for i, c in enumerate(topology.cells)}
        self.site = {s: k for k, s in enumerate(topology.sites)}
        self.service = {s.name: i for i, s in enumerate(topology.services)}
        self.slice = {s.name: i for i, s in enumerate(topology.slices)}

    def _look(self, table: dict[str, int], name: str, what: str, field: str) -> int:
        if name not in table:
            raise DriverError(f"{field}: no {what} {name!r}")
        return table[name]

    def apply(self, config: RanConfig, intent: SetSlices | PlaceInference) -> tuple[RanConfig, np.ndarray | None]:
        """The configuration after the intent, and for a placement the RAN's reservation per site."""
        after = config.copy()
        if isinstance(intent, SetSlices):
            order = [self._look(self.slice, name, "slice", "slices") for name in intent.slices]
            rows = [self._look(self.cell, name, "cell", "cells") for name in intent.cells]
            shares = np.asarray(intent.shares, dtype=float).reshape(len(rows), len(order))
            after.slice_shares[np.ix_(rows, order)] = shares
            return after, None
        n_sites = len(self.topology.sites)
        reserved = np.zeros(n_sites)
        for name, value in intent.ran_reserved.items():
            reserved[self._look(self.site, name, "edge site", "ran_reserved")] = value
        after.gpus_on[:] = 0
        for name, value in intent.gpus_on.items():
            after.gpus_on[self._look(self.site, name, "edge site", "gpus_on")] = value
        after.loaded[:] = False
        for service, names in intent.loaded.items():
            s = self._look(self.service, service, "service", "loaded")
            after.loaded[s, [self._look(self.site, n, "edge site", "loaded") for n in names]] = True
        after.share[:] = 0.0
        for service, per_cell in intent.routes.items():
            s = self._look(self.service, service, "service", "routes")
            for cell, per_site in per_cell.items():
                c = self._look(self.cell, cell, "cell", f"routes.{service}")
                for site, share in per_site.items():
                    after.share[c, s, self._look(self.site, site, "edge site", f"routes.{service}.{cell}")] = share
        return after, reserved


def _report(checks: list[Check], started: float) -> Report:
    # RAN changes move no traffic over the IP network: the MLU figures are not theirs to report.
    return Report(checks, time.perf_counter() - started, VerificationFigures(0.0, 0.0))


def verify_slices(topology: RanTopology, after: RanConfig, forecast: np.ndarray, margin: float) -> Report:
    """A slice split may go: every cell's shares within its PRBs, and every slice's reservation held (its
    guaranteed PRBs, or its forecast demand with the margin where that is less)."""
    started = time.perf_counter()
    shares = after.slice_shares
    over = np.flatnonzero(shares.sum(axis=1) > 1.0 + 1e-6) if np.isfinite(shares).all() else np.arange(len(shares))
    negative = (shares < -1e-9).any(axis=1)
    prbs = topology.prbs[:, None]
    guaranteed = np.array([s.guaranteed_share for s in topology.slices])[None, :] * prbs
    reserve = np.minimum(guaranteed, (1.0 + margin) * forecast)
    short = (shares * prbs < reserve - 1e-3).any(axis=1)  # the intent rounds shares down to 1e-6
    # A reservation can exceed the cell only where the margin over-subscribes it: then the PRBs must all be used.
    over_subscribed = reserve.sum(axis=1) > topology.prbs + 1e-6
    broken = short & ~(over_subscribed & (shares.sum(axis=1) >= 1.0 - 1e-6))
    capacity = Check(CheckKind.GPU_CAPACITY, not len(over) and not negative.any(),
                     f"{len(over)} cells over their PRBs, {int(negative.sum())} with a negative share",
                     name="PRBs per cell")
    held = Check(CheckKind.SLICE_GUARANTEES, not broken.any(),
                 f"{int(broken.sum())} cells below a slice's reservation" +
                 (f" (first {topology.cells[int(np.flatnonzero(broken)[0])]})" if broken.any() else ""))
    return _report([capacity, held], started)


def served_under_site_failure(topology: RanTopology, config: RanConfig, target: RanPlacementTarget,
                               reserved: np.ndarray) -> np.ndarray:
    """(K,) GPU-seconds per second of inference the placement still serves if edge site k fails: what it serves
    now (each site's work up to its cap on the GPUs it powers and the RAN leaves it) less what site k served
    beyond the spare capacity (under their caps) of the other sites up that its requests reach within their
    SLOs."""
    tau = np.array([s.gpu_seconds for s in topology.services])
    available = np.where(target.site_up, np.floor(topology.gpus - reserved + 1e-9), 0.0)
    moved = config.share * (target.rate * tau[None, :])[:, :, None]        # (C, S, K) work of site k's demands
    work = moved.sum(axis=(0, 1))
    caps = target.caps()
    capacity = caps * np.minimum(config.gpus_on, available)
    served_fraction = np.where(work > 1e-12, np.minimum(1.0, capacity / np.maximum(work, 1e-12)), 1.0)
    moved = moved * served_fraction[None, None, :]
    served = moved.sum(axis=(0, 1))
    spare = np.maximum(caps * available - served, 0.0)
    response = 1000.0 * tau[:, None] / (1.0 - caps[None, :])            # (S, K)
    slo = np.array([s.slo_ms for s in topology.services])
    reach = 2.0 * topology.latency_ms[:, None, :] + response[None, :, :] <= slo[None, :, None]  # (C, S, K)
    # Each demand may use the spare of the best site it reaches other than the one failing: the best and the
    # second best per demand give that for every failing site at once.
    offered = reach * spare[None, None, :]
    top = offered.argmax(axis=2)                                          # (C, S)
    best = np.take_along_axis(offered, top[:, :, None], axis=2)[:, :, 0]
    np.put_along_axis(offered, top[:, :, None], -1.0, axis=2)
    second = np.maximum(offered.max(axis=2), 0.0)
    elsewhere = np.where(top[:, :, None] == np.arange(offered.shape[2])[None, None, :], second[:, :, None],
                         best[:, :, None])
    rehomed = np.minimum(np.minimum(moved, elsewhere).sum(axis=(0, 1)), spare.sum() - spare)
    return served.sum() - served + rehomed


def verify_placement(topology: RanTopology, before: RanConfig, after: RanConfig, reserved: np.ndarray,
                     target: RanPlacementTarget, *, failure_tolerance: float = 0.05) -> Report:
    """A placement may go: the RAN's reservation at least its forecast need at every site; GPUs powered plus the
    reservation within the site's GPUs (none at a site that is down) and the models loaded within their memory;
    every request routed where the round trip over the twin plus the response time at the site's cap meets its
    SLO, only to loaded models, within the cap; and under the failure of any one edge site, at least as much inference
    served as the running placement would serve (less ``failure_tolerance`` GPU-seconds per second)."""
    started = time.perf_counter()
    checks = []
    short = np.flatnonzero(reserved < target.ran_need - 1e-6)
    checks.append(Check(CheckKind.RAN_RESERVATION, not len(short),
                        f"{len(short)} sites reserve less than the RAN needs" +
                        (f" ({topology.sites[short[0]]}: {reserved[short[0]]:.2f} < {target.ran_need[short[0]]:.2f})"
                         if len(short) else "")))
    tau = np.array([s.gpu_seconds for s in topology.services])
    memory = np.array([s.memory_gb for s in topology.services])
    gpus_allowed = np.where(target.site_up, np.floor(topology.gpus - reserved + 1e-9), 0.0)
    count_over = np.flatnonzero(after.gpus_on > gpus_allowed + 1e-9)
    memory_over = np.flatnonzero(after.loaded.T.astype(float) @ memory > after.gpus_on * topology.gpu_memory_gb + 1e-6)
    work = np.einsum("csk,cs,s->k", after.share, target.rate, tau)
    caps = target.caps()
    compute_over = np.flatnonzero(work > caps * after.gpus_on + 1e-6)
    checks.append(Check(CheckKind.GPU_CAPACITY, not (len(count_over) or len(memory_over) or len(compute_over)),
                        f"GPUs over the site's count at {len(count_over)} sites, memory over at {len(memory_over)}, "
                        f"work over the cap at {len(compute_over)}"))
    response = 1000.0 * tau[:, None] / (1.0 - caps[None, :])            # (S, K)
    slo = np.array([s.slo_ms for s in topology.services])
    routed = after.share > 1e-9
    late = routed & (2.0 * topology.latency_ms[:, None, :] + response[None, :, :] > slo[None, :, None] + 1e-9)
    unloaded = routed & ~after.loaded[None, :, :]
    down = routed & ~target.site_up[None, None, :]
    over_one = after.share.sum(axis=2) > 1.0 + 1e-6
    checks.append(Check(CheckKind.INFERENCE_SLO, not (late.any() or unloaded.any() or down.any() or over_one.any()),
                        f"{int(late.sum())} routes past their SLO, {int(unloaded.sum())} to an unloaded model, "
                        f"{int(down.sum())} to a site down, {int(over_one.sum())} demands routed over 100 %"))
    worst_after = float(served_under_site_failure(topology, after, target, reserved).min())
    # The running placement is judged at the candidate's caps and at the plain cap, and the better of the two
    # is the bar: a candidate that runs a site cooler must not lower the bar by judging what runs at its own
    # lower cap (which would count less of the running placement's work as served).
    plain = replace(target, site_utilisation=None)
    worst_before = max(float(served_under_site_failure(topology, before, t, reserved).min())
                       for t in ((target, plain) if target.site_utilisation is not None else (target,)))
    checks.append(Check(CheckKind.SITE_FAILURE, worst_after >= worst_before - failure_tolerance,
                        f"under the worst site failure it serves {worst_after:.2f} GPU-s/s "
                        f"(the running placement: {worst_before:.2f})"))
    return _report(checks, started)


@dataclass(frozen=True)
class ServingCheck:
    """Whether the serving engine runs the placement committed; ``missing`` names each model deployment
    (``service@site``) that is not running as it should."""

    ok: bool
    detail: str
    missing: tuple[str, ...] = ()


class SimulatedRanDriver:
    """The simulator's RAN and edge as a device taking ``set_slices`` and ``place_inference``: a candidate is
    loaded, committed (what it replaced kept until ``confirm``) and rolled back on request. The two kinds touch
    different parts (the slice split; the placement and the RAN's reservation), so each kind has its own commit
    awaiting confirmation and rolls back alone."""

    def __init__(self, topology: RanTopology, running: RanConfig) -> None:
        self.index = RanIndex(topology)
        self.running = running
        self.reserved = np.zeros(len(topology.sites))
        self._candidate: tuple[str, RanConfig, np.ndarray | None] | None = None
        self._previous: dict[str, tuple[RanConfig, np.ndarray]] = {}

    def capabilities(self) -> frozenset[str]:
        return RAN_CAPABILITIES

    def load_candidate(self, intent: SetSlices | PlaceInference) -> None:
        if intent.intent not in RAN_CAPABILITIES:
            raise DriverError(f"the RAN driver does not take {intent.intent!r}")
        self._candidate = (intent.intent, *self.index.apply(self.running, intent))

    def commit(self) -> str:
        """Run the candidate; returns its kind (what ``confirm`` and ``rollback`` name)."""
        if self._candidate is None:
            raise DriverError("no candidate loaded")
        kind, config, reserved = self._candidate
        if kind in self._previous:
            raise DriverError(f"a {kind} commit awaits confirmation")
        self._previous[kind] = (self.running, self.reserved)
        self.running = config
        if reserved is not None:
            self.reserved = reserved
        self._candidate = None
        return kind

    def confirm(self, kind: str) -> None:
        self._previous.pop(kind, None)

    def rollback(self, kind: str) -> None:
        if kind not in self._previous:
            raise DriverError(f"no {kind} commit to roll back")
        before, reserved = self._previous.pop(kind)
        after = self.running.copy()
        if kind == "set_slices":
            after.slice_shares = before.slice_shares.copy()
        else:
            after.share, after.loaded, after.gpus_on = before.share.copy(), before.loaded.copy(), before.gpus_on.copy()
            self.reserved = reserved
        self.running = after

    def pending(self, kind: str) -> bool:
        return kind in self._previous

    def replaced(self, kind: str) -> RanConfig | None:
        """The configuration a ``kind`` commit awaiting confirmation replaced (None when none awaits)."""
        return self._previous[kind][0] if kind in self._previous else None

    def check(self) -> ServingCheck:
        """Whether the placement runs as committed (the post-check's part a serving engine answers)."""
        return ServingCheck(True, "the simulator serves what was committed")


def ran_diff(topology: RanTopology, before: RanConfig, after: RanConfig, reserved_before: np.ndarray,
             reserved_after: np.ndarray | None, *, most: int = 25) -> list[dict]:
    """What a RAN change alters, in the reviewable form of the change queue (``device``, ``field``, ``before``,
    ``after``): for a slice split the ``most`` cells whose split moves most (PRB shares per slice, in %) and a
    line for the rest; for a placement (``reserved_after`` given) per edge site the GPUs the RAN keeps, the GPUs
    powered for AI and the models loaded, and per service the share of the cells' routes each site takes."""
    def split(row: np.ndarray) -> str:
        return " / ".join(f"{100 * v:.0f}" for v in row) + " %"

    names = "/".join(s.name for s in topology.slices)
    rows: list[dict] = []
    if reserved_after is None:
        moved = np.abs(after.slice_shares - before.slice_shares).max(axis=1)
        order = np.argsort(-moved, kind="stable")
        changed = order[moved[order] > 1e-9]
        for c in changed[:most].tolist():
            rows.append({"device": topology.cells[c], "field": f"PRB shares {names}",
                         "before": split(before.slice_shares[c]), "after": split(after.slice_shares[c])})
        if len(changed) > most:
            rows.append({"device": f"{len(changed) - most} more cells", "field": f"PRB shares {names}",
                         "before": "", "after": f"moved by at most {100 * moved[changed[most]]:.1f} points"})
        return rows
    services = [s.name for s in topology.services]
    for k, site in enumerate(topology.sites):
        for field, old, new in (("GPUs reserved for the RAN", f"{reserved_before[k]:.2f}", f"{reserved_after[k]:.2f}"),
                                ("GPUs powered for AI", f"{before.gpus_on[k]:.0f}", f"{after.gpus_on[k]:.0f}"),
                                ("models loaded", ", ".join(s for i, s in enumerate(services) if before.loaded[i, k])
                                 or "none", ", ".join(s for i, s in enumerate(services) if after.loaded[i, k])
                                 or "none")):
            if old != new:
                rows.append({"device": site, "field": field, "before": old, "after": new})

    def routed(config: RanConfig, i: int) -> str:
        per_site = config.share[:, i, :].mean(axis=0)
        return ", ".join(f"{topology.sites[k]} {100 * per_site[k]:.0f} %" for k in np.argsort(-per_site)
                         if per_site[k] > 5e-3) or "none"

    for i, service in enumerate(services):
        old, new = routed(before, i), routed(after, i)
        if old != new:
            rows.append({"device": service, "field": "cells' requests routed", "before": old, "after": new})
    return rows
