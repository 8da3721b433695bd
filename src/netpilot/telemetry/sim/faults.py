"""Faults the simulator can inject: their kinds, parameters and the YAML file that schedules them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

from netpilot.model.network import Network

FAULT_KINDS = ("link_down", "link_degrade", "link_flap", "router_down", "cell_outage", "flash_crowd",
               "edge_failure", "misconfig")


class Fault(BaseModel):
    """One scheduled fault. ``target`` is ``[A, B]`` for link faults (both directions unless ``one_way``), a node
    id otherwise. Times are minutes from the start of the run; no duration means it lasts to the end."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["link_down", "link_degrade", "link_flap", "router_down", "cell_outage", "flash_crowd",
                  "edge_failure", "misconfig"]
    target: Union[str, list[str]]
    at_minute: float = Field(ge=0)
    duration_minutes: float | None = Field(default=None, gt=0)
    id: str | None = None
    one_way: bool = False
    loss: float = Field(default=0.0, ge=0, le=1, description="link_degrade: share of traffic lost")
    capacity_factor: float = Field(default=1.0, gt=0, le=1, description="link_degrade: remaining capacity share")
    period_minutes: float = Field(default=4.0, gt=0, description="link_flap: minutes per down/up cycle")
    multiplier: float = Field(default=4.0, gt=0, description="flash_crowd: traffic multiplier")
    metric: int = Field(default=65535, ge=1, le=65535, description="misconfig: the wrong IGP metric")

    def link_ends(self) -> tuple[str, str]:
        if not isinstance(self.target, list) or len(self.target) != 2:
            raise ValueError(f"{self.kind} needs target [A, B], got {self.target!r}")
        return self.target[0], self.target[1]

    def active(self, minute: float) -> bool:
        if minute < self.at_minute:
            return False
        return self.duration_minutes is None or minute < self.at_minute + self.duration_minutes


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


def name_faults(faults: list[Fault]) -> list[Fault]:
    """Give every fault without an id one that says what and when (``F3-link_down@90``)."""
    return [f if f.id else f.model_copy(update={"id": f"F{i + 1}-{f.kind}@{f.at_minute:g}"})
            for i, f in enumerate(faults)]


def check_faults(faults: list[Fault], network: Network, minutes: float, *, file: str | Path | None = None,
                 field: str = "faults") -> None:
    """Every fault must act on something the network has and start within the run (``minutes`` long): an
    InputError names each that does not, with its line in ``file`` when there is one."""
    from netpilot.errors import InputError, Problem
    from netpilot.model.io import LineLocator, read_text

    locator = LineLocator(read_text(file)) if file is not None and Path(file).exists() else None
    nodes = {n.id for n in network.nodes}
    links = {(lk.source, lk.target) for lk in network.links}
    problems = []

    def problem(i: int, key: str, message: str) -> None:
        path = (field, i, key) if field else (i, key)
        line, shown = locator.locate(path) if locator else (None, f"{field}[{i}].{key}" if field else f"[{i}].{key}")
        problems.append(Problem(message, file=str(file) if file is not None else None, line=line, field=shown))

    for i, fault in enumerate(faults):
        if fault.kind in ("link_down", "link_degrade", "link_flap", "misconfig"):
            if not isinstance(fault.target, list) or len(fault.target) != 2:
                problem(i, "target", f"{fault.kind} needs target [A, B], got {fault.target!r}")
            else:
                a, b = fault.target
                missing = [n for n in (a, b) if n not in nodes]
                if missing:
                    problem(i, "target", f"no node {missing[0]!r} in the network")
                elif (a, b) not in links and (fault.one_way or (b, a) not in links):
                    problem(i, "target", f"no link between {a} and {b}")
        elif not isinstance(fault.target, str):
            problem(i, "target", f"{fault.kind} needs one node id, got {fault.target!r}")
        elif fault.target not in nodes:
            problem(i, "target", f"no node {fault.target!r} in the network")
        if fault.at_minute >= minutes:
            problem(i, "at_minute", f"minute {fault.at_minute:g} is not within the run ({minutes:g} minutes)")
    if problems:
        raise InputError(problems)
