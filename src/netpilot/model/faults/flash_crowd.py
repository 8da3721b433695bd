"""A flash crowd: a region's demand times a multiplier (a node; for a router, the cell sites behind it too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.faults.base import Fault, FaultKind, TwinState

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays, Node

#: How long a believed crowd is kept at most, minutes (an event's hour).
CROWD_MINUTES = 60.0


class FlashCrowd(FaultKind):
    name = "flash_crowd"
    order = 80
    actionable = True
    inferred = True
    params = ("multiplier",)

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        node = arrays.index[self.node(fault)]
        state.demand_factor[node] *= fault.multiplier
        if network.nodes[node].kind == "router":
            # A region: the router and the cells attached to it.
            for e in np.flatnonzero(arrays.src == node):
                if network.nodes[arrays.dst[e]].kind == "cell_site":
                    state.demand_factor[arrays.dst[e]] *= fault.multiplier

    def demand_region(self, fault: Fault, network: Network, arrays: NetworkArrays) -> np.ndarray:
        index = arrays.index[self.node(fault)]
        region = np.zeros(arrays.n_nodes, dtype=bool)
        region[index] = True
        if network.nodes[index].kind == "router":
            cells = np.array([n.kind == "cell_site" for n in network.nodes])
            region[arrays.dst[(arrays.src == index) & cells[arrays.dst]]] = True
        return region

    def node_hypotheses(self, node: Node) -> list[Fault]:
        if node.kind not in ("router", "cell_site"):
            return []
        return [Fault(kind=self.name, target=node.id, at_minute=0, multiplier=3.0)]

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        # Whether the links still bear the crowd out is the beliefs' to judge (it needs the twin's demand).
        return frame.minute - fault.at_minute <= CROWD_MINUTES
