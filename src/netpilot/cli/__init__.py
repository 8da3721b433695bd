"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

import typer

from netpilot import __version__
from netpilot.cli import analytics, autopilot, change, edge, ran, te, telemetry, topo

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
app.add_typer(autopilot.scenario_app, name="scenario")
app.command("demo")(autopilot.demo)
app.command("autopilot")(autopilot.autopilot)


@app.command()
def version() -> None:
    """Print netpilot's version."""
    print(__version__)


def main() -> None:
    app()
