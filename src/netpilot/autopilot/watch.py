"""Watching the KPIs: each tick's snapshot scored against what the twin expects, an incident opened when
enough KPIs jump at once, and its localisation run a chunk at a time until its causes are ranked."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from netpilot.analytics.detect import DetectorBank
from netpilot.analytics.rca import Cause, Ranking, RootCauseLocalizer, Snapshot, feature_layout, noise_floors
from netpilot.autopilot.beliefs import BeforeIncident
from netpilot.autopilot.records import Incident, Records
from netpilot.autopilot.settings import DetectionSettings
from netpilot.model.faults import Fault
from netpilot.model.frame import KpiFrame, loss_beyond_overload, loss_with_overload
from netpilot.model.network import Network, PathPolicy

#: An alarmed load-driven KPI this close (noise standard deviations) to what the twin expects once a believed
#: fault has ended (plus the twin's usual error there), or this share of its distance from what it was scored
#: against, is that end, not a new fault.
BACK_WITHIN = 3.0
EXPLAINED_SHARE = 1.0 / 3.0


class Watch:
    """Detectors over every compared KPI, the incident waiting to be localised and the localisation under
    way. ``routing_changed`` and ``beliefs_changed`` are set by the loop when the routing or its beliefs moved
    for a known reason: the next tick rebases the load-driven KPIs' detectors instead of alarming."""

    def __init__(self, network: Network, settings: DetectionSettings, records: Records) -> None:
        self.settings = settings
        self.records = records
        self.localizer = RootCauseLocalizer(network)
        entities, names = feature_layout(self.localizer.twin)
        self.feature_names = [f"{e}|{n}" for e, n in zip(entities, names, strict=True)]
        self.link_states = np.flatnonzero(np.array(names) == "link_up")  # snapshot positions, in link order
        self.noise_floor = noise_floors(names)
        self.detectors = DetectorBank(len(names), level_alpha=0.05, warmup=10, peak_window=60)
        self.load_kpis = np.array([i for i, name in enumerate(names) if not name.endswith("_up")], dtype=np.int64)
        kpi = np.array(names)
        self._utilisation, self._loss = np.flatnonzero(kpi == "link_utilisation"), np.flatnonzero(kpi == "link_loss")
        self._utilisation_error = np.zeros(len(self._loss))  # per link, the twin's usual error on its utilisation
        self.routing_changed = False  # the next tick follows a routing change the loop made
        self.beliefs_changed = False  # the next tick follows a change of beliefs
        self.routing_since = 0  # the first tick measured under the routing running now
        self.last_onset = -10**9
        self.usual_residual = np.zeros(len(names))  # per KPI, what its detector expected this tick (loads: a residual)
        self.scored = np.zeros(len(names))  # this tick's snapshot as scored (loads: their residual from the twin)
        # Per KPI, its first jump among KPIs alarming together before the baseline was seen: the tick (-1:
        # none), its score, where it was expected just before and which way it jumped from there.
        self.early_tick = np.full(len(names), -1, dtype=np.int64)
        self.early_score = np.zeros(len(names))
        self.early_before = np.zeros(len(names))
        self.early_sign = np.zeros(len(names))
        self.waiting: tuple[Incident, int] | None = None  # an incident waiting to be localised, its onset tick
        self.localising: tuple[Incident, Ranking | None] | None = None  # the localisation under way

    def score(self, snapshot: np.ndarray, expected: np.ndarray, tick: int) -> tuple[np.ndarray, np.ndarray]:
        """(score per KPI, the KPIs alarmed). Load-driven KPIs are scored against what the twin expects now
        (the day's ramp, the faults the loop knows of, the routing it runs), so a busy hour coming on is not
        read as a fault; states are scored as measured; with ``expected_congestion_loss`` a link's congestion
        loss is expected as ``as_scored`` says."""
        # The twin is never exact: each detector has learnt how far off it usually is (its level), which is
        # where a KPI goes back to when a believed fault ends, not to the twin's figure itself.
        usual = np.nan_to_num(self.detectors.expected())
        if self.settings.expected_congestion_loss:
            self._utilisation_error = usual[self._utilisation]
            expected = self.as_scored(snapshot, expected)
        scored = snapshot.copy()
        scored[self.load_kpis] -= expected[self.load_kpis]
        if self.routing_changed or self.beliefs_changed:
            # The routing or the beliefs changed because of the loop: what the twin expects moves for a known
            # reason, so the detectors of load-driven KPIs start from the new level. State flips are still scored.
            self.detectors.rebase(self.load_kpis, scored[self.load_kpis])
            if self.routing_changed:
                self.routing_since = tick
            self.routing_changed = self.beliefs_changed = False
            usual = np.nan_to_num(self.detectors.expected())
        self.usual_residual = usual
        self.scored = scored
        scores = self.detectors.update(scored)
        return scores, np.flatnonzero(scores >= self.settings.alarm_threshold)

    def as_scored(self, snapshot: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """What the twin expects, each link's congestion loss taken at the utilisation measured, less whatever
        part of it the utilisation's own detector would alarm at (beyond ``alarm_threshold`` of its noise from
        where it usually is against the twin, as of the last ``score``); the loss the twin expects for other
        reasons (a believed degradation) kept. That loss is nothing up to the capacity and steep past it, so
        where the twin's load on a busy link is a few per cent off (its demand is a model), a day's ramp
        crossing the capacity read as a fault at the minute the measured link crossed it, though its
        utilisation was where it usually is. A load that jumps (a crowd, traffic moved onto the link, a
        capacity lost) still loses what the twin does not expect, and a loss beyond the link's overload (a
        degradation's errors) is never expected. Without ``expected_congestion_loss``, ``expected`` as it is."""
        if not self.settings.expected_congestion_loss:
            return expected
        expected = np.array(expected, dtype=float)
        measured = snapshot[self._utilisation]
        off = np.zeros(len(snapshot))
        off[self._utilisation] = measured - expected[self._utilisation] - self._utilisation_error
        z = self.detectors.deviation(off)[self._utilisation]
        limit = self.settings.alarm_threshold
        anomalous = off[self._utilisation] * (1.0 - limit / np.maximum(z, limit))  # 0 up to the threshold
        other = loss_beyond_overload(expected[self._loss], expected[self._utilisation])
        expected[self._loss] = loss_with_overload(other, measured - np.nan_to_num(anomalous))
        return expected

    def not_explained(self, alarmed: np.ndarray, snapshot: np.ndarray, expected: np.ndarray, after: np.ndarray
                      ) -> np.ndarray:
        """The alarmed KPIs that ``after`` (the twin once some beliefs are dropped) does not explain, where the
        snapshot was scored against ``expected``: a state equal to it is explained, and a load-driven KPI within
        ``BACK_WITHIN`` noise standard deviations of it, or no more than ``EXPLAINED_SHARE`` as far from it as
        from what was expected (the end explains most of the jump; a new fault starting then is off both). The
        distances are taken from the twin's figures, and again from them plus the residual the KPI's detector
        expected this tick (the twin's usual error there): a load goes back to one or the other (a link's loss
        to none, its utilisation to what the twin gets wrong about it). A value that is not finite is never
        explained. Losses are expected as ``score`` expected them (``as_scored``)."""
        expected, after = self.as_scored(snapshot, expected), self.as_scored(snapshot, after)
        load = np.isin(alarmed, self.load_kpis)
        near = np.zeros(len(alarmed), dtype=bool)
        finite = np.ones(len(alarmed), dtype=bool)
        for usual in (0.0, self.usual_residual):
            off_after = self.detectors.deviation(snapshot - after - usual)[alarmed]
            off_before = self.detectors.deviation(snapshot - expected - usual)[alarmed]
            near |= (off_after < BACK_WITHIN) | (off_after <= EXPLAINED_SHARE * off_before)
            finite &= np.isfinite(off_after) & np.isfinite(off_before)
        explained = finite & np.where(load, near, np.abs(snapshot - after)[alarmed] < 0.5)
        return np.asarray(alarmed[~explained], dtype=np.int64)

    def open_incident(self, frame: KpiFrame, scores: np.ndarray, alarmed: np.ndarray, tick: int
                      ) -> Incident | None:
        """A new incident when enough KPIs alarm and it is not the last one's churn.

        It waits out the quiet period after the last one, unless something changed state (a link or router went
        down) that the last incident did not already show: a state flip is never noise, and a fault must not
        hide behind the churn of an earlier one or of the loop's own change. Nor must it hide behind a small
        incident just before it (a couple of KPIs over the threshold): many more KPIs alarming, and other ones,
        is a new incident (``escalated``); the small one, if not yet localised, is localised as part of it.
        Until a baseline has been seen, a jump cannot be told from the day's ramp, nor localised: KPIs that
        jump together before then are remembered (``early_tick``), and once the baseline is there, those still off
        where they were expected before the jump open the incident, with the jump as its onset (a fault in the
        loop's first minutes would otherwise be taken by the detectors as the network's normal)."""
        settings, names, incidents = self.settings, self.feature_names, self.records.incidents
        if tick < settings.baseline_steps:
            if len(alarmed) >= settings.min_alarms:
                # Only a jump away from what the twin expects: a load's residual growing, a state going down. A
                # KPI coming back (a fault that was on when the loop started ends) is no new fault.
                before, now = self.usual_residual[alarmed], self.scored[alarmed]
                away = np.where(np.isin(alarmed, self.load_kpis), np.abs(now) > np.abs(before), now < before)
                first = (self.early_tick[alarmed] < 0) & away
                kpis = alarmed[first]
                self.early_tick[kpis] = tick
                self.early_score[kpis] = scores[kpis]
                self.early_before[kpis] = before[first]
                self.early_sign[kpis] = np.sign(now[first] - before[first])
            return None
        onset = tick
        if tick == settings.baseline_steps:
            alarmed, scores, onset = self._still_off(alarmed, scores, tick)
        recent = set(incidents[-1].alarms) if incidents else set()
        flipped = [i for i in alarmed if names[i].endswith("_up") and names[i] not in recent]
        fresh = sum(names[i] not in recent for i in alarmed)
        escalated = len(recent) <= settings.min_alarms + 1 and fresh >= 3 * max(len(recent), 1) and \
            onset - self.last_onset > 1
        quiet = onset - self.last_onset > settings.quiet_steps
        if not (len(alarmed) >= settings.min_alarms and (quiet or flipped or escalated)):
            return None
        ranked = alarmed[np.argsort(-scores[alarmed], kind="stable")]
        shown = list(dict.fromkeys([names[i] for i in flipped] + [names[i] for i in ranked]))[:10]
        incident = Incident(f"I{len(incidents) + 1}", frame.ts.isoformat(), frame.minute, shown)
        incidents.append(incident)
        self.waiting = (incident, onset)
        self.last_onset = onset
        return incident

    def _still_off(self, alarmed: np.ndarray, scores: np.ndarray, tick: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The KPIs that jumped before the baseline and are still off, the way they jumped, where their detectors
        expected them before it by half the alarm threshold in the KPI's noise floor (the detectors' own noise,
        learnt from a few samples and over the jump itself, cannot tell a fault from a warm-up's scatter), joined
        to this tick's alarms with their jump as the onset where enough of them are; else this tick's alarms
        alone."""
        early = np.flatnonzero(self.early_tick >= 0)
        still = (self.scored[early] - self.early_before[early]) * self.early_sign[early]
        early = early[still >= self.settings.alarm_threshold / 2 * self.noise_floor[early]]
        if len(early) < self.settings.min_alarms:
            return alarmed, scores, tick
        scores = scores.copy()
        scores[early] = np.maximum(scores[early], self.early_score[early])
        # The onset: the tick most of them jumped at (the earliest of equals), not one KPI's scatter before it.
        ticks, counts = np.unique(self.early_tick[early], return_counts=True)
        return np.union1d(early, alarmed), scores, int(ticks[np.argmax(counts)])

    def ready_to_localise(self, tick: int) -> bool:
        """One localisation at a time: a new incident waits for the one under way (its onset is kept, so its
        before and after are still measured around it), rather than a tick finishing the other at once."""
        return self.waiting is not None and tick - self.waiting[1] >= self.settings.localise_after - 1 and \
            self.localising is None

    def start_localising(self, tick_count: int, minute: float, measured_capacity: np.ndarray,
                         capacity: np.ndarray, metrics: np.ndarray, known: list[Fault],
                         policies: list[PathPolicy]) -> BeforeIncident | None:
        """Begin localising the waiting incident: its healthy state and its state since the onset, compared on
        the twin under ``known`` faults, ``metrics`` and ``policies``. Returns the link loads before it (for
        sizing a crowd against them rather than against the twin's demand alone, whose error at one node is of
        the size of a small crowd), or None when there is too little history."""
        assert self.waiting is not None
        incident, onset = self.waiting
        self.waiting = None
        history = np.array(self.records.snapshots)
        ahead = tick_count - onset  # snapshots from the onset on
        # The healthy state is measured under the routing running now where there is enough of it: loads that
        # moved because the loop changed the routing are not the incident's doing.
        settled = onset - self.routing_since
        baseline = self.settings.baseline_steps
        steps = min(baseline, settled) if settled >= 3 else baseline
        before = history[-ahead - steps:-ahead]
        after = history[-ahead:]
        if len(before) < 3:
            self.localising = (incident, None)
            return None
        noise = np.maximum(np.std(np.diff(before, axis=0), axis=0) / np.sqrt(2), self.noise_floor)
        utilisation = np.median(np.array(self.records.utilisation)[-ahead - steps:-ahead], axis=0)
        capacity = np.where(np.isfinite(measured_capacity), measured_capacity, capacity)
        up = np.median(before[:, self.link_states], axis=0) > 0.5
        times = self.records.times
        elapsed = (datetime.fromisoformat(times[-1]) -
                   datetime.fromisoformat(times[max(-ahead - steps // 2 - 1, -len(times))])).total_seconds() / 60.0
        ranking = self.localizer.start(Snapshot(np.median(before, axis=0)), Snapshot(np.median(after, axis=0)),
                                       minute=minute, noise=noise, metrics=metrics, known=known,
                                       policies=policies)
        self.localising = (incident, ranking)
        return BeforeIncident(utilisation * capacity, up, minute - elapsed)

    def advance(self, frame: KpiFrame, *, deadline: float | None, chunks: int | None) -> list[Cause] | None:
        """Advance the localisation under way until ``deadline`` or by ``chunks``; once every hypothesis is
        scored, the incident gets its ranked causes, which are returned (None while it goes on)."""
        assert self.localising is not None
        incident, ranking = self.localising
        if ranking is not None and not ranking.advance(deadline, max_chunks=chunks):
            return None
        self.localising = None
        causes = ranking.result(10) if ranking is not None else []
        incident.causes = [c.as_dict() for c in causes]
        incident.localised_at = frame.ts.isoformat()
        return causes
