"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from netpilot import __version__

#: Sub-command groups: name -> (module, Typer attribute). Imported only when named, so that `netpilot te solve`
#: pays for the TE stack alone (start-up is most of a small command's wall time).
GROUPS: dict[str, tuple[str, str]] = {
    "topo": ("netpilot.cli.topo", "app"),
    "te": ("netpilot.cli.te", "app"),
    "sim": ("netpilot.cli.telemetry", "sim_app"),
    "telemetry": ("netpilot.cli.telemetry", "app"),
    "ran": ("netpilot.cli.ran", "app"),
    "edge": ("netpilot.cli.edge", "app"),
    "change": ("netpilot.cli.change", "app"),
    "lab": ("netpilot.cli.change", "lab_app"),
    "scenario": ("netpilot.cli.autopilot", "scenario_app"),
}
#: Top-level commands: name -> (module, function).
COMMANDS: dict[str, tuple[str, str]] = {
    "forecast": ("netpilot.cli.analytics", "forecast"),
    "detect": ("netpilot.cli.analytics", "detect"),
    "rca": ("netpilot.cli.analytics", "rca"),
    "demo": ("netpilot.cli.autopilot", "demo"),
}


def version() -> None:
    """Print netpilot's version."""
    print(__version__)


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree; with ``only``, just that group or command (and `version`), for a fast start."""
    app = typer.Typer(name="netpilot", help="netpilot: an autopilot for telecom and WAN networks.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    for name, (module, attribute) in GROUPS.items():
        if only in (None, name):
            app.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    for name, (module, attribute) in COMMANDS.items():
        if only in (None, name):
            app.command(name)(getattr(importlib.import_module(module), attribute))
    app.command()(version)  # also keeps a one-command tree a group, so the command keeps its name
    return app


def __getattr__(name: str) -> Any:
    # `from netpilot.cli import app` (tests, embedding) gets the whole tree, built on first use.
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    named = sys.argv[1] if len(sys.argv) > 1 else None
    build_app(named if named in GROUPS or named in COMMANDS else None)()
