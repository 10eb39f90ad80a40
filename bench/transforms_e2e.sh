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

best() {  # best lines/s of RUNS runs of "$@" (a command printing nothing useful)
  local best=0
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N)
    best=$(awk -v b="$best" -v n="$LINES" -v s="$s" -v e="$e" 'BEGIN { r = n / (e - s); print (r > b ? r : b) }')
  done
  echo "$best"
}
raw() {  # best lines_per_sec printed by a raw loop
  local best=0
  for _ in $(seq "$RUNS"); do
    local r
    r=$("$@" | sed -n 's/.*lines_per_sec=\([0-9.]*\).*/\1/p')
    best=$(awk -v b="$best" -v r="$r" 'BEGIN { print (r > b ? r : b) }')
  done
  echo "$best"
}
agent() { "$BUILD/tributary" -c "$1" --threads "$2" < "$3"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); lines: $LINES; best of $RUNS"
RE2_1=$(raw "$BUILD/bench/raw_re2_loop" "$WORK/apache.log" 1)
RE2_2=$(raw "$BUILD/bench/raw_re2_loop" "$WORK/apache.log" 2)
SJ=$(raw "$BUILD/bench/raw_simdjson_loop" "$WORK/json.log")
NOOP=$(best agent "$WORK/noop.yaml" 1 "$WORK/apache.log")
RX1=$(best agent "$WORK/regex.yaml" 1 "$WORK/apache.log")
RX2=$(best agent "$WORK/regex.yaml" 2 "$WORK/apache.log")
JS1=$(best agent "$WORK/json.yaml" 1 "$WORK/json.log")
JS2=$(best agent "$WORK/json.yaml" 2 "$WORK/json.log")
awk -v re1="$RE2_1" -v re2="$RE2_2" -v sj="$SJ" -v noop="$NOOP" -v rx1="$RX1" -v rx2="$RX2" -v js1="$JS1" -v js2="$JS2" 'BEGIN {
  printf "%-52s %12s %8s\n", "scenario", "lines/s", "ratio"
  printf "%-52s %12.0f %8s\n", "raw RE2 captures, 1 thread", re1, "1.00"
  printf "%-52s %12.0f %8.2f\n", "raw RE2 captures, 2 threads", re2, re2 / re1
  printf "%-52s %12.0f %8.2f\n", "stdin → remove_fields (no-op) → blackhole, --threads 1", noop, noop / re1
  printf "%-52s %12.0f %8.2f\n", "stdin → regex_parser → blackhole, --threads 1", rx1, rx1 / re1
  printf "%-52s %12.0f %8.2f\n", "stdin → regex_parser → blackhole, --threads 2", rx2, rx2 / re1
  printf "%-52s %12.0f %8s\n", "raw simdjson DOM, 1 thread", sj, "1.00"
  printf "%-52s %12.0f %8.2f\n", "stdin → json_parser → blackhole, --threads 1", js1, js1 / sj
  printf "%-52s %12.0f %8.2f\n", "stdin → json_parser → blackhole, --threads 2", js2, js2 / sj
}'
