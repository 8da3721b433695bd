"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
import typer.core

from netpilot import __version__
from netpilot.cli import analytics, autopilot, change, edge, ran, te, telemetry, topo


def _flag_type(self, ctx) -> str | None:
    """A flag takes no value, so its help shows no type (Typer writes ``<bool>`` beside every flag)."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


app = typer.Typer(name="netpilot", help="netpilot: an autopilot for telecom and WAN networks.",
                  epilog="Exit codes: 0 done; 1 refused (verification failed, audit chain broken); 2 bad input "
                         "(the message names the file, line and field); 70 an internal error.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _options(version: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True,
                                                             help="Print netpilot's version and exit.")] = None,
             ) -> None:
    """netpilot: an autopilot for telecom and WAN networks."""

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
