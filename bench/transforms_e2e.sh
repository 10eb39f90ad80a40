#!/usr/bin/env bash
# End-to-end transform throughput against the raw libraries, same bytes,
# same run:
#   stdin → regex_parser (the Apache regex) → blackhole   vs  raw_re2_loop
#   stdin → json_parser → blackhole                        vs  raw_simdjson_loop
# Until the file source is on main, the agent reads the file on stdin
# (`tributary < file`), which has the same line splitting and batching.
# Each figure is the best of RUNS runs (the machine is shared).
#   bench/transforms_e2e.sh [BUILD_DIR] [LINES] [RUNS]
set -euo pipefail
BUILD=${1:-build}
LINES=${2:-1000000}
RUNS=${3:-3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$BUILD/bench/gen_logs" apache "$LINES" > "$WORK/apache.log"
"$BUILD/bench/gen_logs" json "$LINES" > "$WORK/json.log"

config() {  # $1 = transform yaml
  cat <<YAML
data_dir: $WORK/data
api: { enabled: false }
sources:
  in: { type: stdin, max_batch_events: 1000 }
transforms:
$1
sinks:
  out: { type: blackhole, inputs: [t], buffer: { max_events: 20000 } }
YAML
}
config '  t:
    type: regex_parser
    inputs: [in]
    patterns: ['"'"'^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$'"'"']' > "$WORK/regex.yaml"
config '  t:
    type: json_parser
    inputs: [in]' > "$WORK/json.yaml"
config '  t:
    type: remove_fields
    inputs: [in]
    fields: [nothing]' > "$WORK/noop.yaml"

# best() prints "WALL CPU": the best lines per wall-clock second and the best
# lines per CPU second (user + sys of every thread) of RUNS runs. On a shared
# machine the CPU figure is the fair "per core" comparison.
best() {
  local bw=0 bc=0
  for _ in $(seq "$RUNS"); do
    local t
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" > /dev/null 2>&1; } 2>&1 | tail -1)
    read -r bw bc < <(awk -v bw="$bw" -v bc="$bc" -v n="$LINES" -v t="$t" 'BEGIN {
      split(t, a, " "); w = n / a[1]; c = n / (a[2] + a[3]);
      print (w > bw ? w : bw), (c > bc ? c : bc) }')
  done
  echo "$bw $bc"
}
agent() { "$BUILD/tributary" -c "$1" --threads "$2" < "$3"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); lines: $LINES; best of $RUNS"
row() {  # name, "WALL CPU", "REF_WALL REF_CPU"
  awk -v name="$1" -v m="$2" -v r="$3" 'BEGIN { split(m, a, " "); split(r, b, " ");
    printf "| %-48s | %10.0f | %5.2f | %10.0f | %5.2f |\n", name, a[1], a[1] / b[1], a[2], a[2] / b[2] }'
}
RE2_1=$(best "$BUILD/bench/raw_re2_loop" "$WORK/apache.log" 1)
RE2_2=$(best "$BUILD/bench/raw_re2_loop" "$WORK/apache.log" 2)
SJ=$(best "$BUILD/bench/raw_simdjson_loop" "$WORK/json.log")
echo "| scenario | lines/s (wall) | ratio | lines per CPU-s | ratio |"
echo "|---|---|---|---|---|"
row "raw RE2 captures, 1 thread" "$RE2_1" "$RE2_1"
row "raw RE2 captures, 2 threads" "$RE2_2" "$RE2_1"
row "stdin → remove_fields (no-op) → blackhole, -t 1" "$(best agent "$WORK/noop.yaml" 1 "$WORK/apache.log")" "$RE2_1"
row "stdin → regex_parser → blackhole, --threads 1" "$(best agent "$WORK/regex.yaml" 1 "$WORK/apache.log")" "$RE2_1"
row "stdin → regex_parser → blackhole, --threads 2" "$(best agent "$WORK/regex.yaml" 2 "$WORK/apache.log")" "$RE2_1"
row "raw simdjson DOM, 1 thread" "$SJ" "$SJ"
row "stdin → json_parser → blackhole, --threads 1" "$(best agent "$WORK/json.yaml" 1 "$WORK/json.log")" "$SJ"
row "stdin → json_parser → blackhole, --threads 2" "$(best agent "$WORK/json.yaml" 2 "$WORK/json.log")" "$SJ"
