"""What the A/B tools of bench/issue25 share: their rows (JSON lines, one per scenario) and their command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read_rows(path: Path) -> dict[str, dict]:
    """A results file's rows by scenario (a scenario run twice into the file: its last row)."""
    return {row["scenario"]: row for row in map(json.loads, path.read_text().splitlines())}


def parse_options(text: str) -> dict[str, Any]:
    """``key=value,...`` as the loop's settings by name: a value that reads as JSON (a number, true, a list) is
    that, anything else a string."""
    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        options[key] = json.loads(value) if value[:1] in "0123456789-[{tfn\"" else value
    return options


def main(run: Callable[[Path, list[str], dict[str, Any]], None], compare: Callable[[Path, Path], None],
         usage: str) -> None:
    """``run OUT.jsonl SPEC [...] [--options key=value,...]`` (the loop's settings by name, as
    `netpilot.autopilot.settings.AutopilotSettings.with_options` takes them) or ``compare BEFORE.jsonl
    AFTER.jsonl``; anything else prints ``usage``."""
    args = sys.argv[1:]
    options: dict[str, Any] = {}
    if "--options" in args:
        at = args.index("--options")
        if at + 1 == len(args):
            raise SystemExit("--options needs key=value,... after it")
        options = parse_options(args[at + 1])
        args = args[:at] + args[at + 2:]
    if len(args) >= 2 and args[0] == "run":
        run(Path(args[1]), args[2:], options)
    elif len(args) == 3 and args[0] == "compare" and not options:
        compare(Path(args[1]), Path(args[2]))
    else:
        raise SystemExit(usage)
