"""The package's layering, read from the source: data flows one way (nothing lower imports anything higher, at
module level or inside a function), and only the simulator's own layer, the scenarios and the CLI import the
simulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "netpilot"

#: Lowest first. A package may import its own layer and any lower one. ``errors`` and ``data`` sit under all.
LAYERS = ["errors", "data", "model", "telemetry", "analytics", "optimize", "change", "autopilot", "assistant",
          "scenarios", "api", "web", "cli"]
#: The only places allowed to import ``netpilot.telemetry.sim``: it makes synthetic data; the scenarios run the
#: loop against it; the CLI is where a command puts the two together.
SIMULATOR_USERS = {"telemetry", "scenarios", "cli"}


def _imports(path: Path, root: Path = SRC.parent) -> list[tuple[int, str]]:
    """Every ``netpilot.…`` module a file under ``root`` imports, anywhere in it, with its line (relative imports
    resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [(node.lineno, module)] + [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("netpilot.")]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


FILES = sorted(p for p in SRC.rglob("*.py"))


def test_the_layer_list_names_every_package():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_lower_imports_anything_higher(path):
    own = _layer("netpilot." + ".".join(path.relative_to(SRC).parts))
    if own is None:  # netpilot/__init__.py and top-level modules: the package's face, lowest of all
        own = "errors"
    rank = LAYERS.index(own)
    upward = [(line, m) for line, m in _imports(path) if (other := _layer(m)) and LAYERS.index(other) > rank]
    assert not upward, f"{path.relative_to(SRC)} ({own}) imports higher layers: {upward}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_simulators_own_layer_the_scenarios_and_the_cli_import_the_simulator(path):
    own = _layer("netpilot." + ".".join(path.relative_to(SRC).parts))
    if own in SIMULATOR_USERS:
        return
    sim = [(line, m) for line, m in _imports(path) if m == "netpilot.telemetry.sim"
           or m.startswith("netpilot.telemetry.sim.")]
    assert not sim, f"{path.relative_to(SRC)} imports the simulator: {sim}"


def test_the_checks_see_an_upward_import_and_a_simulator_import(tmp_path):
    """The two checks above can fail: a module that imports upward and the simulator is caught by both readers."""
    bad = tmp_path / "netpilot" / "model" / "probe.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from netpilot.autopilot.loop import Autopilot\n"
                   "    from ..telemetry.sim import simulator\n", encoding="utf-8")
    modules = [m for _, m in _imports(bad, root=tmp_path)]
    assert "netpilot.autopilot.loop" in modules and "netpilot.telemetry.sim.simulator" in modules
    assert LAYERS.index(_layer("netpilot.autopilot.loop")) > LAYERS.index("model")
