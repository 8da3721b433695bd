"""A router that goes down: its links with it, and the demand it sources and sinks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netpilot.model.faults.base import Fault, NodeFaultKind

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import NetworkArrays, Node


class RouterDown(NodeFaultKind):
    name = "router_down"
    order = 50
    actionable = True

    def node_hypotheses(self, node: Node) -> list[Fault]:
        return [Fault(kind=self.name, target=node.id, at_minute=0)] if node.kind == "router" else []

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool(frame.node_up[arrays.index[self.node(fault)]])
