"""Alternate `te solve` default / --method lp over the code trees given, first and cached calls; print walls,
medians and LP/default ratios."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

G = (os.environ.get("NETPILOT_SHARED_DATA", "../shared/data")
     + "/te/repetita/2016TopologyZooUCL_inverseCapacity/Cogentco.graph")
P = sys.executable
trees = sys.argv[2].split(",")
rounds = int(sys.argv[1])
res = {}
for r in range(rounds):
    for tree in trees:
        for label, extra in (("default", []), ("lp", ["--method", "lp"])):
            cache = f"/tmp/speed/altcache-{os.path.basename(tree)}-{label}-{r}"
            shutil.rmtree(cache, ignore_errors=True)
            for call in ("first", "cached"):
                env = {**os.environ, "NETPILOT_CACHE": cache, "PYTHONPATH": f"{tree}/src"}
                t = time.perf_counter()
                subprocess.run(
                    [
                        P,
                        "-m",
                        "netpilot.cli",
                        "te",
                        "solve",
                        "--network",
                        G,
                        "--demands",
                        "/tmp/speed/gravity.npy",
                        "--json",
                        "/tmp/speed/alt.json",
                        *extra,
                    ],
                    check=True,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
                wall = time.perf_counter() - t
                d = json.loads(Path("/tmp/speed/alt.json").read_text())
                res.setdefault((os.path.basename(tree), label, call), []).append((wall, d["solve_seconds"], d["mlu"]))
                print(
                    os.path.basename(tree),
                    label,
                    call,
                    f"{wall:.2f} solver {d['solve_seconds']:.2f} mlu {d['mlu']:.6f}",
                    flush=True,
                )
print()
for key, v in res.items():
    w = [x[0] for x in v]
    s = [x[1] for x in v]
    lp = [x[0] for x in res[(key[0], "lp", key[2])]]
    print(
        key,
        f"wall median {statistics.median(w):.2f} max {max(w):.2f} solver median {statistics.median(s):.2f}",
        f"LP/this per round {[round(a / b, 2) for a, b in zip(lp, w)]}",
        f"mlu {v[-1][2]:.6f}",
    )
