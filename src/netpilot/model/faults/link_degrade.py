"""A link that degrades: it loses a share of what it carries and part of its capacity (a LAG losing members,
a line with errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.faults.base import Fault, LinkFaultKind, TwinState
from netpilot.model.frame import loss_beyond_overload, measured_capacity

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays

#: A believed degradation is over once its links lose less than this.
HEALED_LOSS = 0.005


class LinkDegrade(LinkFaultKind):
    name = "link_degrade"
    order = 20
    actionable = True
    drain_first = True
    params = ("one_way", "loss", "capacity_factor")

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        links = self.links(fault, arrays)
        state.capacity[links] *= fault.capacity_factor
        state.extra_loss[links] = np.maximum(state.extra_loss[links], fault.loss)

    def link_hypotheses(self, source: str, target: str) -> list[Fault]:
        return [Fault(kind=self.name, target=[source, target], at_minute=0, loss=0.02, capacity_factor=0.5)]

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool((frame.link_loss[self.links(fault, arrays)] < HEALED_LOSS).all())

    def measured(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> dict[str, float]:
        """The capacity its links have left (load over utilisation, against the capacity they were built with;
        the least of them) and the loss beyond their own overload (the most), where they carry enough to tell."""
        links = self.links(fault, arrays)
        capacity = measured_capacity(frame)[links]
        telling = np.isfinite(capacity)
        if not telling.any():
            return {}
        left = capacity[telling] / arrays.capacity[links[telling]]
        loss = loss_beyond_overload(frame.link_loss[links[telling]], frame.link_utilisation[links[telling]])
        return {"capacity_factor": float(np.clip(left.min(), 0.01, 1.0)), "loss": float(loss.max())}
