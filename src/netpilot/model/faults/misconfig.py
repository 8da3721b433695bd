"""A metric misconfiguration: a link set to the wrong IGP metric (by default so high that no path takes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netpilot.model.faults.base import Fault, LinkFaultKind, TwinState

if TYPE_CHECKING:
    from netpilot.model.network import Network, NetworkArrays


class MetricMisconfig(LinkFaultKind):
    name = "misconfig"
    order = 40
    # Believed once localised: a change planned on the configured metric routes around the link in the twin but
    # not on the routers, and is verified against a network that is not there.
    actionable = True
    holds_metric = True
    params = ("one_way", "metric")

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        state.metric[self.links(fault, arrays)] = fault.metric

    def link_hypotheses(self, source: str, target: str) -> list[Fault]:
        return [Fault(kind=self.name, target=[source, target], at_minute=0)]
