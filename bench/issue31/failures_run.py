"""All single failures of Cogentco re-optimised with WORKERS processes; writes the MLUs and wall time under TAG."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/issue31/
import failures_network

import netpilot

workers = int(sys.argv[1])
tag = sys.argv[2]
routing, report, answers, wall = failures_network.run("Cogentco", workers)
np.save(f"/tmp/speed/fail_{tag}_w{workers}.npy", report.mlu)
print(
    json.dumps(
        {
            "tag": tag,
            "src": netpilot.__file__,
            "workers": workers,
            "seconds": report.seconds,
            "wall": wall,
            "scenarios": len(answers),
            "worst": float(report.mlu.max()),
            "base_mlu": routing.mlu,
            "kept": int(sum(a.moved_pairs == 0 for a in answers)),
            "iterations": int(sum(a.iterations for a in answers)),
        }
    ),
    flush=True,
)
