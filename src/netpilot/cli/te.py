"""`netpilot te`: traffic engineering on a network file: solve, certify, check single failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from netpilot.cli.common import reports_errors, stdout
from netpilot.cli.topo import MatrixOption, UnitOption, load_network
from netpilot.errors import InputError

app = typer.Typer(help="Traffic engineering: routing with the most headroom, and how to deploy it.",
                  no_args_is_help=True)

OBJECTIVES = ("mlu", "flow")
METHODS = ("lp", "fast", "igp")


@app.command()
@reports_errors
def solve(
    network: Annotated[Path, typer.Option(help="Network file (netpilot YAML/JSON or any importable topology).")],
    output: Annotated[Path, typer.Option("--json", help="Where to write the routing document (JSON).")],
    demands: Annotated[Optional[Path], typer.Option(help="Demand matrix; default: the network file's own.")] = None,
    matrix: MatrixOption = "0",
    unit: UnitOption = "Mbit/s",
    objective: Annotated[str, typer.Option(help="mlu: minimise the maximum link utilisation; flow: carry the "
                                                "most traffic within capacity.")] = "mlu",
    method: Annotated[str, typer.Option(help="lp: exact (HiGHS); fast: first-order solver; igp: OSPF/IS-IS "
                                             "metrics for plain ECMP.")] = "fast",
    paths: Annotated[int, typer.Option(help="Candidate paths per demand (edge-disjoint, fewest hops).")] = 4,
    grow: Annotated[bool, typer.Option(help="Add paths where link prices show the set falls short (column "
                                            "generation), certifying against any routing at all.")] = False,
    failures: Annotated[bool, typer.Option(help="Evaluate the routing under every single link failure.")] = False,
    robust: Annotated[bool, typer.Option(help="Minimise the worst MLU over all single failures instead (LP).")]
    = False,
    time_limit: Annotated[Optional[float], typer.Option(help="Seconds the solver may take.")] = None,
) -> None:
    """Compute a routing and write it with its certificate; prints a summary."""
    from netpilot.optimize.te import solve_te

    if objective not in OBJECTIVES:
        raise InputError.at(f"must be one of {', '.join(OBJECTIVES)}, got {objective!r}", field="--objective")
    if method not in METHODS:
        raise InputError.at(f"must be one of {', '.join(METHODS)}, got {method!r}", field="--method")
    if paths < 1:
        raise InputError.at(f"must be at least 1, got {paths}", field="--paths")
    if method == "igp" and objective != "mlu":
        raise InputError.at("IGP metrics are optimised for MLU only; use --objective mlu", field="--objective")
    if robust and (objective != "mlu" or method == "igp"):
        raise InputError.at("--robust minimises the worst-failure MLU with the LP; use --objective mlu "
                            "--method lp or fast", field="--robust")
    net = load_network(network, demands, unit, "inverse_capacity", matrix)
    if not net.demands:
        raise InputError.at("the network has no demands; give --demands FILE", file=network, field="demands")
    document = solve_te(net, objective=objective, method=method, k=paths, grow=grow, failures=failures,
                        robust=robust, time_limit=time_limit)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1) + "\n")
    _summarise(document, output)


def _summarise(doc: dict, output: Path) -> None:
    table = Table(title=f"{doc['method']} / {doc['objective']}", show_header=False)
    table.add_row("MLU", f"{doc['mlu']:.4f}")
    table.add_row("carried", f"{doc['total_flow']:.6g} of {doc['total_demand']:.6g} Mbit/s")
    table.add_row("certificate", doc["certificate"])
    if "unrestricted_mlu_lower_bound" in doc:
        table.add_row("any routing", f"MLU ≥ {doc['unrestricted_mlu_lower_bound']:.4f} "
                                     f"({doc['paths_added']} paths added)")
    if "guaranteed_single_failure_mlu" in doc:
        table.add_row("any single failure", f"MLU ≤ {doc['guaranteed_single_failure_mlu']:.4f} "
                                            f"({doc['unprotected_pairs']} pairs cannot be protected)")
    if "failures" in doc:
        f = doc["failures"]
        worst = ", ".join("->".join(link) for link in f["worst_failure"])
        table.add_row("single failures", f"{f['scenarios']} scenarios, worst MLU {f['worst_mlu']:.4f} ({worst}), "
                                         f"{f['scenarios_over_1']} over capacity")
    table.add_row("solve time", f"{doc['solve_seconds']:.3f} s")
    table.add_row("written", str(output))
    stdout().print(table)
