"""Verification of a change on the twin before it touches a router: reachability, forwarding loops, black holes,
utilisation now and at the forecast peak, and the same under every single link failure (what-if).

A change is judged against the network as it is: a check fails when the change makes things worse than they
were (a pair it cuts off, a failure it makes partition or overload the network) or leaves a limit broken that it
made worse. Each failure names the pair, link or scenario.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.sparse.csgraph import connected_components

from netpilot.model.network import Network, NetworkArrays
from netpilot.model.policies import Compiled, compile_policies, pair_positions, policy_matrix, steer_after_failures
from netpilot.model.routing import EcmpRouting, ecmp_flows
from netpilot.model.ties import tie_key
from netpilot.model.whatif import failure_loads, failure_scenarios, links_left_up, what_if, worst_links

__all__ = ["Check", "CheckKind", "Report", "VerificationFigures", "VerificationSettings", "WhatIfCache",
           "failure_allowance", "failure_scenarios", "overloads_failure",
           "verify_change", "what_if"]


class CheckKind(StrEnum):
    """What a check looks at."""

    REACHABILITY = "reachability"
    FORWARDING_LOOPS = "forwarding loops"
    BLACK_HOLES = "black holes"
    UTILISATION_NOW = "utilisation now"
    UTILISATION_AT_PEAK = "utilisation at forecast peak"
    FAILURE_REACHABILITY = "single-failure reachability"
    FAILURE_UTILISATION = "single-failure utilisation"
    SLICE_GUARANTEES = "slice guarantees"
    RAN_RESERVATION = "RAN reservation"
    INFERENCE_SLO = "inference SLOs"
    GPU_CAPACITY = "GPU count and memory"
    SITE_FAILURE = "single edge-site failure"


@dataclass(frozen=True)
class Check:
    """One check: its kind, whether it passed, and what it found in words (``name`` says it to a person: the
    peak check names its factor)."""

    kind: CheckKind
    ok: bool
    detail: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind.value)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind.value, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class VerificationFigures:
    """What verification measured: the MLU before and after the change at the demand checked, and with the
    single failures checked, the worst MLU after under any of them, how many there were, and (up to five,
    worst first) the failures the change would overload, each as the directed links it takes down."""

    mlu_before: float
    mlu_after: float
    worst_failure_mlu_after: float | None = None
    failure_scenarios: int | None = None
    overloading_failures: tuple[tuple[str, ...], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mlu_before": self.mlu_before, "mlu_after": self.mlu_after}
        if self.failure_scenarios is not None:
            out |= {"overloading_failures": [list(f) for f in self.overloading_failures],
                    "worst_failure_mlu_after": self.worst_failure_mlu_after,
                    "failure_scenarios": self.failure_scenarios}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerificationFigures:
        """Figures as ``as_dict`` stored them (a change's recorded verification)."""
        return cls(mlu_before=float(data["mlu_before"]), mlu_after=float(data["mlu_after"]),
                   worst_failure_mlu_after=data.get("worst_failure_mlu_after"),
                   failure_scenarios=data.get("failure_scenarios"),
                   overloading_failures=tuple(tuple(f) for f in data.get("overloading_failures", ())))


@dataclass(frozen=True)
class Report:
    """Every check of a change, how long verification took (seconds) and its figures."""

    checks: list[Check]
    seconds: float
    figures: VerificationFigures

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, kind: CheckKind) -> Check | None:
        """The check of that kind, if it ran."""
        return next((c for c in self.checks if c.kind is kind), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks], "seconds": self.seconds,
                "figures": self.figures.as_dict()}

    def text(self) -> str:
        lines = [f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


#: The single-failure rules (``VerificationSettings.failure_rule``): judge each failure alone, or those over the
#: limit today together.
PER_FAILURE, AGGREGATE = "each", "aggregate"
FAILURE_RULES = (PER_FAILURE, AGGREGATE)


@dataclass(frozen=True)
class VerificationSettings:
    """What a change must meet. ``max_utilisation``: the MLU verification refuses to create (now, at the
    forecast peak, or under any single failure when ``failures``). ``failure_tolerance`` and ``failure_share``
    are for a caller whose demand is an estimate (the loop): a single failure the change moves and that is
    over the limit must come out lower than today's by that much MLU plus that share of today's; ``worst_share``
    is the share of today's worst failure a moved one must end under when failures are judged together."""

    max_utilisation: float = 1.0
    failures: bool = True
    failure_tolerance: float = 0.0
    failure_share: float = 0.0
    #: How the failures already over the limit today are judged: ``"each"``, every one the change moves must end
    #: within its ``failure_allowance``; ``"aggregate"``, while the network is over the limit with no failure,
    #: together: no failure the change moves may end above today's worst single failure less ``worst_share`` of
    #: it and the tolerance, and their excess over the limit, summed, must fall by the allowance (``share`` of it
    #: plus ``tolerance`` per failure; see ``_aggregate_failures``). A failure within the limit today must stay
    #: within it under either rule.
    failure_rule: str = PER_FAILURE
    #: The margin a caller verifying an estimate put on its demand (verification's demand is the estimate times
    #: 1 + ``demand_margin``). The ``"aggregate"`` rule groups only the failures that would be over the limit
    #: even with the true demand that much below the estimate: a failure near the limit may be within it.
    demand_margin: float = 0.0
    #: Under the ``"aggregate"`` rule, the share of today's worst single failure that a failure the change moves
    #: must end below (with ``failure_tolerance``; None: ``failure_share``): a failure moved up to near today's
    #: worst can be the new worst with the true demand, whose shape the margin does not cover (BENCHMARKS.md,
    #: issue 25, session 28).
    worst_share: float | None = None

    def __post_init__(self) -> None:
        if self.failure_rule not in FAILURE_RULES:
            raise ValueError(f"failure_rule must be one of {', '.join(FAILURE_RULES)}, got {self.failure_rule!r}")

    def exact(self) -> VerificationSettings:
        """The same limits for a demand that is not an estimate (a network's own matrix, hindsight): no
        tolerance."""
        return replace(self, failure_tolerance=0.0, failure_share=0.0, demand_margin=0.0, worst_share=None)


@dataclass(frozen=True)
class _State:
    """The network's forwarding and loads under one demand matrix."""

    arrays: NetworkArrays
    pairs: np.ndarray
    volume: np.ndarray
    routing: EcmpRouting  # the IGP's, carrying the pairs no policy covers
    loads: np.ndarray
    policies: Compiled | None = None
    covered: np.ndarray | None = None  # pairs the policies carry (while a path of theirs is up)

    @property
    def igp_volume(self) -> np.ndarray:
        return self.volume if self.covered is None else np.where(self.covered, 0.0, self.volume)

    @property
    def utilisation(self) -> np.ndarray:
        cap = self.arrays.capacity
        return np.where(self.arrays.up & (cap > 0), self.loads / np.where(cap > 0, cap, 1.0), 0.0)


class WhatIfCache:
    """The single-failure results of the network *before* a change, kept while only the level of the demand
    changes: link loads are linear in demand, so results for a demand proportional to one already seen are
    that one's, scaled. A caller that verifies many changes to the same network (the autopilot, tick after
    tick) keeps one and passes it to ``verify_change``. ``size`` counts networks, each with up to ``SHAPES``
    demand shapes."""

    #: Demand shapes kept per network: a caller may verify the same change on two (the autopilot: the estimate,
    #: and verification's demand with a believed crowd's margin on top), which must not push each other out.
    SHAPES = 2

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: dict[bytes, list[tuple[np.ndarray, float, dict]]] = {}  # network: [(shape, total, results)]
        self.hits = 0

    @staticmethod
    def _key(network: Network, pairs: np.ndarray, arrays: NetworkArrays | None = None) -> bytes:
        arrays = arrays or network.arrays()
        policies = "|".join(p.model_dump_json() for p in network.policies).encode()
        return b"|".join([*(np.ascontiguousarray(a).tobytes() for a in (arrays.metric, arrays.up, arrays.capacity,
                                                                         pairs)), policies])

    def _entry(self, network: Network, pairs: np.ndarray, volume: np.ndarray,
               arrays: NetworkArrays | None = None) -> tuple | None:
        """The entry for this network and a demand proportional to ``volume``, if any (``arrays``: the
        network's, when the caller has them already)."""
        return next((entry for entry in self._entries.get(self._key(network, pairs, arrays), [])
                     if proportional(volume, entry[0])), None)

    def get(self, network: Network, pairs: np.ndarray, volume: np.ndarray,
            arrays: NetworkArrays | None = None) -> dict | None:
        """{scenario key: (MLU, stranded, link loads)} for ``volume``, or None when not seen at any level."""
        entry = self._entry(network, pairs, volume, arrays)
        if entry is None:
            return None
        self.hits += 1
        factor = float(volume.sum()) / entry[1]
        return {key: (mlu * factor, stranded * factor, loads * factor)
                for key, (mlu, stranded, loads) in entry[2].items()}

    def baseline(self, network: Network, pairs: np.ndarray, volume: np.ndarray) -> dict:
        """{scenario key: (MLU, stranded, link loads)} of ``network`` under ``volume``: from the cache, or computed
        and kept."""
        results = self.get(network, pairs, volume)
        if results is None:
            results = _failure_results(_state(network, pairs, volume))
            self.put(network, pairs, volume, results)
        return results

    def has(self, network: Network, pairs: np.ndarray, volume: np.ndarray) -> bool:
        return self._entry(network, pairs, volume) is not None

    def put(self, network: Network, pairs: np.ndarray, volume: np.ndarray, results: dict,
            arrays: NetworkArrays | None = None) -> None:
        total = float(volume.sum())
        if total <= 0:
            return
        key = self._key(network, pairs, arrays)
        kept = [entry for entry in self._entries.pop(key, []) if not proportional(volume, entry[0])]
        kept = kept[max(len(kept) - (self.SHAPES - 1), 0):]
        if len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = [*kept, (volume / total, total, results)]


def proportional(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether demand ``a`` is demand ``b`` times one number, to 1e-9 (two demands of nothing are): the
    single-failure results of one are the other's, scaled.

    >>> proportional(np.array([1.0, 2.0]), np.array([3.0, 6.0]))
    True
    """
    total_a, total_b = float(a.sum()), float(b.sum())
    if total_a <= 0 or total_b <= 0:
        return total_a <= 0 and total_b <= 0
    return bool(np.allclose(a / total_a, b / total_b, rtol=1e-9, atol=0.0))


def _state(network: Network, pairs: np.ndarray, volume: np.ndarray, arrays: NetworkArrays | None = None) -> _State:
    arrays = arrays or network.arrays()
    return _routed(arrays, compile_policies(arrays, network.policies) if network.policies else None, pairs, volume)


def _routed(arrays: NetworkArrays, policies: Compiled | None, pairs: np.ndarray, volume: np.ndarray) -> _State:
    """``volume`` between ``pairs`` over the network ``arrays``, on ``policies`` where they have a path up and on
    the IGP otherwise."""
    if policies is None:
        routing = ecmp_flows(arrays, arrays.metric, pairs, volume)
        return _State(arrays, pairs, volume, routing, routing.loads)
    matrix, covered = policy_matrix(policies, pairs, arrays.up, arrays.n_links)
    routing = ecmp_flows(arrays, arrays.metric, pairs, np.where(covered, 0.0, volume))
    return _State(arrays, pairs, volume, routing, routing.loads + matrix @ np.where(covered, volume, 0.0),
                  policies, covered)


def _failure_outcomes(state: _State, scenarios: list[np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per scenario (links failing together): (MLU, most loaded link, demand cut off, loads) once the IGP
    reconverges and the policies move their traffic (``steer_after_failures``)."""
    arrays = state.arrays
    loads, stranded = failure_loads(arrays, state.routing, state.igp_volume, scenarios)
    alive = links_left_up(arrays.up, scenarios)
    if state.policies is not None:
        steer_after_failures(arrays, state.policies, state.pairs, state.volume, alive, loads, stranded)
    mlu, worst = worst_links(loads, arrays.capacity, alive)
    return mlu, worst, stranded, loads


def _failure_outcomes_after(now_before: _State, now_after: _State, before_results: dict,
                            scenarios: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_failure_outcomes`` of the network after the change. Where the change only moves path policies (same
    metrics, same links up), the pairs it does not touch are routed as before under every failure: their loads
    are the before state's less those of the touched pairs routed as before, plus the touched pairs routed as
    after (loads are sums over pairs), so only the touched pairs are routed again."""
    before, after = now_before.arrays, now_after.arrays
    changed = _pairs_changed(now_before, now_after)
    if changed is None or not np.array_equal(before.metric, after.metric) or \
            not np.array_equal(before.up, after.up) or 2 * len(changed) > len(now_after.pairs):
        return _failure_outcomes(now_after, scenarios)
    keys = [_scenario_key(after, scenario) for scenario in scenarios]
    if any(key not in before_results for key in keys):
        return _failure_outcomes(now_after, scenarios)
    loads = np.array([before_results[key][2] for key in keys])
    stranded = np.array([before_results[key][1] for key in keys])
    if len(changed):
        pairs, volume = now_after.pairs[changed], now_after.volume[changed]
        for network_state, sign in ((now_before, -1.0), (now_after, 1.0)):
            part = _routed(network_state.arrays, network_state.policies, pairs, volume)
            _, _, part_stranded, part_loads = _failure_outcomes(part, scenarios)
            loads += sign * part_loads
            stranded += sign * part_stranded
    mlu, worst = worst_links(loads, after.capacity, links_left_up(after.up, scenarios))
    return mlu, worst, np.maximum(stranded, 0.0), loads


def _pairs_changed(now_before: _State, now_after: _State) -> np.ndarray | None:
    """Positions of the pairs whose path policy differs between the two states (None: other demand)."""
    if now_before.pairs is not now_after.pairs and not np.array_equal(now_before.pairs, now_after.pairs):
        return None
    if now_before.volume is not now_after.volume and not np.array_equal(now_before.volume, now_after.volume):
        return None
    old, new = now_before.policies or {}, now_after.policies or {}

    def same(a: list[tuple[np.ndarray, float]], b: list[tuple[np.ndarray, float]]) -> bool:
        return len(a) == len(b) and all(np.array_equal(la, lb) and wa == wb for (la, wa), (lb, wb) in zip(a, b))

    ends = [e for e in old.keys() | new.keys() if e not in old or e not in new or not same(old[e], new[e])]
    position = pair_positions(now_after.pairs, ends)
    return np.sort(position[position >= 0])


def _name(arrays: NetworkArrays, e: int) -> str:
    return f"{arrays.node_ids[arrays.src[e]]}->{arrays.node_ids[arrays.dst[e]]}"


def _unreachable_pairs(arrays: NetworkArrays, up: np.ndarray) -> tuple[int, tuple[str, str] | None]:
    """(how many ordered node pairs cannot reach each other over links that are up, one example)."""
    import scipy.sparse as sp

    links = np.flatnonzero(up)
    graph = sp.csr_matrix((np.ones(len(links)), (arrays.src[links], arrays.dst[links])),
                          shape=(arrays.n_nodes, arrays.n_nodes))
    count, labels = connected_components(graph, directed=True, connection="strong")
    if count == 1:
        return 0, None
    sizes = np.bincount(labels)
    n = arrays.n_nodes
    broken = int(n * n - (sizes ** 2).sum())
    main = int(np.argmax(sizes))
    outside = int(np.flatnonzero(labels != main)[0])
    inside = int(np.flatnonzero(labels == main)[0])
    return broken, (arrays.node_ids[inside], arrays.node_ids[outside])


def verify_change(before: Network, after: Network, settings: VerificationSettings = VerificationSettings(), *,
                  peak_factor: float = 1.0, demand: tuple[np.ndarray, np.ndarray] | None = None,
                  cache: WhatIfCache | None = None) -> Report:
    """Every check of the change from ``before`` to ``after`` (same nodes and links, new states or metrics)
    against ``settings``,
    under ``after``'s demands (the twin's current matrix), or ``demand`` = (node-index pairs, Mbit/s) when the
    caller has a fresher estimate, and the same scaled by ``peak_factor`` (the forecast peak). ``cache`` keeps
    the single-failure results of ``before`` between calls (see ``WhatIfCache``). ``failure_tolerance`` and
    ``failure_share`` are for a caller whose demand is an estimate: a single failure that the change moves and
    that is over the limit must then come out lower than today's by that much in MLU plus that share of
    today's, since an error in the estimate could turn a small improvement into a small deterioration (and the
    error grows with the load). ``after`` may run explicit path policies: their pairs follow them, a failed
    path's share goes to the policy's paths left, and a pair whose paths have all failed goes to the IGP."""
    max_utilisation, failures = settings.max_utilisation, settings.failures
    failure_tolerance, failure_share = settings.failure_tolerance, settings.failure_share
    started = time.perf_counter()
    checks: list[Check] = []
    arrays_before, arrays_after = before.arrays(), after.arrays()
    pairs, volume = demand if demand is not None else arrays_after.demand_pairs()

    # Reachability between every pair of nodes over links that are up.
    broken_before, _ = _unreachable_pairs(arrays_before, arrays_before.up)
    broken_after, example = _unreachable_pairs(arrays_after, arrays_after.up)
    if broken_after > broken_before and example is not None:
        checks.append(Check(CheckKind.REACHABILITY, False,
                            f"{broken_after - broken_before} node pairs lose their path, "
                            f"e.g. {example[0]} cannot reach {example[1]} (or back)"))
    else:
        checks.append(Check(CheckKind.REACHABILITY, True, "every node pair that could reach each other still can"
                            + (f" ({broken_after} pairs were cut off already)" if broken_after else "")))

    now_before = _state(before, pairs, volume, arrays_before)
    now_after = _state(after, pairs, volume, arrays_after)
    routing = now_after.routing

    # Loops: every ECMP next hop must bring traffic strictly closer to its destination, or it could circle.
    rows, links = np.nonzero(routing.on_dag)
    dist = routing.distance
    assert dist is not None  # an ECMP routing keeps its distances
    looping = ~(dist[rows, arrays_after.src[links]] > dist[rows, arrays_after.dst[links]])
    if looping.any():
        j = int(np.flatnonzero(looping)[0])
        checks.append(Check(CheckKind.FORWARDING_LOOPS, False,
                            f"towards {arrays_after.node_ids[routing.targets[rows[j]]]}, the next hop over "
                            f"{_name(arrays_after, links[j])} does not bring traffic closer"))
    else:
        checks.append(Check(CheckKind.FORWARDING_LOOPS, True,
                            f"{len(routing.targets)} destinations, {len(links)} next hops, "
                            "each strictly closer to its destination"))

    # Black holes: demand whose source has no route to its destination.
    dropped = np.flatnonzero(routing.unreachable & (volume > 0))
    dropped_before = set(map(tuple, pairs[now_before.routing.unreachable & (volume > 0)].tolist()))
    new_drops = [i for i in dropped if tuple(pairs[i].tolist()) not in dropped_before]
    if new_drops:
        a, b = pairs[new_drops[0]]
        total = float(volume[new_drops].sum())
        checks.append(Check(CheckKind.BLACK_HOLES, False, f"{len(new_drops)} demands ({total:.6g} Mbit/s) would be "
                                                  f"dropped, e.g. {arrays_after.node_ids[a]} -> "
                                                  f"{arrays_after.node_ids[b]}"))
    else:
        checks.append(Check(CheckKind.BLACK_HOLES, True, "every demand has a route" if not len(dropped) else
                            f"no new drops ({len(dropped)} demands had no route already)"))

    # Utilisation now and at the forecast peak.
    checks_to_run = [(CheckKind.UTILISATION_NOW, "utilisation now", 1.0)]
    if peak_factor != 1.0:
        checks_to_run.append((CheckKind.UTILISATION_AT_PEAK, f"utilisation at forecast peak (x{peak_factor:g})",
                              peak_factor))
    for kind, label, factor in checks_to_run:
        util_after = now_after.utilisation * factor
        util_before = now_before.utilisation * factor
        e = int(np.argmax(util_after))
        peak_after, peak_before = float(util_after[e]), float(util_before.max(initial=0.0))
        ok = peak_after <= max_utilisation or peak_after <= peak_before + 1e-9
        checks.append(Check(kind, ok, name=label, detail=f"MLU {peak_after:.3f} on {_name(arrays_after, e)} (limit "
                                       f"{max_utilisation:g}; {peak_before:.3f} before the change)"))

    figures = VerificationFigures(mlu_before=float(now_before.utilisation.max(initial=0.0)),
                                  mlu_after=float(now_after.utilisation.max(initial=0.0)))
    if failures:
        scenarios_after = failure_scenarios(arrays_after)
        before_by_link = cache.get(before, pairs, volume, arrays_before) if cache is not None else None
        if before_by_link is None:
            before_by_link = _failure_results(now_before)
            if cache is not None:
                cache.put(before, pairs, volume, before_by_link, arrays_before)
        mlu_a, worst_a, stranded_a, loads_a = _failure_outcomes_after(now_before, now_after, before_by_link,
                                                                      scenarios_after)
        bad_partition, bad_overload = [], []
        befores: list[float] = []
        capacity = np.where(arrays_after.capacity > 0, arrays_after.capacity, np.inf)
        for i, scenario in enumerate(scenarios_after):
            m_before, st_before, loads_before = before_by_link.get(_scenario_key(arrays_after, scenario),
                                                                   (0.0, 0.0, None))
            if stranded_a[i] > st_before + 1e-9 * (1.0 + st_before):
                bad_partition.append(i)
            moved = abs(mlu_a[i] - m_before) > 1e-9
            if not moved and loads_before is not None and (failure_tolerance or failure_share):
                # With an estimated demand, a failure counts as moved when the change moves load on any link
                # near its top, not only on the top one: with the true demand, that link may be the top.
                level = failure_allowance(m_before, max_utilisation, failure_tolerance, failure_share)
                near = (loads_a[i] / capacity >= level) | (loads_before / capacity >= level)
                moved = bool((np.abs(loads_a[i] - loads_before)[near] > 1e-6 * (1.0 + loads_before[near])).any())
            if overloads_failure(mlu_a[i], m_before, max_utilisation, failure_tolerance, failure_share, moved):
                bad_overload.append(i)
            befores.append(m_before)
        if settings.failure_rule == AGGREGATE and figures.mlu_before > max_utilisation * (1.0 + settings.demand_margin):
            # Traffic lost now outweighs traffic a failure might lose, not the other way round: the failures
            # are traded against one another only while the network is over the limit without one (at the
            # estimate itself, less the margin verification's demand carries).
            bad_overload = _aggregate_failures(np.asarray(befores), mlu_a, bad_overload, settings)
        worst_cut = max(bad_partition, key=lambda j: stranded_a[j], default=None)
        checks.append(_failure_check(
            CheckKind.FAILURE_REACHABILITY, worst_cut,
            lambda i: (f"{len(bad_partition)} single failures would cut off demand the network survives today; "
                       f"worst: {_scenario_name(arrays_after, scenarios_after[i])} strands {stranded_a[i]:.6g} "
                       "Mbit/s"),
            f"{len(scenarios_after)} link failures, none cuts off more demand than today"))
        worst_overload = max(bad_overload, key=lambda j: mlu_a[j], default=None)
        checks.append(_failure_check(
            CheckKind.FAILURE_UTILISATION, worst_overload,
            lambda i: (f"{len(bad_overload)} single failures would overload the network where today's would not; "
                       f"worst: {_scenario_name(arrays_after, scenarios_after[i])} puts "
                       f"{_name(arrays_after, worst_a[i])} at {mlu_a[i]:.3f}"),
            f"worst single failure MLU {mlu_a.max(initial=0.0):.3f}; none worse than today above the limit "
            f"{max_utilisation:g}"))
        overloading = tuple(tuple(_name(arrays_after, e) for e in scenarios_after[j])
                            for j in sorted(bad_overload, key=lambda j: -tie_key(float(mlu_a[j])))[:5])
        figures = replace(figures, worst_failure_mlu_after=float(mlu_a.max(initial=0.0)),
                          failure_scenarios=len(scenarios_after), overloading_failures=overloading)
    return Report(checks, time.perf_counter() - started, figures)


def _aggregate_failures(before: np.ndarray, after: np.ndarray, refused: list[int],
                        settings: VerificationSettings) -> list[int]:
    """The failures refused under the ``"aggregate"`` rule, from those the ``"each"`` rule refused.

    Only the failures over the limit today by more than the allowance at the estimate itself (verification's
    demand less ``demand_margin``) are judged together; one nearer the limit may be within it with the true
    demand, so it is judged alone, as under the ``"each"`` rule. The group is refused, named as under the
    ``"each"`` rule and with every moved failure above that ceiling, when a failure the change moves ends above
    today's worst less ``worst_share`` of it and the tolerance (with the true demand it may be the new worst:
    named, so a planner plans against it), or when their summed excess over the limit does not fall by the allowance
    at every level of demand from verification's down to the estimate less the margin again: the excess is
    clipped at the limit, so a change that trades a deep overload for shallow ones can raise it where the
    demand is lower than believed."""
    limit, share, tolerance = settings.max_utilisation, settings.failure_share, settings.failure_tolerance
    shrink = 1.0 / (1.0 + settings.demand_margin)
    over_today = failure_allowance(before * shrink, limit, tolerance, share) > limit
    if not over_today.any():
        return refused
    fresh = [i for i in refused if not over_today[i]]
    moved = np.abs(after - before) > 1e-9
    worst_share = share if settings.worst_share is None else settings.worst_share
    ceiling = max(limit, float(failure_allowance(before.max(initial=0.0), limit, tolerance, worst_share)))
    above = moved & (after > ceiling + 1e-9)
    if above.any():
        return sorted(set(refused) | set(np.flatnonzero(above).tolist()))
    for level in (1.0, shrink, shrink * shrink) if settings.demand_margin > 0 else (1.0,):
        excess_before = np.maximum(before[over_today] * level - limit, 0.0)
        excess_after = float(np.maximum(after[over_today] * level - limit, 0.0).sum())
        allowed = float(excess_before.sum()) * (1.0 - share) - tolerance * int((excess_before > 0).sum())
        if excess_after > allowed + 1e-9 and excess_after > 1e-9:
            return refused
    return fresh


def overloads_failure(after: float, before: float, limit: float, tolerance: float = 0.0, share: float = 0.0,
                      moved: bool | None = None) -> bool:
    """The single-failure rule: a failure the change moves (by default: whose MLU it changes) is refused when it
    ends over ``limit`` and not lower than today's by ``tolerance`` plus ``share`` of today's, that is over its
    ``failure_allowance``."""
    moved = abs(after - before) > 1e-9 if moved is None else moved
    return bool(moved and after > failure_allowance(before, limit, tolerance, share))


def failure_allowance(before: float | np.ndarray, limit: float, tolerance: float = 0.0, share: float = 0.0
                      ) -> np.ndarray:
    """The MLU a single failure may reach after a change that moves it (``before``: its MLU today)."""
    before = np.asarray(before)
    return np.maximum(limit, before * (1.0 - share) - tolerance)


def _failure_results(state: _State) -> dict:
    """{scenario key: (MLU, demand stranded, link loads)} for every single link failure."""
    scenarios = failure_scenarios(state.arrays)
    mlu, _, stranded, loads = _failure_outcomes(state, scenarios)
    return {_scenario_key(state.arrays, scenario): (float(m), float(st), row)
            for scenario, m, st, row in zip(scenarios, mlu, stranded, loads, strict=True)}


def _failure_check(kind: CheckKind, worst: int | None, failed: Callable[[int], str], passed: str) -> Check:
    """A what-if check: failed, naming the worst scenario, when there is one; passed otherwise."""
    return Check(kind, False, failed(worst)) if worst is not None else Check(kind, True, passed)


def _scenario_key(arrays: NetworkArrays, scenario: np.ndarray) -> tuple:
    ends = sorted({(arrays.node_ids[arrays.src[e]], arrays.node_ids[arrays.dst[e]]) for e in scenario})
    return tuple(sorted({tuple(sorted(pair)) for pair in ends}))


def _scenario_name(arrays: NetworkArrays, scenario: np.ndarray) -> str:
    a, b = arrays.node_ids[arrays.src[scenario[0]]], arrays.node_ids[arrays.dst[scenario[0]]]
    return f"link {a}-{b} down"
