"""A link that fails: it carries nothing until it comes back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.faults.base import Fault, LinkFaultKind, TwinState

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays


class LinkDown(LinkFaultKind):
    name = "link_down"
    order = 10
    actionable = True
    params = ("one_way",)

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        state.link_up[self.links(fault, arrays)] = False

    def link_hypotheses(self, source: str, target: str) -> list[Fault]:
        return [Fault(kind=self.name, target=[source, target], at_minute=0)]

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool(np.all(frame.link_up[self.links(fault, arrays)]))
