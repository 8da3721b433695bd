"""`netpilot te`: traffic engineering on a network file: solve, certify, check single failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from netpilot.cli.common import reports_errors, stdout
from netpilot.cli.topo import MatrixOption, UnitOption, load_network
from netpilot.errors import InputError

if TYPE_CHECKING:
    from netpilot.optimize.te.problem import TEProblem

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
    grow: Annotated[Optional[bool], typer.Option(
        "--grow/--no-grow", help="Add paths where link prices show the set falls short (column generation) "
                                 "until the answer is certified within 1 % of any routing at all. Default: on "
                                 "for the fast method's MLU; paths grown are cached per topology.")] = None,
    failures: Annotated[bool, typer.Option(help="Evaluate the routing under every single link failure.")] = False,
    robust: Annotated[bool, typer.Option(help="Minimise the worst MLU over all single failures instead (LP).")]
    = False,
    time_limit: Annotated[Optional[float], typer.Option(help="Seconds the solver may take.")] = None,
) -> None:
    """Compute a routing and write it with its certificate; prints a summary.

    Path sets are cached per topology in $NETPILOT_CACHE (default $XDG_CACHE_HOME/netpilot or
    ~/.cache/netpilot; NETPILOT_CACHE= turns the cache off)."""
    import time

    started = time.perf_counter()
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
    if grow and objective != "mlu":
        raise InputError.at("paths are grown for the MLU objective only; use --objective mlu", field="--grow")
    problem = load_problem(network, demands, unit, matrix, paths)
    document = solve_te(problem=problem, objective=objective, method=method, k=paths, grow=grow,
                        failures=failures, robust=robust, time_limit=time_limit)
    output.parent.mkdir(parents=True, exist_ok=True)
    # json.dumps, not json.dump: only the one-shot encoder is the C one (json.dump to a file streams through
    # the pure-Python encoder, indented or not, which took longer than the solve on a 40,000-pair document).
    output.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    _summarise(document, output, time.perf_counter() - started)


def load_problem(network_file: Path, demands: Path | None, unit: str, matrix: str, k: int) -> TEProblem:
    """The TE instance of a network file and a demand file, without a Demand object per matrix entry (building
    and re-validating 40,000 of them took longer than solving)."""
    import numpy as np

    from netpilot.model.demands import DemandSeries
    from netpilot.model.formats import import_demands, select_matrix
    from netpilot.optimize.te.problem import check_capacities, problem_from_pairs

    net = load_network(network_file, None, unit, "inverse_capacity", matrix)
    arrays = net.arrays()
    check_capacities(net, arrays)
    if demands is None:
        if not net.demands:
            raise InputError.at("the network has no demands; give --demands FILE", file=network_file,
                                field="demands")
        pairs, volume = arrays.demand_pairs()
    else:
        loaded = import_demands(demands, net, unit=unit)
        if isinstance(loaded, DemandSeries):
            missing = sorted(set(loaded.nodes) - set(arrays.index))
            if missing:
                raise InputError.at(f"the series names nodes the network lacks: {', '.join(missing[:8])}",
                                    file=demands)
            volume_matrix = loaded.volume[select_matrix(loaded, matrix)]
            index = np.array([arrays.index[n] for n in loaded.nodes], dtype=np.int64)
            i, j = np.nonzero((volume_matrix > 0) & ~np.eye(len(index), dtype=bool))
            pairs, volume = np.stack([index[i], index[j]], axis=1), volume_matrix[i, j].astype(float)
        else:
            pairs, volume = _demand_list_pairs(loaded, arrays.index, demands)
        if len(volume) == 0:
            raise InputError.at("the demand matrix is empty: nothing to route", file=demands, field="demands")
        # Demands of one pair add up, as in a network file's own demand list.
        n = arrays.n_nodes
        keys, inverse = np.unique(pairs[:, 0] * n + pairs[:, 1], return_inverse=True)
        volume = np.bincount(inverse, weights=volume, minlength=len(keys))
        pairs = np.stack([keys // n, keys % n], axis=1)
        pairs, volume = pairs[volume > 0], volume[volume > 0]
    return problem_from_pairs(arrays, pairs, volume, k=k)


def _demand_list_pairs(demands: list, index: dict[str, int], source: Path):
    import numpy as np

    pairs = np.empty((len(demands), 2), dtype=np.int64)
    volume = np.empty(len(demands))
    for row, demand in enumerate(demands):
        for column, end in enumerate((demand.source, demand.target)):
            if end not in index:
                raise InputError.at(f"demand refers to unknown node {end!r}", file=source,
                                    field=f"demands[{row}].{'source' if column == 0 else 'target'}")
            pairs[row, column] = index[end]
        if demand.source == demand.target:
            raise InputError.at(f"demand from {demand.source!r} to itself", file=source, field=f"demands[{row}]")
        volume[row] = demand.volume
    return pairs, volume


def _summarise(doc: dict, output: Path, wall_seconds: float) -> None:
    from rich.table import Table

    table = Table(title=f"{doc['method']} / {doc['objective']}", show_header=False)
    table.add_row("MLU", f"{doc['mlu']:.4f}")
    table.add_row("carried", f"{doc['total_flow']:.6g} of {doc['total_demand']:.6g} Mbit/s")
    table.add_row("certificate", doc["certificate"])
    if "unrestricted_mlu_lower_bound" in doc:
        bound = doc["unrestricted_mlu_lower_bound"]
        reused = f", {doc['paths_reused']} reused from the cache" if doc.get("paths_reused") else ""
        table.add_row("any routing", f"MLU ≥ {bound:.4f}, so at most {100 * max(0.0, doc['mlu'] / bound - 1):.2g} % "
                                     f"above the best routing on any paths ({doc['paths_added']} paths added"
                                     f"{reused})")
    if "guaranteed_single_failure_mlu" in doc:
        table.add_row("any single failure", f"MLU ≤ {doc['guaranteed_single_failure_mlu']:.4f} "
                                            f"({doc['unprotected_pairs']} pairs cannot be protected)")
    if "failures" in doc:
        f = doc["failures"]
        worst = ", ".join("->".join(link) for link in f["worst_failure"])
        table.add_row("single failures", f"{f['scenarios']} scenarios, worst MLU {f['worst_mlu']:.4f} ({worst}), "
                                         f"{f['scenarios_over_1']} over capacity")
    table.add_row("solve time", f"{doc['solve_seconds']:.3f} s (all of it, reading to writing: "
                                f"{wall_seconds:.3f} s)")
    table.add_row("written", str(output))
    stdout().print(table)
