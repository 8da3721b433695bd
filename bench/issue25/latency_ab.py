"""Decision latency of two versions of the code, replay by replay, alternating in one sitting, with each replay's
decisions digest (BENCHMARKS.md, issue 25, session 18):

    python bench/issue25/latency_ab.py BEFORE_TREE AFTER_TREE SCENARIO [...] [--rounds 2]
        [--out bench/results/latency-ab.json] [--plot docs/suite-latency-ab.png]

A tree is a checkout whose ``src/`` and ``bench/issue25/tick_stages.py`` run the replay (a worktree of an older
commit, say). SCENARIO is TOPOLOGY:LOAD:SEED as in `tick_stages.py`. Each round runs every scenario under BEFORE
then AFTER, each in a fresh process; the figures are each version's median over rounds of the replay's p50 and
p99 (wall clock, fixed work per tick, as the suite replays). The two versions must decide the same: a digest that
differs is reported.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

LINE = re.compile(r"^(?P<name>\S+): (?P<ticks>\d+) ticks, (?P<wall>[\d.]+) s; latency p50 (?P<p50>\d+) "
                  r"p99 (?P<p99>\d+) max (?P<max>\d+) ms; .*decisions (?P<digest>[0-9a-f]+)$")


def run(tree: Path, scenario: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    script = tree / "bench" / "issue25" / "tick_stages.py"
    out = subprocess.run([sys.executable, str(script), scenario, "--over", "1e9"], env=env, capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    for line in out.stdout.splitlines():
        match = LINE.match(line)
        if match:
            return {k: (v if k in ("name", "digest") else float(v)) for k, v in match.groupdict().items()}
    raise RuntimeError(f"no result from {tree} for {scenario}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def size(scenario: str) -> tuple[int, int]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import suite  # bench/suite.py
    from netpilot.model.io import load_network

    name, load, _ = scenario.split(":")
    topology = {t.name: t for t in suite.topologies()}[name]
    network = load_network(suite.prepare_network(topology, float(load)))
    return sum(n.kind == "router" for n in network.nodes), len(network.nodes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path, nargs="?")
    parser.add_argument("after", type=Path, nargs="?")
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latency-ab.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--replot", type=Path, default=None, help="only draw --plot from this saved --out")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text())["table"], args.plot)
        return
    results: dict[str, dict[str, list[dict]]] = {s: {"before": [], "after": []} for s in args.scenarios}
    for r in range(args.rounds):
        for scenario in args.scenarios:
            for label, tree in (("before", args.before), ("after", args.after)):
                result = run(tree, scenario)
                results[scenario][label].append(result)
                print(f"round {r + 1} {label:6} {scenario:22} p50 {result['p50']:4.0f} p99 {result['p99']:4.0f} ms "
                      f"wall {result['wall']:5.1f} s  {result['digest']}", flush=True)
    table = []
    for scenario, both in results.items():
        routers, nodes = size(scenario)
        row = {"scenario": scenario, "routers": routers, "nodes": nodes}
        for label in ("before", "after"):
            row[f"{label}_p50_ms"] = float(np.median([x["p50"] for x in both[label]]))
            row[f"{label}_p99_ms"] = float(np.median([x["p99"] for x in both[label]]))
            row[f"{label}_wall_s"] = float(np.median([x["wall"] for x in both[label]]))
        row["same_decisions"] = len({x["digest"] for x in both["before"] + both["after"]}) == 1
        table.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rounds": args.rounds, "runs": results,
                                    "table": table}, indent=1))
    print("| scenario | routers | p50 before → after (ms) | p99 before → after (ms) | replay wall (s) | "
          "same decisions |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['scenario']} | {row['routers']} | {row['before_p50_ms']:.0f} → {row['after_p50_ms']:.0f} | "
              f"{row['before_p99_ms']:.0f} → {row['after_p99_ms']:.0f} | {row['before_wall_s']:.1f} → "
              f"{row['after_wall_s']:.1f} | {'yes' if row['same_decisions'] else 'NO'} |")
    if args.plot:
        plot(table, args.plot)


def plot(table: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = sorted(table, key=lambda row: row["nodes"])
    x = [row["nodes"] for row in table]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.set_yscale("log")
    for label, style in (("before", "--"), ("after", "-")):
        ax.plot(x, [row[f"{label}_p99_ms"] for row in table], style + "o", color="tab:red", label=f"p99, {label}")
        ax.plot(x, [row[f"{label}_p50_ms"] for row in table], style + "s", color="tab:blue", label=f"p50, {label}")
    ax.axhline(100, color="grey", lw=0.8, ls=":")
    ax.text(x[-1], 110, "target p99 ≤ 100 ms (up to 200 routers)", color="grey", fontsize=8, ha="right")
    ax.set_xlabel("nodes (routers, and cells where the network has them)")
    ax.set_ylabel("decision latency per tick, wall clock (ms)")
    ax.set_title("Decision latency before and after session 18 (2 cores, same decisions)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
