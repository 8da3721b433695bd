"""The fault registry: one module per fault kind, each a ``FaultKind`` that applies itself to the twin, offers
its hypotheses for localisation, says whether it still shows in a frame and names its typed target; and the
fault files that schedule them. A new kind is a new module here (importing this package imports every one)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, RootModel

from netpilot.model.faults.base import (
    REGISTRY,
    Fault,
    FaultKind,
    FaultTarget,
    LinkFaultKind,
    LinkGroupTarget,
    LinkTarget,
    NodeFaultKind,
    NodeTarget,
    TwinState,
    links_between,
)
from netpilot.model.network import Network

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "REGISTRY",
    "Fault",
    "FaultFile",
    "FaultKind",
    "FaultTarget",
    "LinkFaultKind",
    "LinkGroupTarget",
    "LinkTarget",
    "NodeFaultKind",
    "NodeTarget",
    "TwinState",
    "candidate_faults",
    "check_faults",
    "fault_kinds",
    "links_between",
    "load_faults",
    "name_faults",
]


def fault_kinds() -> tuple[str, ...]:
    """Every registered kind's name, in hypothesis order."""
    return tuple(REGISTRY)


def candidate_faults(network: Network, *, kinds: tuple[str, ...] | None = None) -> list[Fault]:
    """Every hypothesis the registered kinds offer on ``network``: per link pair (once for both directions),
    then per node, then those of the network as a whole (shared-risk groups), each in the kinds' order."""
    chosen = [kind for name, kind in REGISTRY.items() if kinds is None or name in kinds]
    faults: list[Fault] = []
    seen: set[frozenset[str]] = set()
    for link in network.links:
        ends = frozenset((link.source, link.target))
        if ends in seen:
            continue
        seen.add(ends)
        for kind in chosen:
            faults += kind.link_hypotheses(link.source, link.target)
    for node in network.nodes:
        for kind in chosen:
            faults += kind.node_hypotheses(node)
    for kind in chosen:
        faults += kind.network_hypotheses(network)
    return faults


class FaultFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    faults: list[Fault]


def load_faults(path: str | Path) -> list[Fault]:
    """Faults from a YAML/JSON file: a list, or an object with ``faults``. Errors name the file, line and field."""
    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    text = read_text(path)
    data = parse_document(text, path)
    locator = LineLocator(text)
    if isinstance(data, dict):
        faults = parse_model(FaultFile, data, file=path, locator=locator).faults
    else:
        faults = list(parse_model(RootModel[list[Fault]], data, file=path, locator=locator).root)
    return name_faults(faults)


def check_faults(faults: list[Fault], network: Network, minutes: float, *, file: str | Path | None = None,
                 field: str = "faults") -> None:
    """Every fault must have the target its kind takes, act on nodes and links the network has, and start within
    the run (``minutes`` long): an InputError names each that does not, with its line in ``file`` when there is
    one."""
    from netpilot.errors import InputError, Problem
    from netpilot.model.io import LineLocator, read_text

    locator = LineLocator(read_text(file)) if file is not None and Path(file).exists() else None
    nodes = {n.id for n in network.nodes}
    arrays = network.arrays()
    problems = []

    def problem(i: int, key: str, message: str) -> None:
        path = (field, i, key) if field else (i, key)
        line, shown = locator.locate(path) if locator else (None, f"{field}[{i}].{key}" if field else f"[{i}].{key}")
        problems.append(Problem(message, file=str(file) if file is not None else None, line=line, field=shown))

    for i, fault in enumerate(faults):
        kind = fault.behaviour
        try:
            target = kind.target(fault)
        except ValueError as exc:
            problem(i, "target", str(exc))
        else:
            ends = [target.node] if isinstance(target, NodeTarget) else \
                [end for link in (target.links if isinstance(target, LinkGroupTarget) else (target,))
                 for end in (link.a, link.b)]
            missing = [node for node in ends if node not in nodes]
            if missing:
                problem(i, "target", f"no node {missing[0]!r} in the network")
            else:
                try:
                    kind.check(fault, arrays)
                except ValueError as exc:
                    problem(i, "target", str(exc))
        if fault.at_minute >= minutes:
            problem(i, "at_minute", f"minute {fault.at_minute:g} is not within the run ({minutes:g} minutes)")
    if problems:
        raise InputError(problems)


def name_faults(faults: list[Fault]) -> list[Fault]:
    """Give every fault without an id one that says what and when (``F3-link_down@90``)."""
    return [f if f.id else f.model_copy(update={"id": f"F{i + 1}-{f.kind}@{f.at_minute:g}"})
            for i, f in enumerate(faults)]
