# file → blackhole vs `cat FILES | wc -l`: one big Apache log, then the same
# bytes as 10 files. The file source never ends by itself, so the run ends
# when the sink has received every line (polled from /metrics), then SIGTERM.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
f=$(data_file apache "$SIZE")
bytes=$(stat -c %s "$f")
lines=$(wc -l < "$f")
split_dir="$DATA/split-$SIZE"
if [ ! -s "$split_dir/part-09.log" ]; then
  mkdir -p "$split_dir"
  split -n l/10 -d --additional-suffix=.log "$f" "$split_dir/part-"
fi

# run_file_agent INCLUDE -> "seconds peak_rss_kib" of one run until all lines arrived.
run_file_agent() {
  local include=$1 port=$((20000 + RANDOM % 20000)) cfg="$WORK/file.yaml"
  rm -rf "$WORK/data-file"
  cat > "$cfg" <<YAML
data_dir: $WORK/data-file
api: { address: 127.0.0.1:$port }
sources: { in: { type: file, include: ["$include"] } }
sinks: { out: { type: blackhole, inputs: [in] } }
YAML
  local start end pid
  start=$(date +%s.%N)
  /usr/bin/time -o "$WORK/time.file" -f "%e %M %U %S" "$BUILD/tributary" -c "$cfg" > /dev/null 2> "$WORK/stderr.file" &
  pid=$!
  while true; do
    got=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null |
          awk '/^tributary_component_sent_events_total\{/ && /component_id="out"/ {print $2}' | head -1)
    [ -n "$got" ] && awk -v g="$got" -v l="$lines" 'BEGIN { exit !(g >= l) }' && break
    kill -0 "$pid" 2>/dev/null || { echo "agent died" >&2; tail -5 "$WORK/stderr.file" >&2; return 1; }
    sleep 0.2  # polling interval of the harness (curl costs CPU on a busy 2-core box)
  done
  end=$(date +%s.%N)
  # SIGTERM the agent itself (GNU time would die and leave it running).
  kill -TERM "$(cat /proc/$pid/task/$pid/children)"; wait "$pid" || true
  # seconds until all lines arrived, peak RSS, CPU seconds (user+sys)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }') $(awk '{print $2, $3 + $4}' "$WORK/time.file")"
}
median_runs() {
  for _ in $(seq "$REPEAT"); do run_file_agent "$1"; done | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'
}

# CPU seconds of `cat | wc -l` (both processes) for the CPU ratio.
cat_cpu() { /usr/bin/time -f "%U %S" bash -c "cat $1 | wc -l" 2>&1 >/dev/null | awk '{print $1 + $2}'; }
read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "cat '$f' | wc -l")"
limit_cpu=$(cat_cpu "'$f'")
read -r t_s t_rss t_cpu <<< "$(median_runs "$f")"
row file_blackhole "file → blackhole, $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "cat FILE \| wc -l: $(mbps "$bytes" "$limit_s") MB/s; CPU s: agent $t_cpu, cat+wc $limit_cpu (ratio $(ratio "$limit_cpu" "$t_cpu"))"

read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "cat '$split_dir'/part-*.log | wc -l")"
limit_cpu=$(cat_cpu "'$split_dir'/part-*.log")
read -r t_s t_rss t_cpu <<< "$(median_runs "$split_dir/part-*.log")"
row file_blackhole_10 "file → blackhole, 10 files of $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "cat FILES \| wc -l: $(mbps "$bytes" "$limit_s") MB/s; CPU s: agent $t_cpu, cat+wc $limit_cpu (ratio $(ratio "$limit_cpu" "$t_cpu"))"
