for r in 1 2; do
for w in 2 1; do
for tree in main wt-speed; do
  cd /work/$tree && PYTHONPATH=/work/$tree/src:/work/wt-speed/bench NETPILOT_SHARED_DATA=/work/shared/data /work/main/.venv/bin/python /work/wt-speed/bench/issue31/failures_run.py $w ${tree}_r$r 2>&1 | tail -1
  uptime
done; done; done
