"""`netpilot topo`: import, show, validate and generate network files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from netpilot.cli.common import EXIT_INPUT, print_json, reports_errors, stderr, stdout
from netpilot.errors import InputError
from netpilot.model.formats import attach_demands as _attach
from netpilot.model.formats import import_demands, import_network
from netpilot.model.formats.common import METRIC_RULES
from netpilot.model.io import network_json_schema, save_network
from netpilot.model.network import Network
from netpilot.model.summary import summarize

app = typer.Typer(help="Network twin files: import real formats, inspect, validate.", no_args_is_help=True)

UnitOption = Annotated[str, typer.Option(help="Capacity unit of node-link JSON, .hist and .pkl files, which do "
                                              "not state one: bit/s, kbit/s, Mbit/s, Gbit/s.")]
MetricOption = Annotated[str, typer.Option(help=f"IGP metrics where the source has none: {', '.join(METRIC_RULES)}.")]
MatrixOption = Annotated[str, typer.Option(help="Which matrix of a demand series: an index, 'peak' or 'last'.")]


def load_network(file: Path, demands: Path | None, unit: str, metric: str, matrix: str,
          default_capacity: float | None = None) -> Network:
    if metric not in METRIC_RULES:
        raise InputError.at(f"must be one of {', '.join(METRIC_RULES)}, got {metric!r}", field="--metric")
    try:
        from netpilot.model.units import rate_to_mbps
        rate_to_mbps(1.0, unit)
    except ValueError as exc:
        raise InputError.at(str(exc), field="--unit") from None
    network = import_network(file, unit=unit, metric=metric, default_capacity=default_capacity)
    if demands is not None:
        network = _attach(network, import_demands(demands, network, unit=unit), matrix=matrix, source=demands)
    return network


@app.command("import")
@reports_errors
def import_(
    file: Annotated[Path, typer.Argument(
        help="Topology: .graphml, .graph, SNDlib .xml, node-link .json, inventory .yaml.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Network file to write (.yaml or .json).")],
    demands: Annotated[Optional[Path], typer.Option(
        help="Demands: .demands, SNDlib .xml/.tar.gz, .npz, .hist, .pkl, .npy.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    metric: MetricOption = "inverse_capacity",
    default_capacity: Annotated[Optional[float], typer.Option(
        help="Capacity (Mbit/s) for links the source gives none.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Convert a topology (and optionally a demand matrix) into a netpilot network file."""
    network = load_network(file, demands, unit, metric, matrix, default_capacity)
    save_network(network, output)
    summary = summarize(network)
    if as_json:
        print_json({"output": str(output), **_counts(summary)})
    else:
        stdout().print(f"wrote {output}: {summary.nodes} nodes, {summary.links} links, {summary.demands} demands")
        for note in network.notes:
            stdout().print(f"  note: {note}")


def _counts(summary) -> dict:
    return {"nodes": summary.nodes, "links": summary.links, "demands": summary.demands,
            "total_capacity": summary.total_capacity, "unit": summary.unit}


