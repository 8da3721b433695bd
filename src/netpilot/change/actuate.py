"""What the actuator may apply and what a restart does with changes a crash left half applied.

The intents applied are those the change's audit chain shows verified and approved under one hash (never the
``changes`` row, which anyone with the database file can edit), verified once more against the network as it
is at apply time. The network as it ran before is recorded with the ``applying`` step, so a restart can tell
whether the network runs a change and put it back through the driver when the change was not confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netpilot.change.drivers import Driver
from netpilot.change.intents import Intent, IntentList, apply_intents
from netpilot.change.workflow import ChangeStore, WorkflowError
from netpilot.errors import InputError
from netpilot.model.network import Network, PathPolicy

#: ``(ok, why)`` of a post-check on the network as it runs now.
PostCheck = Callable[[Network], tuple[bool, str]]


def approved_intents(store: ChangeStore, change_id: str, actor: str) -> list[Intent] | None:
    """The intents to apply for an approved change, from its audit chain; None (and the refusal in the audit)
    when the chain does not show them verified and approved or the row was edited."""
    try:
        raw = store.approved_intents(change_id)
        return list(IntentList.model_validate(raw).root)
    except (WorkflowError, ValueError) as exc:
        store.annotate(change_id, actor, "refused", f"not applied: {exc}")
        return None


def still_verified(store: ChangeStore, change_id: str, report: dict, actor: str) -> bool:
    """Record the verification made at apply time on the network as it is now; a failed one rejects the
    change (the network moved on since it was approved). True when it may be applied."""
    if report.get("ok"):
        store.annotate(change_id, actor, "reverified", report)
        return True
    store.reject(change_id, actor, "verification at apply time failed on the network as it is now")
    store.annotate(change_id, actor, "reverified", report)
    return False


def running_state(network: Network) -> dict:
    """What a rollback restores: each link's metric and state (in link order) and the explicit paths."""
    return {"links": [[link.id, link.metric, link.state] for link in network.links],
            "policies": [p.model_dump(mode="json") for p in network.policies]}


def with_state(network: Network, state: dict) -> Network:
    """``network`` as it ran when ``state`` was recorded."""
    recorded = {link_id: (metric, up) for link_id, metric, up in state["links"]}
    links = [link.model_copy(update={"metric": recorded[link.id][0], "state": recorded[link.id][1]})
             if link.id in recorded else link for link in network.links]
    return network.model_copy(update={"links": links,
                                      "policies": [PathPolicy.model_validate(p) for p in state["policies"]]})


def begin_apply(store: ChangeStore, change_id: str, driver: Driver, actor: str, detail: dict | None = None) -> None:
    """The ``applying`` step, with the network as it runs before the change (for a restart's rollback)."""
    running = driver.running()
    before = {"before": running_state(running)} if isinstance(running, Network) else {}
    store.advance(change_id, "applying", actor, {**(detail or {}), **before})


@dataclass(frozen=True)
class Reconciled:
    """What start-up did with a change it found ``applying`` or ``checking``."""

    change_id: str
    was: str
    state: str
    why: str


def _runs(running: Network, expected: Network) -> bool:
    return running_state(running) == running_state(expected)


def reconcile(store: ChangeStore, driver: Driver, actor: str, post_check: PostCheck | None = None
              ) -> list[Reconciled]:
    """Every change a crash left ``applying`` or ``checking`` ends confirmed or rolled back: confirmed when the
    network runs it and ``post_check`` passes on it; otherwise, when the network runs it (or part of it), the
    state recorded before it goes back through the driver; a change the network does not run is rolled back
    in the record only. Without a post-check nothing half-checked is confirmed."""
    out: list[Reconciled] = []
    running = driver.running()
    for record in store.list("applying") + store.list("checking"):
        entry = next((e for e in store.audit(record.id) if e["action"] == "applying"), None)
        before_state = (entry or {}).get("detail", {}).get("before")
        try:
            intents = list(IntentList.model_validate(store.chain_of(record.id).intents).root)
        except (WorkflowError, ValueError) as exc:
            intents, why_not = None, str(exc)
        else:
            why_not = ""
        if not isinstance(running, Network) or before_state is None:
            # Nothing to compare with: the change cannot be confirmed, so its record says it was not kept.
            _finish(store, record.state, record.id, actor, "rolled_back",
                    "restart: the network's state before the change was not recorded; not confirmed")
            out.append(Reconciled(record.id, record.state, "rolled_back", "not confirmable"))
            continue
        before = with_state(running, before_state)
        after = None
        if intents is not None:
            try:
                after = apply_intents(before, intents)
            except InputError as exc:
                why_not = str(exc)
        if after is not None and _runs(running, after):
            ok, why = post_check(running) if post_check is not None else (False, "no post-check at restart")
            if ok:
                _finish(store, record.state, record.id, actor, "done", f"restart: the network runs it; {why}")
                out.append(Reconciled(record.id, record.state, "done", why))
                continue
        else:
            why = why_not or "the network does not run it"
        if _runs(running, before):
            _finish(store, record.state, record.id, actor, "rolled_back",
                    f"restart: the network runs the state before the change ({why})")
            out.append(Reconciled(record.id, record.state, "rolled_back", why))
            continue
        driver.load_candidate(before)
        driver.commit(confirm=None)
        driver.confirm()
        running = driver.running()
        _finish(store, record.state, record.id, actor, "rolled_back",
                f"restart: rolled back through the driver to the state before the change ({why})")
        out.append(Reconciled(record.id, record.state, "rolled_back", why))
    return out


def _finish(store: ChangeStore, was: str, change_id: str, actor: str, state: str, why: str) -> None:
    if state == "done" and was == "applying":
        store.advance(change_id, "checking", actor, {"post_check": why})
    store.advance(change_id, state, actor, {"post_check": why, "restart": True})
