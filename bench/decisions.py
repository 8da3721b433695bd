"""The decisions of the twelve runs (the shipped scenarios at their own seed and at seeds 11-13), in a canonical
form to compare two versions of the code: every change proposed with its intents and state, the overloads,
incidents with their ranked causes, fault scores and hindsight checks; latency left out. A refactor that must not
move decisions is checked by dumping before and after and comparing (change ids are random: compared by order).

    PYTHONPATH=OLD/src python bench/decisions.py dump old.json
    PYTHONPATH=NEW/src python bench/decisions.py dump new.json
    python bench/decisions.py compare old.json new.json

``dump out.json --suite Deltacom:0.75:6,GtsCe:0.75:6`` adds the suite's generated scenarios (TOPOLOGY:LOAD:SEED,
1.5 hours, three faults, as `bench/suite.py` makes them under build/suite/); ``--only-suite`` leaves the twelve out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (None, 11, 12, 13)  # None: the scenario's own
RANDOM_IDS = ("/id", "/change")  # change ids are random tokens


def dump(out: Path, only: list[str], suite_runs: list[str] = (), shipped_runs: bool = True) -> None:
    try:
        import netpilot.scenarios.scenario as scenario_module
    except ImportError:  # a version before the scenarios moved out of autopilot/ (issue 24)
        import netpilot.autopilot.scenario as scenario_module  # type: ignore[no-redef]
    compare, load_scenario = scenario_module.compare, scenario_module.load_scenario

    stores: list[Any] = []

    class Recording(scenario_module.ChangeStore):  # the replay's own store, kept to read every change back
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

    scenario_module.ChangeStore = Recording  # type: ignore[misc]
    runs = {}
    todo = []
    for file in sorted((ROOT / "examples" / "scenarios").glob("*.yaml")) if shipped_runs else []:
        shipped = load_scenario(file)
        for seed in SEEDS:
            key = f"{file.stem}/{seed or 'shipped'}"
            if not only or key in only:
                todo.append((key, shipped if seed is None else shipped.model_copy(update={"seed": seed})))
    if suite_runs:
        sys.path.insert(0, str(ROOT / "bench"))
        import suite  # bench/suite.py: the suite's topologies and scenario files

        todo += [(spec, load_scenario(suite.scenario_path(spec))) for spec in suite_runs]
    for key, scenario in todo:
        stores.clear()
        result = compare(scenario, settle=True)
        result.pop("decision_latency_ms")
        result["changes_full"] = [{"id": c.id, "state": c.state, "intents": c.intents, "why": c.why}
                                  for store in stores for c in store.list()]
        runs[key] = _canonical(result)
        print(key, f"cut {result['overload_traffic']['cut']:.1%}, {result['changes_applied']} applied", flush=True)
    out.write_text(json.dumps(runs, indent=1, sort_keys=True, default=str))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    if hasattr(value, "item"):  # a NumPy scalar
        return _canonical(value.item())
    return value


def compare_dumps(old: Path, new: Path) -> int:
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    differences: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        if type(x) is not type(y):
            differences.append(f"{path}: {str(x)[:120]} | {str(y)[:120]}")
        elif isinstance(x, dict):
            for k in sorted(set(x) | set(y)):
                if k not in x or k not in y:
                    differences.append(f"{path}/{k}: only in one")
                else:
                    walk(x[k], y[k], f"{path}/{k}")
        elif isinstance(x, list):
            if len(x) != len(y):
                differences.append(f"{path}: {len(x)} items | {len(y)}")
            else:
                for i, (p, q) in enumerate(zip(x, y, strict=True)):
                    walk(p, q, f"{path}[{i}]")
        elif x != y and not path.endswith(RANDOM_IDS):
            differences.append(f"{path}: {str(x)[:120]} | {str(y)[:120]}")

    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            differences.append(f"{key}: run only in one")
        else:
            walk(a[key], b[key], key)
    for line in differences:
        print(line)
    changes = sum(len(run["changes_full"]) for run in a.values())
    print(f"{len(a)} runs, {changes} changes: {len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "dump":
        args = sys.argv[3:]
        specs = args[args.index("--suite") + 1].split(",") if "--suite" in args else []
        keys = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--suite")]
        dump(Path(sys.argv[2]), keys, specs, shipped_runs="--only-suite" not in args)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        raise SystemExit(compare_dumps(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        raise SystemExit(__doc__)
