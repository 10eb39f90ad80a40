#!/usr/bin/env bash
# Benchmark harness: builds tributary (Release), generates data once, runs the
# scenarios in bench/scenarios/ (all, or those named), prints a Markdown table
# and appends it to bench/RESULTS.md with the machine and the date.
#
#   bench/run.sh                 # every scenario, 1 GB main data file
#   SIZE=200M bench/run.sh stdin_blackhole demo_logs_blackhole
#   REPEAT=5 bench/run.sh ...    # median of 5 runs per measurement
#   NO_RECORD=1 bench/run.sh     # print only
#
# Each scenario prints table rows comparing tributary with the physical limit
# measured in the same run (e.g. `cat FILE | wc -l`): quote the ratios, the
# machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-$PWD/build}
export DATA=${DATA:-$PWD/bench/data}
export REPEAT=${REPEAT:-3}
export SIZE=${SIZE:-1G}
export WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DATA"
[ -x /usr/bin/time ] || { echo "bench needs GNU time: apt-get install time" >&2; exit 1; }
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" --parallel "$(nproc)" --target tributary gen_logs >/dev/null
# Any extra tools a scenario needs are built by the scenario itself.

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in bench/scenarios/*.sh; do scenarios+=("$(basename "$f" .sh)"); done
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
header="### $(date -u +%Y-%m-%d) — $(nproc) cores, ${cpu:-unknown CPU}, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); SIZE=$SIZE, median of $REPEAT"
table="| scenario | what | MB/s | ratio to limit | peak RSS MiB | limit and notes |
|---|---|---|---|---|---|"
for s in "${scenarios[@]}"; do
  echo "running $s ..." >&2
  rows=$(bash "bench/scenarios/$s.sh") || { echo "scenario $s failed" >&2; continue; }
  table+=$'\n'"$rows"
done
out="$header"$'\n\n'"$table"$'\n'
echo "$out"
if [ -z "${NO_RECORD:-}" ]; then
  printf '\n%s' "$out" >> bench/RESULTS.md
fi
