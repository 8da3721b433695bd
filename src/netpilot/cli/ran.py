"""`netpilot ran`: RAN decisions per cell (slicing), and the AI-RAN scenarios with the loop acting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pydantic import BaseModel, ConfigDict, Field, RootModel
from rich.table import Table

from netpilot.cli.common import reports_errors, stdout
from netpilot.errors import InputError

app = typer.Typer(help="RAN slicing: PRBs per slice per cell; the AI-RAN loop on scenarios.", no_args_is_help=True)


class SliceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    priority: float = Field(gt=0, description="Weight of a served PRB of this slice.")
    guaranteed_share: float = Field(ge=0, le=1, description="Share of the cell's PRBs guaranteed on demand.")


class CellSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cell: str = Field(min_length=1)
    prbs: float = Field(gt=0, description="PRBs of the cell (e.g. 273 for 100 MHz NR).")
    demand: dict[str, float] = Field(description="Forecast demand per slice, in PRBs.")


def _read(model, path: Path):
    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    text = read_text(path)
    data = parse_document(text, path)
    if isinstance(data, dict) and len(data) == 1:
        (data,) = data.values()
    return parse_model(RootModel[list[model]], data, file=path, locator=LineLocator(text)).root


@app.command()
@reports_errors
def slice(
    cells: Annotated[Path, typer.Option(help="YAML/JSON list of {cell, prbs, demand: {slice: PRBs}}.")],
    slices: Annotated[Path, typer.Option(help="YAML/JSON list of {name, priority, guaranteed_share}.")],
    output: Annotated[Path, typer.Option("--json", help="Where to write the allocation (JSON).")],
    method: Annotated[str, typer.Option(help="fast (closed form) or lp (HiGHS).")] = "fast",
    margin: Annotated[float, typer.Option(help="Reserve this much above forecast, up to the guarantee.")] = 0.2,
) -> None:
    """Split every cell's PRBs among its slices."""
    from netpilot.optimize.ran.slicing import Slice, allocate_fast, allocate_lp

    if method not in ("fast", "lp"):
        raise InputError.at(f"must be fast or lp, got {method!r}", field="--method")
    if margin < 0:
        raise InputError.at("must be at least 0", field="--margin")
    specs = _read(SliceSpec, slices)
    if not specs:
        raise InputError.at("no slices", file=slices)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError.at("slice names repeat", file=slices, field="name")
    total = sum(s.guaranteed_share for s in specs)
    if total > 1 + 1e-9:
        raise InputError.at(f"guaranteed shares add up to {total:.3g}, more than the whole cell", file=slices,
                            field="guaranteed_share")
    rows = _read(CellSpec, cells)
    for i, row in enumerate(rows):
        unknown = sorted(set(row.demand) - set(names))
        if unknown:
            raise InputError.at(f"demand names slices the slice file lacks: {', '.join(unknown)}", file=cells,
                                field=f"[{i}].demand")
        if any(v < 0 for v in row.demand.values()):
            raise InputError.at("demand must not be negative", file=cells, field=f"[{i}].demand")
    prbs = np.array([r.prbs for r in rows])
    demand = np.array([[r.demand.get(n, 0.0) for n in names] for r in rows]).reshape(len(rows), len(names))
    model = [Slice(s.name, s.priority, s.guaranteed_share) for s in specs]
    decision = (allocate_fast if method == "fast" else allocate_lp)(prbs, demand, model, margin=margin)
    guaranteed = np.array([s.guaranteed_share for s in specs])[None, :] * prbs[:, None]
    document = {
        "method": method, "margin": margin, "seconds": decision.seconds, "unit": "PRB",
        "slices": [s.model_dump() for s in specs],
        "cells": [{"cell": r.cell, "prbs": r.prbs,
                   "allocation": dict(zip(names, map(float, decision.allocation[i]))),
                   "reserved": dict(zip(names, map(float, decision.reserved[i]))),
                   "forecast_served": dict(zip(names, map(float, np.minimum(decision.allocation[i], demand[i])))),
                   "guarantees_covered": bool((decision.allocation[i] >= np.minimum(demand[i], guaranteed[i])
                                               - 1e-9).all())}
                  for i, r in enumerate(rows)],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1) + "\n")
    table = Table(title=f"slicing ({method})")
    table.add_column("cell")
    for n in names:
        table.add_column(n, justify="right")
    for i, r in enumerate(rows[:20]):
        table.add_row(r.cell, *(f"{v:.1f}" for v in decision.allocation[i]))
    stdout().print(table)
    if len(rows) > 20:
        stdout().print(f"... {len(rows) - 20} more cells in {output}")


@app.command()
@reports_errors
def loop(
    output: Annotated[Path, typer.Option("--json", help="Where to write the scenario reports (JSON).")],
    cells: Annotated[int, typer.Option(help="Cells in the generated AI-RAN.")] = 2000,
    sites: Annotated[int, typer.Option(help="Edge sites in the generated AI-RAN.")] = 40,
    minutes: Annotated[int, typer.Option(help="One-minute ticks per scenario.")] = 60,
    scenario: Annotated[list[str] | None, typer.Option(help="ran-surge, edge-site-down, flash-crowd, cells-down "
                                                            "(repeat; all when left out).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator and the simulator.")] = 0,
) -> None:
    """Run the AI-RAN scenarios with slicing and placement in the loop, against a static split and placement on
    the same demand."""
    from dataclasses import asdict

    from netpilot.scenarios.ran import run_ran_scenario, shipped_scenarios
    from netpilot.telemetry.sim.airan import generate, read_llm_trace

    for name, value, least in (("--cells", cells, 1), ("--sites", sites, 1), ("--minutes", minutes, 2)):
        if value < least:
            raise InputError.at(f"must be at least {least}", field=name)
    trace = read_llm_trace()
    network, topology = generate(cells, sites, seed=seed, trace=trace)
    shipped = shipped_scenarios(topology, minutes)
    chosen = scenario or list(shipped)
    unknown = [n for n in chosen if n not in shipped]
    if unknown:
        raise InputError.at(f"no scenario {unknown[0]!r}; choose from {', '.join(shipped)}", field="--scenario")
    table = Table(title=f"AI-RAN loop: {cells} cells, {sites} edge sites, {minutes} min")
    for column in ("scenario", "SLA met loop / static", "SLO met loop / static", "unserved loop / static",
                   "GPUs loop / static", "decide ms p50 / p99", "applied", "rolled back", "unsafe"):
        table.add_column(column)
    reports = []
    for name in chosen:
        report = run_ran_scenario(name, network, topology, shipped[name], ticks=minutes, seed=seed, trace=trace)
        reports.append(asdict(report))
        p50, p99 = np.percentile(report.decide_ms[1:], [50, 99])
        loop_score, static = report.loop, report.static
        table.add_row(name, f"{100 * loop_score.sla_all:.2f} / {100 * static.sla_all:.2f} %",
                      f"{100 * loop_score.slo_all:.2f} / {100 * static.slo_all:.2f} %",
                      f"{loop_score.unserved_requests:,.0f} / {static.unserved_requests:,.0f}",
                      f"{loop_score.gpus_powered:.1f} / {static.gpus_powered:.1f}", f"{p50:.1f} / {p99:.1f}",
                      str(report.changes_applied), str(report.rolled_back), str(report.unsafe))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"cells": cells, "sites": sites, "minutes": minutes, "seed": seed,
                                  "scenarios": reports}, indent=1, default=float) + "\n")
    stdout().print(table)
