"""Root-cause localisation: explain the change in many KPIs at once by the candidate fault whose effect on the
twin (rerouted load, lost reachability, silent cells) best matches what was measured."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from netpilot.errors import InputError
from netpilot.model.faults import Fault, candidate_faults
from netpilot.model.frame import EntityLayout, KpiFrame, loss_beyond_overload
from netpilot.model.network import Network, PathPolicy
from netpilot.model.ties import tie_key, tie_round
from netpilot.model.twin import DEFAULT_START, Twin

#: KPIs compared between the twin and the measurements: (KpiFrame field, sample metric, entity group).
FEATURES = (("link_utilisation", "utilisation", "link"), ("link_loss", "loss", "link"), ("link_up", "up", "link"),
            ("node_up", "up", "node"), ("cell_up", "up", "cell"), ("cell_prb", "prb_utilisation", "cell"),
            ("edge_up", "up", "edge"), ("edge_gpu", "gpu_utilisation", "edge"))
#: Noise floor per KPI in its own unit, so a tiny change in a quiet KPI is not read as a strong signal. An
#: up/down state is nearly noise-free: its flip outweighs the loss that congestion spreads elsewhere.
NOISE_FLOOR = {"link_utilisation": 0.02, "link_loss": 0.002, "link_up": 0.1, "node_up": 0.1, "cell_up": 0.1,
               "cell_prb": 0.02, "edge_up": 0.1, "edge_gpu": 0.02}


def noise_floors(names: list[str]) -> np.ndarray:
    """``NOISE_FLOOR`` of each position of a snapshot vector whose feature names are ``names``."""
    return np.array([NOISE_FLOOR[name] for name in names])


def in_noise_units(change: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    """``change`` over ``sigma``, to a billionth: a KPI that did not change comes out 0 on one CPU and a rounding
    error on another (a wider vector unit sums in another order), and two that changed alike tie wherever they
    were computed, so what is ranked and fitted on it (the scope, the causes) is the same on every machine."""
    return tie_round(change / sigma)


@dataclass(frozen=True)
class Cause:
    """A candidate root cause: what kind of fault, on what (its target's name: ``A--B`` for a link, a node id,
    ``A--B+C--D`` for a shared-risk group), how much of the measured change it explains (0..1), and the
    hypothesis itself (the fault a loop believes once it acts on it)."""

    kind: str
    target: str
    score: float
    fault: Fault | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, str | float]:
        """What an incident records of it."""
        return {"kind": self.kind, "target": self.target, "score": self.score}


@dataclass
class Snapshot:
    """Every compared KPI as one vector, in the frame's entity order; what was not reported is 0 (a down
    link, cell or site reports only ``up = 0``)."""

    values: np.ndarray

    @classmethod
    def from_step(cls, result: KpiFrame) -> Snapshot:
        return cls(np.concatenate([np.asarray(getattr(result, name), dtype=float) for name, _, _ in FEATURES]))


def feature_layout(layout: EntityLayout) -> tuple[list[str], list[str]]:
    """(entity id, feature name) of each position of a snapshot vector."""
    groups = {"link": layout.link_ids, "node": layout.node_ids, "cell": layout.cell_ids, "edge": layout.edge_ids}
    entities, names = [], []
    for name, _, group in FEATURES:
        entities += groups[group]
        names += [name] * len(groups[group])
    return entities, names


def snapshot_from_samples(sim: EntityLayout, samples: pa.Table) -> Snapshot:
    """The median of each compared KPI over ``samples`` (columns entity, metric, value)."""
    entities, names = feature_layout(sim)
    metric_of = {name: metric for name, metric, _ in FEATURES}
    position = {(e, metric_of[n]): i for i, (e, n) in enumerate(zip(entities, names, strict=True))}
    values = np.zeros(len(entities))
    up_seen = np.zeros(len(entities), dtype=bool)
    if samples.num_rows:
        grouped = samples.group_by(["entity", "metric"]).aggregate([("value", "approximate_median")])
        for entity, metric, value in zip(grouped["entity"].to_pylist(), grouped["metric"].to_pylist(),
                                         grouped["value_approximate_median"].to_pylist(), strict=True):
            i = position.get((entity, metric))
            if i is not None and value is not None:
                values[i] = value
                up_seen[i] = True
    # An entity with no "up" sample in the window is assumed up (the absence of a report is not an outage).
    for i, name in enumerate(names):
        if name.endswith("_up") and not up_seen[i]:
            values[i] = 1.0
    return Snapshot(values)


class RootCauseLocalizer:
    """Rank candidate faults by how much of the measured change between two snapshots each explains.

    For each hypothesis the twin predicts the change it would cause (at the same demand, under the current
    routing); the score is the share of the measured change (in noise units) that the prediction explains with
    the best non-negative gain, so a link failure is recognised by the load it pushes onto other links and the
    reachability it removes, not only by its own counters. A link's loss is compared beyond what its own overload
    explains (``loss_beyond_overload``): its utilisation shows the overload already, and that loss is nothing up to
    the capacity and rises steeply past it, so no gain scales a hypothesis's overload (a crowd sized 3x) to a
    measured one.

    ``scope`` bounds the hypotheses to the neighbourhood of what changed most: the nodes of the ``scope`` KPIs
    that moved furthest (in noise units) and their neighbours. A fault shows first at its own place (a link's
    state, a router's links, a crowd's access links), so the true cause stays in scope, and the twin replays a
    few dozen hypotheses instead of every one. ``None`` replays them all."""

    def __init__(self, network: Network, *, kinds: tuple[str, ...] | None = None, seed: int = 0,
                 scope: int | None = 6) -> None:
        self.network = network
        self.kinds = kinds
        self.seed = seed
        self.scope = scope
        self._sim = Twin(network, seed=seed)
        self._base_metric = self._sim.metric.copy()
        self._candidates = candidate_faults(network, kinds=kinds)
        self._entities, names = feature_layout(self._sim)
        kpi = np.array(names)
        self._groups = [np.flatnonzero(kpi == name) for name in dict.fromkeys(names)]
        self._loss, self._utilisation = np.flatnonzero(kpi == "link_loss"), np.flatnonzero(kpi == "link_utilisation")
        self._neighbours: dict[str, set[str]] = {n.id: set() for n in network.nodes}
        for link in network.links:
            self._neighbours[link.source].add(link.target)
            self._neighbours[link.target].add(link.source)

    @property
    def twin(self) -> Twin:
        """The noise-free twin the hypotheses are replayed on (its entity order is the snapshots')."""
        return self._sim

    def rank(self, before: Snapshot, after: Snapshot, *, minute: float = 0.0,
             noise: np.ndarray | None = None, metrics: np.ndarray | None = None, top: int | None = None,
             known: list[Fault] | None = None, policies: list[PathPolicy] | None = None) -> list[Cause]:
        """``minute`` places the twin's demand at the time of ``after``; ``noise`` is each KPI's measured noise
        (standard deviation), floored per KPI; ``metrics`` is the current IGP metric per link; ``known`` are
        faults already in place before the change (localised earlier): each hypothesis is replayed on top of
        them, since a second fault moves load over the network the first one left; ``policies`` are the explicit
        paths the network runs."""
        ranking = self.start(before, after, minute=minute, noise=noise, metrics=metrics, known=known,
                             policies=policies)
        if ranking is None:
            return []
        ranking.advance()
        return ranking.result(top)

    def start(self, before: Snapshot, after: Snapshot, *, minute: float = 0.0, noise: np.ndarray | None = None,
              metrics: np.ndarray | None = None, known: list[Fault] | None = None,
              policies: list[PathPolicy] | None = None) -> Ranking | None:
        """The same as ``rank``, as a localisation to ``advance`` a part at a time (None: nothing changed)."""
        _, names = feature_layout(self._sim)
        metrics = self._base_metric if metrics is None else np.asarray(metrics)
        floor = noise_floors(names)
        sigma = floor if noise is None else np.maximum(noise, floor)
        observed = in_noise_units(self.compared(after.values) - self.compared(before.values), sigma)
        if not np.any(observed):
            return None
        # The twin's demand is scaled to the measured load first, so it sees the congestion the network sees.
        in_place = tuple(known or ())
        ranking = Ranking(self, observed, sigma, minute, metrics, 1.0, in_place, self.hypotheses(observed),
                          policies=tuple(policies or ()))
        n_links = len(self._sim.link_ids)
        twin_load = ranking.replay([list(in_place)])[0][:n_links].sum()
        if twin_load > 0:
            ranking.scale = float(np.clip(before.values[:n_links].sum() / twin_load, 0.25, 4.0))
        return ranking

    def compared(self, values: np.ndarray) -> np.ndarray:
        """A snapshot's values as the localisation compares them: each link's loss beyond its own overload."""
        values = np.array(values, dtype=float)
        values[self._loss] = loss_beyond_overload(values[self._loss], values[self._utilisation])
        return values

    def hypotheses(self, observed: np.ndarray) -> list[Fault]:
        """The candidate faults in scope of a measured change (in noise units, snapshot order)."""
        if self.scope is None:
            return self._candidates
        entities = self._entities
        strength = np.abs(in_noise_units(observed, 1.0))  # ties and zeros the same on every machine
        # The strongest changes overall, and the strongest few of each KPI: a state flip (a link or router
        # down) is the most telling sign of where a fault is, even when the load it moves changes more.
        strongest = list(np.argsort(-strength, kind="stable")[:self.scope])
        for group in self._groups:
            strongest += list(group[np.argsort(-strength[group], kind="stable")[:max(1, self.scope // 3)]])
        core: set[str] = set()
        for i in strongest:
            if strength[i] == 0:
                continue
            kind, _, name = entities[i].partition(":")
            core.update(name.split("#")[0].split("->") if kind == "link" else [name])
        near = core.union(*(self._neighbours.get(node, set()) for node in core))
        chosen = []
        for fault in self._candidates:
            ends = fault.behaviour.target(fault).nodes
            if ends <= near and ends & core:
                chosen.append(fault)
        return chosen


@dataclass
class Ranking:
    """A localisation under way. ``advance`` replays its hypotheses a chunk at a time until a deadline, so a
    caller with a budget per tick (the autopilot) can spread one localisation over several ticks; the result is
    the same as ``RootCauseLocalizer.rank``'s."""

    localizer: RootCauseLocalizer
    observed: np.ndarray
    sigma: np.ndarray
    minute: float
    metrics: np.ndarray
    scale: float  # the twin's demand over its own, so it carries the load measured before the change
    known: tuple[Fault, ...]
    pending: list[Fault]
    causes: list[Cause] = field(default_factory=list)
    policies: tuple[PathPolicy, ...] = ()
    _per_chunk: float = 0.0  # the longest a chunk took (seconds)

    @property
    def done(self) -> bool:
        return not self.pending

    def replay(self, fault_sets: list[list[Fault]]) -> list[np.ndarray]:
        """The twin's noise-free snapshot under each set of faults, at this localisation's time and metrics, as
        the localisation compares it (``RootCauseLocalizer.compared``)."""
        sim = self.localizer.twin
        sim.set_metrics(self.metrics)
        sim.set_policies(list(self.policies))
        sim.minute = self.minute
        return [self.localizer.compared(Snapshot.from_step(r).values)
                for r in sim.replay(fault_sets, scale=self.scale)]

    def advance(self, deadline: float | None = None, chunk: int = 16, max_chunks: int | None = None) -> bool:
        """Replay hypotheses, ``chunk`` at a time, while the next chunk is expected to end before ``deadline`` (a
        ``time.perf_counter()`` value) and at most ``max_chunks`` of them (None and None: all); one chunk at
        least. True when every hypothesis has been scored."""
        done = 0
        while self.pending:
            started = time.perf_counter()
            if done and ((deadline is not None and started + self._per_chunk > deadline) or
                         (max_chunks is not None and done >= max_chunks)):
                break
            done += 1
            batch, self.pending = self.pending[:chunk], self.pending[chunk:]
            healthy, *replayed = self.replay([list(self.known)] + [[*self.known, fault] for fault in batch])
            observed = self.observed
            for fault, values in zip(batch, replayed, strict=True):
                # A hypothesis that moves nothing is 0 on every machine, not a rounding error's direction.
                predicted = in_noise_units(values - healthy, self.sigma)
                norm = float(predicted @ predicted)
                if norm == 0.0:
                    continue
                gain = max(0.0, float(observed @ predicted) / norm)
                residual = observed - gain * predicted
                explained = 1.0 - float(residual @ residual) / float(observed @ observed)
                self.causes.append(Cause(fault.kind, fault.behaviour.target(fault).name, max(0.0, explained), fault))
            self._per_chunk = max(self._per_chunk, time.perf_counter() - started)
        return self.done

    def result(self, top: int | None = None) -> list[Cause]:
        """The causes scored so far, best first (all of them once ``done``)."""
        # Scores that tie but for rounding errors keep the hypotheses' order, on every machine.
        causes = sorted(self.causes, key=lambda c: -tie_key(c.score))
        return causes[:top] if top else causes


def incident_onsets(samples: pa.Table, *, threshold: float = 10.0, min_entities: int = 2,
                    quiet_steps: int = 10) -> list:
    """Sample times at which at least ``min_entities`` KPIs jump at once (a new robust-z peak above
    ``threshold``), at least ``quiet_steps`` times after the previous onset: where incidents start."""
    from netpilot.analytics.detect import StreamingDetector

    if samples.num_rows == 0:
        return []
    ts = pc.unique(samples["timestamp"]).sort()
    index = {t: i for i, t in enumerate(ts.to_pylist())}
    hits = np.zeros(len(ts))
    table = samples.sort_by([("entity", "ascending"), ("metric", "ascending"), ("timestamp", "ascending")])
    keys = pc.binary_join_element_wise(table["entity"], table["metric"], "|").to_numpy(zero_copy_only=False)
    times = table["timestamp"].to_pylist()
    values = table["value"].to_numpy(zero_copy_only=False)
    boundaries = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    for start, stop in itertools.pairwise(boundaries):
        detector = StreamingDetector(level_alpha=0.05, warmup=10, peak_window=60)
        for j in range(start, stop):
            if detector.update(float(values[j])) >= threshold:
                hits[index[times[j]]] += 1
    onsets, last = [], -quiet_steps - 1
    for i in np.flatnonzero(hits >= min_entities).tolist():
        if i - last > quiet_steps:
            onsets.append(ts[i].as_py())
            last = i
    return onsets


def require_columns(samples: pa.Table, where: str) -> None:
    missing = {"timestamp", "entity", "metric", "value"} - set(samples.column_names)
    if missing:
        raise InputError.at(f"telemetry lacks column(s) {sorted(missing)}; expected timestamp, entity, metric, "
                            "value", file=where)


def _window_noise(sim: EntityLayout, samples: pa.Table) -> np.ndarray:
    """Each compared KPI's sample-to-sample noise (standard deviation) over ``samples``."""
    entities, names = feature_layout(sim)
    metric_of = {name: metric for name, metric, _ in FEATURES}
    position = {(e, metric_of[n]): i for i, (e, n) in enumerate(zip(entities, names, strict=True))}
    noise = np.zeros(len(entities))
    if samples.num_rows < 2:
        return noise
    frame = samples.select(["timestamp", "entity", "metric", "value"]).to_pandas()
    frame = frame.sort_values(["entity", "metric", "timestamp"])
    diffs = frame.groupby(["entity", "metric"], observed=True)["value"].diff()
    spread = diffs.groupby([frame["entity"], frame["metric"]], observed=True).std() / np.sqrt(2.0)
    for (entity, metric), value in spread.items():
        i = position.get((entity, metric))
        if i is not None and value == value:
            noise[i] = value
    return noise


def incident_window_causes(network: Network, samples: pa.Table, onset: datetime, *, before_steps: int = 15,
                           after_steps: int = 5, top: int | None = 5,
                           localizer: RootCauseLocalizer | None = None) -> list[Cause]:
    """Rank causes for an incident starting at ``onset``: the healthy state is the ``before_steps`` sample times
    before it, the incident the ``after_steps`` times from it on."""
    localizer = localizer or RootCauseLocalizer(network)
    times = pc.unique(samples["timestamp"]).sort().to_pylist()
    at = next((i for i, t in enumerate(times) if t >= onset), len(times))
    before_times = times[max(0, at - before_steps):at]
    after_times = times[at:at + after_steps]
    if not before_times or not after_times:
        return []

    def window(chosen: list) -> pa.Table:
        return samples.filter(pc.is_in(samples["timestamp"], pa.array(chosen, samples["timestamp"].type)))

    before_samples = window(before_times)
    sim = localizer.twin
    before = snapshot_from_samples(sim, before_samples)
    after = snapshot_from_samples(sim, window(after_times))
    # The twin's demand follows the time of week, so place it at the incident's hour of the week.
    moment = after_times[len(after_times) // 2]
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    minute = ((moment - DEFAULT_START).total_seconds() / 60.0) % (7 * 24 * 60)
    return localizer.rank(before, after, minute=minute, noise=_window_noise(sim, before_samples), top=top)
