for r in 1 2; do
for w in 2 1; do
for tree in "$@"; do  # the checkouts to compare, e.g. ../base .
  here="$(cd "$(dirname "$0")" && pwd)"
  (cd "$tree" && PYTHONPATH="$tree/src:$here/.." python "$here/failures_run.py" $w "$(basename "$tree")_r$r" 2>&1 | tail -1)
  uptime
done; done; done
