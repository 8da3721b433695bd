"""Read-only tools for explanations: the network's state, a link's or node's load and what it carries, forecasts,
incidents with their ranked causes, the what-if of a link failure, the change log. Each reads a snapshot
(``Observations``) and returns words and figures; none holds anything it could write to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netpilot.model.network import Network
from netpilot.model.routing import ecmp_flows
from netpilot.model.whatif import failure_scenarios, what_if

#: At most this many tool calls answer one question.
MAX_STEPS = 3


@dataclass(frozen=True)
class ChangeEntry:
    """One line of the change log as the tools see it (a copy, not the store's record)."""

    id: str
    state: str
    proposer: str
    approver: str | None
    why: str
    kinds: tuple[str, ...]
    created: str


@dataclass(frozen=True)
class Observations:
    """What the tools may read: the twin, and where a live autopilot runs, its measured utilisation (per link, in
    the twin's link order), forecasts, incidents and the change log."""

    network: Network
    utilisation: tuple[float, ...] | None = None
    forecasts: dict[str, dict] = field(default_factory=dict)
    incidents: tuple[dict, ...] = ()
    changes: tuple[ChangeEntry, ...] = ()


@dataclass(frozen=True)
class ToolResult:
    tool: str
    text: str
    figures: dict[str, Any]


class Tools:
    """The tools over one snapshot; the routing of its twin is computed once, on first use."""

    def __init__(self, observations: Observations) -> None:
        self.seen = observations
        self.arrays = observations.network.arrays()
        self._routing = None

    @property
    def routing(self):
        if self._routing is None:
            pairs, volume = self.arrays.demand_pairs()
            self._routing = (ecmp_flows(self.arrays, self.arrays.metric, pairs, volume), volume)
        return self._routing

    def utilisation(self) -> np.ndarray:
        if self.seen.utilisation is not None:
            return np.asarray(self.seen.utilisation, dtype=float)
        routing, _ = self.routing
        cap = self.arrays.capacity
        return np.where(self.arrays.up & (cap > 0), routing.loads / np.where(cap > 0, cap, 1.0), 0.0)

    def _link_name(self, e: int) -> str:
        return f"{self.arrays.node_ids[self.arrays.src[e]]}->{self.arrays.node_ids[self.arrays.dst[e]]}"

    def _links_between(self, a: str, b: str) -> list[int]:
        i, j = self.arrays.index[a], self.arrays.index[b]
        s, d = self.arrays.src, self.arrays.dst
        return [int(e) for e in np.flatnonzero(((s == i) & (d == j)) | ((s == j) & (d == i)))]

    # --- the tools ----------------------------------------------------------------------------------------------

    def network_state(self) -> ToolResult:
        util = self.utilisation()
        top = np.argsort(-util)[:3]
        down = [self._link_name(e) for e in np.flatnonzero(~self.arrays.up)]
        busiest = ", ".join(f"{self._link_name(e)} {util[e]:.0%}" for e in top)
        text = (f"The busiest link runs at {util.max(initial=0.0):.0%} (busiest: {busiest}). "
                + (f"{len(down)} link directions are down ({', '.join(down[:4])}{'…' if len(down) > 4 else ''})."
                   if down else "Every link is up."))
        return ToolResult("network_state", text, {"mlu": float(util.max(initial=0.0)),
                                                  "busiest": [self._link_name(e) for e in top], "down": down})

    def link_load(self, a: str, b: str) -> ToolResult:
        util = self.utilisation()
        routing, _ = self.routing
        parts, figures = [], {}
        for e in self._links_between(a, b):
            name = self._link_name(e)
            flows = routing.link_flow[:, e]
            toward = np.argsort(-flows)[:3]
            total = float(flows.sum())
            heads = ", ".join(f"{self.arrays.node_ids[routing.targets[t]]} ({flows[t] / total:.0%})"
                              for t in toward if total > 0 and flows[t] > 0)
            state = "down" if not self.arrays.up[e] else f"{util[e]:.0%} of {self.arrays.capacity[e]:g} Mbit/s"
            parts.append(f"{name}: {state}" + (f", mostly traffic heading to {heads}" if heads else ""))
            figures[name] = {"utilisation": float(util[e]), "metric": int(self.arrays.metric[e]),
                             "toward": [self.arrays.node_ids[routing.targets[t]] for t in toward]}
        return ToolResult("link_load", "; ".join(parts) + ".", figures)

    def node_load(self, node: str) -> ToolResult:
        util = self.utilisation()
        i = self.arrays.index[node]
        links = np.flatnonzero((self.arrays.src == i) | (self.arrays.dst == i))
        busiest = links[np.argsort(-util[links])[:3]]
        text = (f"{node} has {len(links) // 2 or len(links)} links; its busiest: "
                + ", ".join(f"{self._link_name(e)} {util[e]:.0%}" for e in busiest) + ".")
        return ToolResult("node_load", text, {"busiest": [self._link_name(e) for e in busiest]})

    def failure_what_if(self, a: str, b: str) -> ToolResult:
        routing, volume = self.routing
        wanted = set(self._links_between(a, b))
        scenarios = [s for s in failure_scenarios(self.arrays) if wanted & set(s.tolist())]
        if not scenarios:
            return ToolResult("failure_what_if", f"The link {a}-{b} is down already.", {})
        mlu, worst, stranded, _ = what_if(self.arrays, routing, volume, scenarios)
        text = (f"If {a}-{b} failed, the IGP would move its traffic and the busiest link would be "
                f"{self._link_name(int(worst[0]))} at {mlu[0]:.0%}"
                + (f"; {stranded[0]:.6g} Mbit/s would have no path." if stranded[0] > 0 else
                   "; no demand would be cut off."))
        return ToolResult("failure_what_if", text, {"mlu": float(mlu[0]), "worst": self._link_name(int(worst[0])),
                                                    "stranded_mbps": float(stranded[0])})

    def forecast(self, a: str | None = None, b: str | None = None) -> ToolResult:
        known = self.seen.forecasts
        if a and b:
            known = {k: v for k, v in known.items() if k in (f"{a}->{b}", f"{b}->{a}")}
        if not known:
            return ToolResult("forecast", "No forecast is available" + (f" for {a}-{b}" if a else "")
                              + " (forecasts come from the live autopilot's telemetry).", {})
        rows = sorted(known.items(), key=lambda kv: -float(kv[1].get("peak", 0.0)))[:3]
        text = "; ".join(f"{k} is forecast to peak at {float(v.get('peak', 0.0)):.0%}"
                         + (f" (P(congested) {float(v['p_congested']):.0%})" if "p_congested" in v else "")
                         for k, v in rows) + "."
        return ToolResult("forecast", text, {k: v.get("peak") for k, v in rows})

    def incidents(self, subject: str | None = None) -> ToolResult:
        found = list(self.seen.incidents)
        if subject:
            found = [i for i in found if subject in str(i.get("alarms", "")) + str(i.get("causes", ""))] or found
        if not found:
            return ToolResult("incidents", "There are no open incidents.", {"count": 0})
        parts = []
        for incident in found[-3:]:
            causes = incident.get("causes") or []
            ranked = ", ".join(f"{c.get('kind')} on {c.get('target')} ({float(c.get('score', 0)):.0%})"
                               for c in causes[:3])
            parts.append(f"incident {incident.get('id')} ({len(incident.get('alarms', []))} alarms): "
                         + (f"likely causes {ranked}" if ranked else "causes not localised yet"))
        return ToolResult("incidents", "; ".join(parts) + ".", {"count": len(found)})

    def change_log(self) -> ToolResult:
        if not self.seen.changes:
            return ToolResult("change_log", "No changes have been proposed.", {"count": 0})
        last = self.seen.changes[-5:]
        text = "; ".join(f"{c.id} {c.state} ({', '.join(c.kinds)}; by {c.proposer}"
                         + (f", approved by {c.approver}" if c.approver else "") + f": {c.why})" for c in last) + "."
        return ToolResult("change_log", text, {"count": len(self.seen.changes)})


def plan(topic: str, link: tuple[str, str] | None, node: str | None) -> list[tuple[str, tuple]]:
    """The tool calls (at most MAX_STEPS) that answer a question on ``topic``: code chooses them, the model only
    names the topic and subject."""
    if topic == "link_load" and link:
        steps = [("link_load", link), ("forecast", link), ("incidents", (link[0],))]
    elif topic == "failure_what_if" and link:
        steps = [("failure_what_if", link), ("link_load", link)]
    elif topic == "forecast":
        steps = [("forecast", link or ())]
    elif topic == "node_load" and node:
        steps = [("node_load", (node,)), ("incidents", (node,))]
    elif topic == "incidents":
        steps = [("incidents", ()), ("network_state", ())]
    elif topic == "change_log":
        steps = [("change_log", ())]
    elif node and not link:
        steps = [("node_load", (node,))]
    elif link:
        steps = [("link_load", link)]
    else:
        steps = [("network_state", ()), ("incidents", ())]
    return steps[:MAX_STEPS]


def run_plan(tools: Tools, steps: list[tuple[str, tuple]]) -> list[ToolResult]:
    return [getattr(tools, name)(*args) for name, args in steps[:MAX_STEPS]]
