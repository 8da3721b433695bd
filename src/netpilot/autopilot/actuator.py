"""The loop's hands: proposals into the change workflow, approved changes committed through the driver on the
same commit-confirmed path as ``change apply`` (confirmed or rolled back by a post-check on measured telemetry
some ticks later), and a person's rollback or revert."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from netpilot.autopilot.estimate import plan_key
from netpilot.autopilot.records import Applied, Records
from netpilot.autopilot.settings import ActuatorSettings
from netpilot.change.actuate import approved_intents, begin_apply, still_verified
from netpilot.change.apply import commit_candidate, rollback_change, settle
from netpilot.change.drivers import DriverError, NetworkDriver
from netpilot.change.intents import ApplyMetrics, Intent, apply_intents
from netpilot.change.verify import Report, VerificationFigures
from netpilot.change.workflow import ChangeStore, WorkflowError, twin_diff
from netpilot.model.frame import KpiFrame
from netpilot.model.network import Network

#: How much worse than before (MLU) a change may measure above the limit before its post-check rolls it back.
WORSE_BY = 0.05


class Actuator:
    """Acts for the loop on one driver and one workflow. ``tick`` is the loop's current tick (set by the loop);
    ``last_change_tick`` the tick of the last change proposed or applied (the cooldown counts from it).
    ``routing_changed`` is set whenever the routing the network runs changes; ``refuted`` collects the plans
    the network's measurements refuted (rolled back), for the planners to avoid."""

    def __init__(self, changes: ChangeStore, driver: NetworkDriver, settings: ActuatorSettings, records: Records,
                 congestion: float) -> None:
        self.changes = changes
        self.driver = driver
        self.settings = settings
        self.records = records
        self.congestion = congestion
        self.tick = 0
        self.last_change_tick = -10**9
        self.checking: tuple[Applied, int] | None = None  # the change being checked, the tick of its check
        self.routing_changed = False
        self.refuted: list[bytes] = []
        self.act_ms = 0.0  # this tick's time spent applying and checking changes
        self._not_applicable: set[str] = set()  # approved changes this network cannot take

    @property
    def running(self) -> Network:
        return self.driver.running()

    # --- the workflow -----------------------------------------------------------------------------------------

    def propose(self, intent: Intent, why: str, evidence: dict[str, Any], believed: Network, after: Network,
                report: Report, frame: KpiFrame, mlu: float, planned: float) -> str:
        """A verified plan becomes a change with its evidence; policy may approve it, and then it is applied."""
        actor = self.settings.actor
        change_id = self.changes.propose([intent.model_dump()], actor, why, twin_diff(believed, after))
        self.changes.annotate(change_id, actor, "evidence", evidence)
        state = self.changes.record_verification(change_id, report.as_dict())
        self.last_change_tick = self.tick
        if state == "approved":
            self.apply(change_id, [intent], frame, mlu, planned)
        return change_id

    def supersede(self, why: str) -> None:
        """A proposal still waiting for a person was planned for a network that no longer exists: withdraw it."""
        for change in self.changes.list("verified"):
            if change.proposer == self.settings.actor:
                self.changes.reject(change.id, self.settings.actor, why)
                self.last_change_tick = -10**9  # re-plan at once

    def waiting_for_person(self) -> bool:
        return any(c.proposer == self.settings.actor for c in self.changes.list("verified"))

    def apply_approved(self, frame: KpiFrame, mlu: float,
                       reverify: Callable[[list[Intent]], dict[str, Any]]) -> bool:
        """Changes a person approved since the last tick are applied now: the loop's own, and those people
        proposed, when the network under control takes them (the driver's ``capabilities()``). The intents are
        those the change's audit chain shows approved, and ``reverify`` verifies them again on the network as it
        is now; a change that fails is rejected. True when one was (the network moved on: plan again at once)."""
        if self.checking is not None:
            return False
        actor, moved_on = self.settings.actor, False
        for change in self.changes.list("approved"):
            if change.id in self._not_applicable:
                continue
            intents = approved_intents(self.changes, change.id, actor)  # from the audit chain, not the row
            if intents and all(i.intent in self.settings.left_to_others for i in intents):
                self._not_applicable.add(change.id)  # another loop's (the AI-RAN's) to apply
                continue
            refusal = None if intents is None else self.driver.capabilities().refusal(i.intent for i in intents)
            if intents is None or refusal is not None:
                self._not_applicable.add(change.id)
                if refusal is not None:
                    self.changes.annotate(change.id, actor, "not_applied",
                                          f"the network under control does not take it ({refusal})")
                continue
            if not still_verified(self.changes, change.id, reverify(intents), actor):
                self.last_change_tick, moved_on = -10**9, True  # the network moved on: plan again at once
                continue
            evidence = self.changes.annotations(change.id).get("evidence", {})
            predicted = evidence["predicted_mlu"] if "predicted_mlu" in evidence else \
                (VerificationFigures.from_dict(change.verification["figures"]).mlu_after
                 if change.verification and "figures" in change.verification else None)
            self.apply(change.id, intents, frame, mlu, float(predicted or 0.0))
            return moved_on
        return moved_on

    # --- commit-confirmed -------------------------------------------------------------------------------------

    def apply(self, change_id: str, intents: list[Intent], frame: KpiFrame, mlu: float, predicted: float) -> None:
        """Commit the change with the driver's confirm window (``commit_confirm``; None: no timer): the
        post-check, ``check_after`` ticks on, confirms or rolls it back on measured telemetry and the devices'
        forwarding; the window reverts it by itself if the loop is gone before then."""
        started = time.perf_counter()
        try:
            self._commit(change_id, intents, frame, mlu, predicted)
        finally:
            self.act_ms += (time.perf_counter() - started) * 1000.0

    def _commit(self, change_id: str, intents: list[Intent], frame: KpiFrame, mlu: float, predicted: float) -> None:
        actor, running = self.settings.actor, self.running
        before = running.arrays().metric.copy()
        policies_before = list(running.policies)
        begin_apply(self.changes, change_id, self.driver, actor,
                    {"confirm": f"after {self.settings.check_after} ticks"})
        try:
            diff, refused = commit_candidate(self.driver, apply_intents(running, intents),
                                             self.settings.commit_confirm)
        except DriverError as exc:  # refused before anything was committed (a driver cannot express it)
            self._not_applicable.add(change_id)
            self.changes.advance(change_id, "rolled_back", actor, {"why": f"the driver refused it: {exc}"})
            return
        self.routing_changed = True
        if refused is not None:
            self._not_applicable.add(change_id)
            self.changes.advance(change_id, "rolled_back", actor, {"why": refused, "diff": diff})
            return
        self.changes.advance(change_id, "checking", actor, {"diff": diff, "predicted_mlu": predicted})
        running = self.running
        applied = Applied(change_id, frame.minute, before, running.arrays().metric.copy(), mlu, predicted,
                          policies_before=policies_before, policies_after=list(running.policies))
        self.records.applied.append(applied)
        self.checking = (applied, self.tick + self.settings.check_after)
        self.last_change_tick = self.tick

    def check_due(self) -> bool:
        return self.checking is not None and self.tick >= self.checking[1]

    def post_check(self, mlu: float) -> Applied:
        """Confirm the change being checked, or roll it back when the network measures worse than before and
        above the limit (the twin was wrong about it). Returns it, its state set."""
        assert self.checking is not None
        applied, _ = self.checking
        self.checking = None
        applied.measured_mlu = mlu
        failed = mlu > self.congestion and mlu > applied.mlu_before + WORSE_BY
        # And the devices must forward as the twin of what was committed predicts.
        forwarding = self.driver.check()
        outcome = applied.outcome()
        settle(self.driver, not failed and forwarding.ok)
        if failed or not forwarding.ok:
            self.routing_changed = True
            self.refuted.append(plan_key(applied.metric_after, applied.policies_after))
            applied.state = "rolled_back"
            self.changes.advance(applied.change_id, "rolled_back", self.settings.actor,
                                 {"post_check": f"measured MLU {mlu:.3f} is above the limit and worse than "
                                                f"{applied.mlu_before:.3f} before" if failed else
                                  f"the devices do not forward as the twin predicted: {forwarding.detail}",
                                  "outcome": outcome})
        else:
            applied.state = "done"
            self.changes.advance(applied.change_id, "done", self.settings.actor,
                                 {"post_check": f"measured MLU {mlu:.3f} (predicted {applied.predicted_mlu:.3f}); "
                                                f"{forwarding.detail}", "outcome": outcome})
        return applied

    # --- a person's word --------------------------------------------------------------------------------------

    def rollback_in_flight(self, actor: str, change_id: str | None = None) -> str | None:
        """A person rolls back the change being checked (before the loop confirms it), when it is
        ``change_id`` (if given). Returns its id, None when there is nothing to roll back."""
        if self.checking is None or (change_id is not None and self.checking[0].change_id != change_id):
            return None
        applied, _ = self.checking
        self.checking = None
        settle(self.driver, keep=False)
        self.routing_changed = True
        applied.state = "rolled_back"
        self.changes.advance(applied.change_id, "rolled_back", actor, {"post_check": "rolled back by hand"})
        return applied.change_id

    def revert(self, change_id: str, actor: str, why: str, link_ids: list[str]) -> str:
        """A person reverts a change the loop applied and confirmed: its metrics and path policies go back
        through the driver, commit-confirmed, kept once the driver runs exactly the old ones. Returns the
        change's state."""
        applied = next((a for a in self.records.applied if a.change_id == change_id and a.state == "done"), None)
        if applied is None:
            raise WorkflowError(f"change {change_id} is not a change this loop applied and confirmed")
        old = ApplyMetrics(intent="apply_metrics", metrics={name: int(m) for name, m in
                                                            zip(link_ids, applied.metric_before.tolist(),
                                                                strict=True)})
        previous = apply_intents(self.running, [old]).model_copy(update={"policies": applied.policies_before})

        def runs_old_metrics() -> tuple[bool, str]:
            running = self.running
            same = np.array_equal(running.arrays().metric, applied.metric_before) and \
                running.policies == applied.policies_before
            return same, "the network runs the metrics and paths from before the change" if same else \
                "the driver did not take the old metrics and paths"

        state = rollback_change(self.changes, change_id, self.driver, previous, runs_old_metrics, actor=actor,
                                why=why, confirm_seconds=None)
        if state == "rolled_back":
            applied.state = "rolled_back"
            self.routing_changed = True
            self.refuted.append(plan_key(applied.metric_after, applied.policies_after))
            self.last_change_tick = self.tick  # a cooldown before the next plan
        return state
