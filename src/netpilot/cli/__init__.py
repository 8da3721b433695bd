"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

import typer

from netpilot import __version__
from netpilot.cli import te, topo

app = typer.Typer(name="netpilot", help="netpilot: an autopilot for telecom and WAN networks.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(topo.app, name="topo")
app.add_typer(te.app, name="te")


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


def main() -> None:
    app()
