#!/usr/bin/env bash
# The whole test command (`python -m tox`) from a clean clone, several times in a row, while
# competing busy processes take the CPUs: the check that the suite does not depend on scheduling.
#
#   bash scripts/suite_under_load.sh [RUNS] [BUSY]     # defaults: 3 runs, 2 busy processes
#
# Each run gets a fresh clone of the commit that was HEAD at the start (its own .tox, nothing
# reused) in a temporary folder. Prints one line per run (exit status, wall time, pytest's count)
# and leaves each run's output in the folder it names; exits 1 if any run failed.
set -u
runs=${1:-3}
busy=${2:-2}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d)
pids=""
for _ in $(seq "$busy"); do
  python -c "while True: pass" &
  pids="$pids $!"
done
trap 'kill $pids 2>/dev/null' EXIT
echo "$(nproc) CPUs, $busy busy processes, commit ${commit:0:10}, output in $work"
failed=0
for run in $(seq "$runs"); do
  git clone --quiet "$repo" "$work/run$run" && git -C "$work/run$run" checkout --quiet "$commit"
  start=$(date +%s)
  (cd "$work/run$run" && python -m tox >"$work/run$run.log" 2>&1)
  status=$?
  summary=$(grep -E "^=+ .*(passed|failed).* in " "$work/run$run.log" | tail -n 1)
  echo "run $run: exit $status in $(($(date +%s) - start)) s: $summary"
  [ "$status" -eq 0 ] || failed=1
done
exit "$failed"
