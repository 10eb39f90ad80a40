# file → blackhole vs `cat FILES | wc -l`: one big Apache log, then the same
# bytes as 10 files. The file source never ends by itself, so the run ends
# when the sink has received every line (polled from /metrics), then SIGTERM.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
f=$(data_file apache "$SIZE")
bytes=$(stat -L -c %s "$f")
lines=$(wc -l < "$f")
split_dir="$DATA/split-$SIZE"
if [ ! -s "$split_dir/part-09.log" ]; then
  mkdir -p "$split_dir"
  split -n l/10 -d --additional-suffix=.log "$f" "$split_dir/part-"
fi

# run_file_agent INCLUDE -> "seconds peak_rss_kib cpu_s" of one run until all lines arrived.
run_file_agent() {
  agent_config "$WORK/file.yaml" <<YAML
sources: { in: { type: file, include: ["$1"] } }
sinks: { out: { type: blackhole, inputs: [in] } }
YAML
  run_until_sent "$WORK/file.yaml" out "$lines"
}

# CPU seconds of `cat | wc -l` (both processes) for the CPU ratio.
cat_cpu() { /usr/bin/time -f "%U %S" bash -c "cat $1 | wc -l" 2>&1 >/dev/null | awk '{print $1 + $2}'; }
read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "cat '$f' | wc -l")"
limit_cpu=$(cat_cpu "'$f'")
read -r t_s t_rss t_cpu <<< "$(median_run "$REPEAT" run_file_agent "$f")"
row file_blackhole "file → blackhole, $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "cat FILE \| wc -l: $(mbps "$bytes" "$limit_s") MB/s; CPU s: agent $t_cpu, cat+wc $limit_cpu (ratio $(ratio "$limit_cpu" "$t_cpu"))"

read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "cat '$split_dir'/part-*.log | wc -l")"
limit_cpu=$(cat_cpu "'$split_dir'/part-*.log")
read -r t_s t_rss t_cpu <<< "$(median_run "$REPEAT" run_file_agent "$split_dir/part-*.log")"
row file_blackhole_10 "file → blackhole, 10 files of $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "cat FILES \| wc -l: $(mbps "$bytes" "$limit_s") MB/s; CPU s: agent $t_cpu, cat+wc $limit_cpu (ratio $(ratio "$limit_cpu" "$t_cpu"))"
