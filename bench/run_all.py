"""Run every benchmark script in bench/ (``make bench``); each prints Markdown tables for BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["te.py", "telemetry.py", "analytics.py", "ran.py", "change.py", "autopilot.py"]

if __name__ == "__main__":
    failed = []
    for script in SCRIPTS:
        print(f"\n## bench/{script}\n", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)]).returncode != 0:
            failed.append(script)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
