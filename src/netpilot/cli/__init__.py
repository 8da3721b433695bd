"""The `netpilot` command line: a thin layer over the library, one sub-command group per stage."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any, Optional

import typer
import typer.core

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
    "autopilot": ("netpilot.cli.autopilot", "autopilot"),
    "ask": ("netpilot.cli.ask", "ask"),
}


def _flag_type(self, ctx) -> str | None:
    """A flag takes no value, so its help shows no type (Typer writes ``<bool>`` beside every flag)."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


def _options(version: Annotated[Optional[bool], typer.Option("--version", callback=_print_version, is_eager=True,
                                                             help="Print netpilot's version and exit.")] = None,
             ) -> None:
    """netpilot: an autopilot for telecom and WAN networks."""


def version() -> None:
    """Print netpilot's version."""
    print(__version__)


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree; with ``only``, just that group or command (and `version`), for a fast start."""
    app = typer.Typer(name="netpilot", help="netpilot: an autopilot for telecom and WAN networks.",
                      epilog="Exit codes: 0 done; 1 refused (verification failed, audit chain broken); 2 bad input "
                             "(the message names the file, line and field); 70 an internal error.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.callback()(_options)
    for name, (module, attribute) in GROUPS.items():
        if only in (None, name):
            app.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    for name, (module, attribute) in COMMANDS.items():
        if only in (None, name):
            app.command(name)(getattr(importlib.import_module(module), attribute))
    app.command()(version)
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