@app.command()
@reports_errors
def show(
    file: Annotated[Path, typer.Argument(help="Network or topology file.")],
    demands: Annotated[Optional[Path], typer.Option(help="Demand file to attach.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    metric: MetricOption = "inverse_capacity",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Summarise a network: counts by kind, capacity and latency ranges, diameter."""
    network = load_network(file, demands, unit, metric, matrix)
    summary = summarize(network)
    if as_json:
        print_json({**_counts(summary), **summary.model_dump(exclude={"nodes", "links", "demands", "unit",
                                                                         "total_capacity"})})
        return
    table = Table(title=f"{summary.name or file.name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    kinds = ", ".join(f"{count} {kind.replace('_', ' ')}s" for kind, count in summary.nodes_by_kind.items())
    table.add_row("nodes", f"{summary.nodes} ({kinds})")
    down = f", {summary.links_down} down" if summary.links_down else ""
    table.add_row("links (directed)", f"{summary.links}{down}")
    table.add_row("capacity", f"{_num(summary.capacity_min)} .. {_num(summary.capacity_max)} {summary.unit}, "
                              f"total {_num(summary.total_capacity)}")
    table.add_row("latency", f"{_num(summary.latency_ms_min)} .. {_num(summary.latency_ms_max)} ms")
    table.add_row("diameter", "disconnected" if summary.diameter_hops is None else
                  f"{summary.diameter_hops} hops, {_num(summary.diameter_ms)} ms")
    table.add_row("demands", f"{summary.demands}, total {_num(summary.total_demand)} {summary.unit}")
    if summary.gpus or summary.prbs:
        table.add_row("radio / compute", f"{summary.prbs} PRBs, {summary.gpus} GPUs")
    if network.origin:
        table.add_row("origin", network.origin)
    for note in network.notes:
        table.add_row("note", note)
    stdout().print(table)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.6g}"


@app.command()
@reports_errors
def validate(
    file: Annotated[Path, typer.Argument(help="Network or topology file.")],
    demands: Annotated[Optional[Path], typer.Option(help="Demand file to check against the network.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Check a network file; list every problem with its file, line or field. Exit 2 when invalid."""
    try:
        network = load_network(file, demands, unit, "inverse_capacity", matrix)
    except InputError as exc:
        if as_json:
            print_json({"ok": False, "problems": [p.__dict__ for p in exc.problems]})
            for problem in exc.problems:
                stderr().print(f"[bold red]error:[/] {problem}")
            raise typer.Exit(EXIT_INPUT) from None
        raise
    summary = summarize(network)
    if as_json:
        print_json({"ok": True, "problems": [], **_counts(summary)})
    else:
        stdout().print(f"[green]valid[/]: {file} ({summary.nodes} nodes, {summary.links} links, "
                       f"{summary.demands} demands)")


@app.command()
@reports_errors
def sample(
    backbone_graph: Annotated[Path, typer.Option(help="The backbone: a Repetita .graph, or with --load any "
                                                      "topology `topo import` reads.")],
    output: Annotated[Path, typer.Option("-o", "--output")],
    backbone_demands: Annotated[Optional[Path], typer.Option(
        help="The backbone's demands (a Repetita .demands, or any format `topo import` reads); with --load and "
             "none, a gravity matrix.")] = None,
    load: Annotated[Optional[float], typer.Option(
        help="Size the access layer to the backbone and scale the whole network's demand so the LP optimum's "
             "MLU is this (feasible below 1). Without it: the fixed access layer of the bundled network.")] = None,
    cells_per_router: Annotated[int, typer.Option(min=1)] = 2,
    edge_sites: Annotated[Optional[int], typer.Option(min=1, help="Edge GPU sites (default with --load: one "
                                                                   "per ten routers; without: 4).")] = None,
    gravity_pairs: Annotated[int, typer.Option(min=1, help="With --load and no demands: the largest pairs of "
                                                            "the gravity matrix kept.")] = 20_000,
    seed: int = 7,
) -> None:
    """Generate a sample network: a backbone with cell sites and edge GPU sites (the bundled one: see `make
    sample-network`)."""
    from netpilot.model.sample import build_sample_network

    if load is None:
        if backbone_demands is None:
            raise InputError.at("needed without --load (the fixed access layer scales a Repetita matrix)",
                                field="--backbone-demands")
        network = build_sample_network(backbone_graph, backbone_demands, seed=seed,
                                       cells_per_router=cells_per_router, edge_sites=edge_sites or 4)
    else:
        from netpilot.scenarios.generate import sample_at_load

        network = sample_at_load(backbone_graph, backbone_demands, load=load, cells_per_router=cells_per_router,
                                 edge_sites=edge_sites, gravity_pairs=gravity_pairs, seed=seed)
    save_network(network, output)
    stdout().print(f"wrote {output}: {len(network.nodes)} nodes, {len(network.links)} links, "
                   f"{len(network.demands)} demands")


@app.command()
@reports_errors
def schema(output: Annotated[Optional[Path], typer.Option("-o", "--output")] = None) -> None:
    """Print (or write) the JSON Schema of the network file."""
    text = json.dumps(network_json_schema(), indent=2) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
