"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

import typer

from netpilot import __version__
from netpilot.cli import analytics, change, edge, ran, te, telemetry, topo

app = typer.Typer(name="netpilot", help="netpilot: an autopilot for telecom and WAN networks.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(topo.app, name="topo")
app.add_typer(te.app, name="te")
app.add_typer(telemetry.sim_app, name="sim")
app.add_typer(telemetry.app, name="telemetry")
app.add_typer(ran.app, name="ran")
app.add_typer(edge.app, name="edge")
app.add_typer(change.app, name="change")
app.add_typer(change.lab_app, name="lab")
app.command("forecast")(analytics.forecast)
app.command("detect")(analytics.detect)
app.command("rca")(analytics.rca)


@app.command()
def version() -> None:
    """Print netpilot's version."""
    print(__version__)


@app.command()
def demo() -> None:
    """Show the bundled sample network (the autopilot demo builds on it)."""
    from netpilot.cli.topo import show
    from netpilot.model.sample import bundled_network_path

    show(bundled_network_path(), demands=None, matrix="0", unit="Mbit/s", metric="inverse_capacity", as_json=False)
    _demo_te(bundled_network_path())


def _demo_te(path) -> None:
    """Routing with the most headroom on the bundled network, against today's shortest-path routing."""
    from rich.console import Console

    from netpilot.model.io import load_network
    from netpilot.optimize.te import failures
    from netpilot.optimize.te.fast import solve_fast
    from netpilot.optimize.te.igp import routing_from_metrics
    from netpilot.optimize.te.problem import build_problem

    console = Console(highlight=False)
    problem = build_problem(load_network(path))
    today = routing_from_metrics(problem, problem.arrays.metric)
    routing = solve_fast(problem)
    worst = failures.evaluate_failures(routing)
    console.print(f"\n[bold]Traffic engineering[/] on {problem.paths.n_pairs} demands: shortest-path routing today "
                  f"peaks at {today.mlu:.1%} link utilisation; the optimised split peaks at {routing.mlu:.1%} "
                  f"({routing.certificate()}), found in {routing.solve_seconds * 1000:.0f} ms. "
                  f"Under the worst of {len(worst.failed)} single link failures it reaches {worst.mlu.max():.1%}.")


def main() -> None:
    app()
