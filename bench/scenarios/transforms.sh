# file → regex_parser (the Apache regex) → blackhole, against raw RE2
# captures over the same file; file → json_parser → blackhole, against raw
# simdjson over the same file. --threads 1 (the transform runs on the file
# source's thread) and 2 (a worker pool of two). The file source never ends:
# a run lasts until the sink has counted every line.
#
# Besides wall-clock MB/s, each note gives the ratio per CPU-second (user +
# sys of all threads): on a shared machine that is the fair "per core"
# comparison. The agent's figures are its whole run, reading the file
# included. Each raw loop is measured twice: reading the file as the
# agent's file source does (read in 128 KiB chunks, lines split with
# memchr; bench/raw_lines.h), which is the same work as the pipeline minus
# everything of ours, and after loading the file into memory, its matching
# or parsing alone (reading 200 MB costs ~0.07 CPU-s: ~2 % of the RE2 loop,
# a third as much as simdjson's parsing).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cmake --build "$BUILD" --target raw_re2_loop raw_simdjson_loop >/dev/null
apache=$(data_file apache "$SIZE")
json=$(data_file json "$SIZE")

# limit_measure CMD... -> "wall_s rss_kib cpu_s" of one run of a raw loop:
# the wall and CPU seconds it reports for its measured part (with
# `preload`, loading the file into memory first is no part of it).
limit_measure() {
  local out="$WORK/ltime.$$" line
  line=$(/usr/bin/time -o "$out" -f "%M" "$@" 2> "$WORK/stderr.last") || {
    echo "command failed: $*" >&2; tail -5 "$WORK/stderr.last" >&2; }
  awk -v rss="$(tail -n 1 "$out")" '{
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%s %s %s\n", v["secs"], rss, v["cpu_secs"] }' <<< "$line"
}
cpu_median() {
  local n=$1; shift
  median_run "$n" limit_measure "$@"
}

agent_config "$WORK/regex.yaml" <<YAML
sources: { in: { type: file, include: ["$apache"] } }
transforms:
  parse:
    type: regex_parser
    inputs: [in]
    patterns: ['^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$']
sinks: { out: { type: blackhole, inputs: [parse] } }
YAML
agent_config "$WORK/json.yaml" <<YAML
sources: { in: { type: file, include: ["$json"] } }
transforms:
  parse: { type: json_parser, inputs: [in] }
sinks: { out: { type: blackhole, inputs: [parse] } }
YAML

scenario() {  # name what file config threads limit_line("wall rss cpu") limit_name [limit2_line limit2_name]
  local name=$1 what=$2 f=$3 cfg=$4 threads=$5 limit=$6 limit_name=$7 limit2=${8:-} limit2_name=${9:-} bytes
  bytes=$(stat -L -c %s "$f")
  local lines
  lines=$(wc -l < "$f")
  read -r t_s t_rss t_cpu <<< "$(median_run "$REPEAT" run_until_sent "$cfg" out "$lines" --threads "$threads")"
  read -r l_s _ l_cpu <<< "$limit"
  local note="$limit_name: $(mbps "$bytes" "$l_s") MB/s; per CPU-s: $(ratio "$l_cpu" "$t_cpu") ($(mbps "$bytes" "$t_cpu") vs $(mbps "$bytes" "$l_cpu") MB per CPU-s)"
  if [ -n "$limit2" ]; then
    read -r _ _ l2_cpu <<< "$limit2"
    note="$note; against $limit2_name: $(ratio "$l2_cpu" "$t_cpu") per CPU-s ($(mbps "$bytes" "$l2_cpu") MB per CPU-s)"
  fi
  row "$name" "$what, --threads $threads" "$(mbps "$bytes" "$t_s")" "$(ratio "$l_s" "$t_s")" "$(mib "$t_rss")" "$note"
}

re2_1=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 1)
re2_2=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 2)
re2_match=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 1 preload)
sj=$(cpu_median "$REPEAT" "$BUILD/bench/raw_simdjson_loop" "$json")
sj_parse=$(cpu_median "$REPEAT" "$BUILD/bench/raw_simdjson_loop" "$json" preload)
for threads in 1 2; do
  scenario regex_parser "file → regex_parser → blackhole" "$apache" "$WORK/regex.yaml" "$threads" \
    "$re2_1" "raw RE2 captures, 1 thread, reading the file as the agent does" "$re2_match" "its matching alone"
done
read -r r2_s _ r2_cpu <<< "$re2_2"
read -r r1_s _ r1_cpu <<< "$re2_1"
row raw_re2_2_threads "raw RE2 captures on 2 threads (scaling of the limit itself)" \
  "$(mbps "$(stat -L -c %s "$apache")" "$r2_s")" "$(ratio "$r1_s" "$r2_s")" "-" "speed-up of the raw loop from 1 to 2 threads"
for threads in 1 2; do
  scenario json_parser "file → json_parser → blackhole" "$json" "$WORK/json.yaml" "$threads" \
    "$sj" "raw simdjson DOM, reading the file as the agent does" "$sj_parse" "its parsing alone"
done
