#!/usr/bin/env bash
# Issue 31, third pass: failures (2 workers, 3 rounds; then 1 worker), Kdl cold (2 rounds) and `te solve`
# (3 rounds), alternating a BEFORE tree and an AFTER tree, each call a fresh process. Needs /tmp/speed/ and, for
# `te solve`, /tmp/speed/gravity.npy (README.md here).   bash bench/issue31/alternate_all.sh BEFORE AFTER
set -u
before=$1 after=$2
here="$(cd "$(dirname "$0")" && pwd)"
python=${PYTHON:-python}
echo "== failures, 2 workers"; uptime
for r in 1 2 3; do for tree in "$before" "$after"; do
  (cd "$tree" && PYTHONPATH=src:bench "$python" "$here/failures_run.py" 2 "alt_$(basename "$tree")_$r" | cut -c1-400)
done; done
for r in 1 2 3; do
  "$python" -c "import numpy as np; a = np.load('/tmp/speed/fail_alt_$(basename "$before")_${r}_w2.npy'); \
b = np.load('/tmp/speed/fail_alt_$(basename "$after")_${r}_w2.npy'); print('round $r: the 490 MLUs identical', np.array_equal(a, b))"
done
echo "== failures, 1 worker"
for tree in "$before" "$after"; do
  (cd "$tree" && PYTHONPATH=src:bench "$python" "$here/failures_run.py" 1 "alt1_$(basename "$tree")" | cut -c1-400)
done
echo "== Kdl cold"; uptime
for r in 1 2; do for tree in "$before" "$after"; do
  echo "$(basename "$tree") round $r"; (cd "$tree" && PYTHONPATH=src "$python" "$here/kdl_cold.py" | tail -3)
done; done
echo "== te solve"; uptime
"$python" "$here/cli_alternate.py" 3 "$before,$after"
uptime
