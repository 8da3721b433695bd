"""What the A/B tools of bench/issue25 share: their rows (JSON lines, one per scenario) and their command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path


def read_rows(path: Path) -> dict[str, dict]:
    """A results file's rows by scenario (a scenario run twice into the file: its last row)."""
    return {row["scenario"]: row for row in map(json.loads, path.read_text().splitlines())}


def main(run: Callable[[Path, list[str]], None], compare: Callable[[Path, Path], None], usage: str) -> None:
    """``run OUT.jsonl SPEC [...]`` or ``compare BEFORE.jsonl AFTER.jsonl``; anything else prints ``usage``."""
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(Path(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(usage)
