"""`netpilot edge`: place edge AI inference on GPU sites shared with the RAN."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from netpilot.cli.common import reports_errors, stdout
from netpilot.errors import InputError

app = typer.Typer(help="Edge AI inference placement on GPU sites shared with the RAN.", no_args_is_help=True)


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    memory_gb: float = Field(gt=0, description="GPU memory the model needs where it is loaded.")
    gpu_seconds: float = Field(gt=0, description="GPU time per request.")
    slo_ms: float = Field(gt=0, description="Round trip plus response time allowed.")


class DemandSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cell: str
    service: str
    rate: float = Field(ge=0, description="Requests per second.")


class DemandFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    demand: list[DemandSpec]
    ran_share: dict[str, float] = Field(default_factory=dict, description="Per edge site, GPUs held by the RAN.")


class ServiceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    services: list[ServiceSpec]


def _load(model, path: Path):
    from netpilot.model.io import LineLocator, parse_document, parse_model, read_text

    text = read_text(path)
    return parse_model(model, parse_document(text, path), file=path, locator=LineLocator(text))


@app.command()
@reports_errors
def place(
    network: Annotated[Path, typer.Option(help="Network file with cell sites and edge sites.")],
    services: Annotated[Path, typer.Option(help="YAML/JSON: services: [{name, memory_gb, gpu_seconds, slo_ms}].")],
    demand: Annotated[Path, typer.Option(help="YAML/JSON: demand: [{cell, service, rate}], ran_share: {site: x}.")],
    output: Annotated[Path, typer.Option("--json", help="Where to write the placement (JSON).")],
    method: Annotated[str, typer.Option(help="mip (HiGHS, exact) or fast (greedy).")] = "fast",
    ran_share: Annotated[float, typer.Option(help="RAN share of each site's GPUs where the demand file says none.")]
    = 0.3,
    max_utilisation: Annotated[float, typer.Option(help="Cap on GPU utilisation (queueing headroom).")] = 0.8,
) -> None:
    """Decide which edge site serves which cell's requests for which service."""
    from netpilot.model.io import load_network
    from netpilot.model.routing import latency_matrix
    from netpilot.optimize.ran.placement import PlacementProblem, Service, place_fast, place_mip

    if method not in ("fast", "mip"):
        raise InputError.at(f"must be fast or mip, got {method!r}", field="--method")
    net = load_network(network)
    svc = _load(ServiceFile, services).services
    wanted = _load(DemandFile, demand)
    cells = [n.id for n in net.nodes if n.kind == "cell_site"]
    sites = [n for n in net.nodes if n.kind == "edge_site"]
    if not sites:
        raise InputError.at("the network has no edge sites", file=network, field="nodes")
    names = [s.name for s in svc]
    rate = np.zeros((len(cells), len(svc)))
    for i, d in enumerate(wanted.demand):
        if d.cell not in cells:
            raise InputError.at(f"{d.cell!r} is not a cell site of the network", file=demand, field=f"demand[{i}].cell")
        if d.service not in names:
            raise InputError.at(f"{d.service!r} is not a service", file=demand, field=f"demand[{i}].service")
        rate[cells.index(d.cell), names.index(d.service)] += d.rate
    site_ids = [s.id for s in sites]
    for name, share in wanted.ran_share.items():
        if name not in site_ids or not 0 <= share <= 1:
            raise InputError.at(f"{name!r} must be an edge site with a share in [0, 1]", file=demand,
                                field=f"ran_share.{name}")
    arrays = net.arrays()
    latency = latency_matrix(arrays, [arrays.index[c] for c in cells], [arrays.index[s] for s in site_ids])
    problem = PlacementProblem(cells, site_ids, [Service(s.name, s.memory_gb, s.gpu_seconds, s.slo_ms) for s in svc],
                               rate, np.where(np.isfinite(latency), latency, 1e9),
                               np.array([float(s.gpus) for s in sites]),
                               np.array([float(s.gpu_memory_gb) for s in sites]),
                               np.array([wanted.ran_share.get(s, ran_share) for s in site_ids]),
                               max_utilisation=max_utilisation)
    placement = place_fast(problem) if method == "fast" else place_mip(problem)
    document = placement_document(problem, placement)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1) + "\n")
    table = Table(title=f"placement ({method}): {document['gpus_on']:g} GPUs on, "
                        f"{document['unserved_rate']:.4g} req/s unserved")
    for column in ("site", "GPUs on / available", "GPU-s/s", "models"):
        table.add_column(column)
    for site in document["sites"]:
        table.add_row(site["site"], f"{site['gpus_on']:g} / {site['gpus_available']:g}", f"{site['compute']:.3g}",
                      ", ".join(site["models"]))
    stdout().print(table)
    for line in document["unserved"][:10]:
        stdout().print(f"cannot serve {line['rate']:.3g} req/s of {line['service']} from {line['cell']}: "
                       f"{line['why']}")


def placement_document(problem, placement) -> dict:
    """The placement in terms a third party can check by hand: each assignment with its round trip and
    response time, each site's GPUs, compute and memory, and what could not be served and why."""
    allowed = problem.allowed()
    compute = placement.compute(problem)
    response = 1000.0 * problem.gpu_seconds / (1.0 - problem.max_utilisation)
    assignments = [
        {"cell": problem.cells[c], "service": problem.services[s].name, "site": problem.sites[k],
         "share": float(placement.share[c, s, k]), "rate": float(problem.rate[c, s] * placement.share[c, s, k]),
         "rtt_ms": float(2 * problem.latency_ms[c, k]), "response_ms_at_cap": float(response[s])}
        for c, s, k in zip(*np.nonzero(placement.share > 1e-9))]
    unserved = placement.unserved(problem)
    missing = []
    for c, s in zip(*np.nonzero(unserved > 1e-9)):
        why = ("no edge site is close enough for the SLO" if not allowed[c, s].any()
               else "the sites close enough have no GPU room left beside the RAN")
        missing.append({"cell": problem.cells[c], "service": problem.services[s].name,
                        "rate": float(unserved[c, s]), "why": why})
    return {
        "method": placement.method, "seconds": placement.seconds, "objective": placement.objective(problem),
        "gpus_on": float(placement.gpus_on.sum()), "unserved_rate": float(unserved.sum()),
        "max_utilisation": problem.max_utilisation,
        "sites": [{"site": problem.sites[k], "gpus": float(problem.gpus[k]), "ran_share": float(problem.ran_share[k]),
                   "gpus_available": float(problem.available_gpus[k]), "gpus_on": float(placement.gpus_on[k]),
                   "compute": float(compute[k]),
                   "memory_gb": float(problem.memory @ placement.loaded[:, k]),
                   "models": [problem.services[s].name for s in np.flatnonzero(placement.loaded[:, k])]}
                  for k in range(len(problem.sites))],
        "assignments": assignments, "unserved": missing, "violations": placement.violations(problem),
    }
