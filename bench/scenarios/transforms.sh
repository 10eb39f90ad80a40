# file → regex_parser (the Apache regex) → blackhole, against raw RE2
# captures over the same file; file → json_parser → blackhole, against raw
# simdjson over the same file. --threads 1 (the transform runs on the file
# source's thread) and 2 (a worker pool of two). The file source never ends:
# a run lasts until the sink has counted every line.
#
# Besides wall-clock MB/s, each note gives the ratio per CPU-second (user +
# sys of all threads): on a shared machine that is the fair "per core"
# comparison. The agent's figures are its whole run, reading the file
# included. The agent and the raw loop that reads the file run in turn,
# REPEAT pairs, and the ratio quoted is the median of the pairs' ratios:
# a neighbour who slows the machine for a minute then slows both sides of
# a pair instead of all of one side. Each raw loop is measured twice: reading the file as the
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

# pairs N CFG THREADS LIMIT_CMD... -> N lines "agent_wall agent_rss
# agent_cpu limit_wall limit_cpu": the raw loop and the agent run in turn,
# so that a neighbour who slows the machine for a while slows both sides
# of a pair rather than one side of the whole comparison.
pairs() {
  local n=$1 cfg=$2 threads=$3 lines=$4
  shift 4
  for _ in $(seq "$n"); do
    read -r l_s _ l_cpu <<< "$(limit_measure "$@")"
    echo "$(run_until_sent "$cfg" out "$lines" --threads "$threads") $l_s $l_cpu"
  done
}

scenario() {  # name what file config threads limit_name limit2_line limit2_name limit_cmd...
  local name=$1 what=$2 f=$3 cfg=$4 threads=$5 limit_name=$6 limit2=$7 limit2_name=$8 bytes lines
  shift 8
  bytes=$(stat -L -c %s "$f")
  lines=$(wc -l < "$f")
  # Medians of each side, and the median of the per-pair CPU ratios.
  local runs
  runs=$(pairs "$REPEAT" "$cfg" "$threads" "$lines" "$@")
  local t_s t_rss t_cpu l_s l_cpu r_cpu r_s
  read -r t_s t_rss t_cpu l_s l_cpu r_cpu r_s <<< "$(awk '{
      ts[NR] = $1; rss[NR] = $2; tc[NR] = $3; ls[NR] = $4; lc[NR] = $5; rc[NR] = $5 / $3; rs[NR] = $4 / $1 }
    function med(a, n) { asort(a); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    END { printf "%s %s %s %s %s %.2f %.2f\n", med(ts, NR), med(rss, NR), med(tc, NR), med(ls, NR), med(lc, NR), med(rc, NR), med(rs, NR) }' <<< "$runs")"
  local note="$limit_name: $(mbps "$bytes" "$l_s") MB/s; per CPU-s: $r_cpu ($(mbps "$bytes" "$t_cpu") vs $(mbps "$bytes" "$l_cpu") MB per CPU-s; median of the ratios of $REPEAT alternating pairs)"
  if [ -n "$limit2" ]; then
    read -r _ _ l2_cpu <<< "$limit2"
    note="$note; against $limit2_name: $(ratio "$l2_cpu" "$t_cpu") per CPU-s ($(mbps "$bytes" "$l2_cpu") MB per CPU-s)"
  fi
  row "$name" "$what, --threads $threads" "$(mbps "$bytes" "$t_s")" "$r_s" "$(mib "$t_rss")" "$note"
}

re2_1=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 1)
re2_2=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 2)
re2_match=$(cpu_median "$REPEAT" "$BUILD/bench/raw_re2_loop" "$apache" 1 preload)
sj_parse=$(cpu_median "$REPEAT" "$BUILD/bench/raw_simdjson_loop" "$json" preload)
for threads in 1 2; do
  scenario regex_parser "file → regex_parser → blackhole" "$apache" "$WORK/regex.yaml" "$threads" \
    "raw RE2 captures, 1 thread, reading the file as the agent does" "$re2_match" "its matching alone" \
    "$BUILD/bench/raw_re2_loop" "$apache" 1
done
read -r r2_s _ r2_cpu <<< "$re2_2"
read -r r1_s _ r1_cpu <<< "$re2_1"
row raw_re2_2_threads "raw RE2 captures on 2 threads (scaling of the limit itself)" \
  "$(mbps "$(stat -L -c %s "$apache")" "$r2_s")" "$(ratio "$r1_s" "$r2_s")" "-" "speed-up of the raw loop from 1 to 2 threads"
for threads in 1 2; do
  scenario json_parser "file → json_parser → blackhole" "$json" "$WORK/json.yaml" "$threads" \
    "raw simdjson DOM, reading the file as the agent does" "$sj_parse" "its parsing alone" \
    "$BUILD/bench/raw_simdjson_loop" "$json"
done
