"""What every benchmark script shares: run the named sections, merge the figures into bench/results/NAME.json."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results"


def run(name: str, sections: dict[str, Callable[[], None]], chosen: list[str], results: dict) -> None:
    unknown = [s for s in chosen if s not in sections]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {', '.join(sections)}")
    for section in chosen:
        sections[section]()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(results)
    path.write_text(json.dumps(existing, indent=1, default=float) + "\n")
