"""A shared-risk link group cut: every link that runs in one conduit (one SRLG) fails at once, as when a digger
cuts a duct. Its target lists the group's links; the localiser offers one hypothesis per SRLG the network's
links name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netpilot.model.faults.base import Fault, FaultKind, LinkGroupTarget, LinkTarget, TwinState, links_between

if TYPE_CHECKING:
    from netpilot.model.frame import KpiFrame
    from netpilot.model.network import Network, NetworkArrays


class SrlgCut(FaultKind):
    name = "srlg_cut"
    order = 90
    actionable = True

    def target(self, fault: Fault) -> LinkGroupTarget:
        pairs = fault.target
        if not isinstance(pairs, list) or len(pairs) < 2 or \
                not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError(f"{fault.kind} needs target [[A, B], [C, D], ...] (two links or more), got {pairs!r}")
        return LinkGroupTarget(tuple(LinkTarget(str(p[0]), str(p[1])) for p in pairs if isinstance(p, list)))

    def check(self, fault: Fault, arrays: NetworkArrays) -> None:
        for link in self.target(fault).links:
            if link.a not in arrays.index or link.b not in arrays.index or \
                    len(links_between(arrays, link.a, link.b)) == 0:
                raise ValueError(f"no link between {link.a} and {link.b}")

    def links(self, fault: Fault, arrays: NetworkArrays) -> np.ndarray:
        groups = [links_between(arrays, link.a, link.b) for link in self.target(fault).links]
        return np.unique(np.concatenate(groups))

    def apply(self, fault: Fault, state: TwinState, network: Network, arrays: NetworkArrays,
              minute: float) -> None:
        state.link_up[self.links(fault, arrays)] = False

    def network_hypotheses(self, network: Network) -> list[Fault]:
        groups: dict[str, list[list[str]]] = {}
        seen: dict[str, set[frozenset[str]]] = {}
        for link in network.links:
            ends = frozenset((link.source, link.target))
            for group in link.srlgs:
                if ends not in seen.setdefault(group, set()):
                    seen[group].add(ends)
                    groups.setdefault(group, []).append([link.source, link.target])
        return [Fault(kind=self.name, target=pairs, at_minute=0) for pairs in groups.values() if len(pairs) >= 2]

    def shows_in(self, fault: Fault, frame: KpiFrame, arrays: NetworkArrays) -> bool:
        return not bool(np.all(frame.link_up[self.links(fault, arrays)]))
