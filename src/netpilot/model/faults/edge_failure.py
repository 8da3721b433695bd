"""An edge GPU site that goes down: its GPUs serve nothing and its traffic goes away."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netpilot.model.faults.base import Fault, NodeFaultKind

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import NetworkArrays, Node


class EdgeSiteDown(NodeFaultKind):
    name = "edge_failure"
    order = 70

    def node_hypotheses(self, node: Node) -> list[Fault]:
        return [Fault(kind=self.name, target=node.id, at_minute=0)] if node.kind == "edge_site" else []

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool(frame.node_up[arrays.index[self.node(fault)]])
