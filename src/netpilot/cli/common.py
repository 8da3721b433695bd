"""What every CLI command shares: consoles, error reporting without tracebacks, JSON output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from netpilot.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for a well-formed request the system refused (verification failed, audit chain broken).
EXIT_REFUSED = 1
#: Exit code for input the user can fix (bad file, bad option value).
EXIT_INPUT = 2
#: Exit code for a failure of netpilot itself.
EXIT_INTERNAL = 70


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def reports_errors(func: F) -> F:
    """Turn InputError into a located message and exit code 2; anything else into a one-line internal error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            console = stderr()
            for problem in exc.problems:
                console.print(f"[bold red]error:[/] {problem}", markup=True)
            raise typer.Exit(EXIT_INPUT) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("NETPILOT_DEBUG"):
                raise
            stderr().print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
                           "(set NETPILOT_DEBUG=1 for the traceback)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
