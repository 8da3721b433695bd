"""A link that flaps: down for the first half of every period, up for the second."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.faults.base import Fault, LinkFaultKind, TwinState

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays


class LinkFlap(LinkFaultKind):
    name = "link_flap"
    order = 30
    params = ("one_way", "period_minutes")

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        phase = ((minute - fault.at_minute) % fault.period_minutes) / fault.period_minutes
        if phase < 0.5:
            state.link_up[self.links(fault, arrays)] = False

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool(np.all(frame.link_up[self.links(fault, arrays)]))
