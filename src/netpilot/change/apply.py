"""Applying an approved change: commit-confirmed through a driver, a post-check, then confirm or roll back,
with every step in the change's audit trail."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from netpilot.change.drivers import Driver
from netpilot.change.drivers.frr.lab import Lab
from netpilot.change.drivers.frr.render import interfaces, loopbacks
from netpilot.change.workflow import ChangeStore, WorkflowError
from netpilot.model.network import Network
from netpilot.model.routing import ecmp_flows

PostCheck = Callable[[], tuple[bool, str]]


def commit_candidate(driver: Driver, candidate: Network, confirm_seconds: float | None
                     ) -> tuple[dict[str, str], str | None]:
    """The first half of commit-confirmed: load the candidate, diff it, commit it with a confirm timer (None: no
    timer, the caller confirms or rolls back). Returns (the diff, None), or (the diff, why) when a device refused
    the commit, after which every router has gone back."""
    driver.load_candidate(candidate)
    diff = driver.compare().as_dict()
    try:
        driver.commit(confirm=confirm_seconds)
    except Exception as exc:  # a device refused: whatever it was, every router goes back
        driver.rollback()
        return diff, f"commit failed: {exc}"
    return diff, None


def settle(driver: Driver, keep: bool) -> None:
    """The second half: confirm a committed candidate the post-check passed, roll back one it failed."""
    if keep:
        driver.confirm()
    else:
        driver.rollback()


def _commit_confirmed(driver: Driver, candidate: Network, post_check: PostCheck, confirm_seconds: float | None,
                      on_committed: Callable[[dict], None] = lambda diff: None) -> tuple[bool, dict]:
    """Load, commit with a confirm timer, post-check, then confirm or roll back. Returns (kept, what happened:
    the diff and the post-check's word, or why the commit failed)."""
    diff, refused = commit_candidate(driver, candidate, confirm_seconds)
    if refused is not None:
        return False, {"error": refused, "diff": diff}
    on_committed(diff)
    ok, detail = post_check()
    settle(driver, ok)
    return ok, {"diff": diff, "post_check": detail}


def apply_change(store: ChangeStore, change_id: str, driver: Driver, candidate: Network, post_check: PostCheck,
                 *, confirm_seconds: float = 60.0, actor: str = "netpilot") -> str:
    """Returns the final state: ``done`` or ``rolled_back``. Only an approved change is applied."""
    change = store.get(change_id)
    if change.state != "approved":
        raise WorkflowError(f"change {change_id} is {change.state}; only an approved change is applied")
    store.advance(change_id, "applying", actor, {"confirm_seconds": confirm_seconds})
    kept, detail = _commit_confirmed(driver, candidate, post_check, confirm_seconds,
                                     lambda diff: store.advance(change_id, "checking", actor, {"diff": diff}))
    state = "done" if kept else "rolled_back"
    store.advance(change_id, state, actor, {"post_check": detail["post_check"]} if "post_check" in detail
                  else {"why": detail["error"], "diff": detail["diff"]})
    return state


def rollback_change(store: ChangeStore, change_id: str, driver: Driver, previous: Network, post_check: PostCheck,
                    *, actor: str, why: str, confirm_seconds: float | None = 60.0) -> str:
    """Revert a change on a person's word. One still in its confirm window is rolled back from the driver's
    journal. A change that was confirmed (done) is reverted like any change: ``previous`` (the twin as it was
    before the change) is committed with a confirm timer and kept only when ``post_check`` agrees; otherwise
    the routers go back to the change's configuration and the change stays done. Returns the final state."""
    change = store.get(change_id)
    if not why:
        raise WorkflowError("a rollback needs a reason")
    if change.state == "checking":
        driver.rollback()
        store.advance(change_id, "rolled_back", actor, {"why": why, "how": "journal"})
        return "rolled_back"
    if change.state != "done":
        raise WorkflowError(f"change {change_id} is {change.state}; only a change being checked or done can be "
                            "rolled back")
    kept, detail = _commit_confirmed(driver, previous, post_check, confirm_seconds)
    if kept:
        store.advance(change_id, "rolled_back", actor, {"why": why, "how": "revert", **detail})
        return "rolled_back"
    store.annotate(change_id, actor, "rollback_failed", {"why": why, **{k: v for k, v in detail.items()
                                                                       if k != "diff"}})
    return "done"


def twin_next_hops(network: Network) -> dict[str, dict[str, set[str]]]:
    """Per router, per other router, the neighbours ECMP forwards to (what OSPF should install)."""
    arrays = network.arrays()
    routers = [n.id for n in network.nodes if n.kind == "router"]
    index = [arrays.index[r] for r in routers]
    pairs = np.array([(a, b) for a in index for b in index if a != b])
    routing = ecmp_flows(arrays, arrays.metric, pairs, np.ones(len(pairs)))
    out: dict[str, dict[str, set[str]]] = {r: {} for r in routers}
    rows = {t: i for i, t in enumerate(routing.targets)}
    for a, b in pairs:
        row = rows[b]
        hops = {arrays.node_ids[arrays.dst[e]] for e in np.flatnonzero(routing.on_dag[row])
                if arrays.src[e] == a}
        out[arrays.node_ids[a]][arrays.node_ids[b]] = hops
    return out


def lab_matches_twin(lab: Lab, network: Network, *, timeout: float = 45.0) -> PostCheck:
    """A post-check: within ``timeout``, every router's OSPF next hops to every loopback are the ones the twin
    of the approved change predicts."""

    def check() -> tuple[bool, str]:
        expected = twin_next_hops(network)
        loops = loopbacks(network)
        peer_of = {r: {i.name: i.peer for i in ifaces} for r, ifaces in interfaces(network).items()}
        deadline = time.monotonic() + timeout
        mismatch = ""
        while True:
            mismatch = ""
            for router in lab.routers:
                routes = lab.routes(router)
                for other, hops in expected[router].items():
                    seen = {peer_of[router].get(i, i) for i in routes.get(f"{loops[other]}/32", [])}
                    if seen != hops:
                        mismatch = (f"{router} -> {other}: next hops {sorted(seen) or 'none'}, the twin predicted "
                                    f"{sorted(hops)}")
                        break
                if mismatch:
                    break
            if not mismatch:
                return True, "every router forwards to every loopback as the twin predicted"
            if time.monotonic() > deadline:
                return False, mismatch
            time.sleep(0.5)

    return check
