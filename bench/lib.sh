# Shared helpers for bench scenarios (sourced by bench/run.sh and scenarios).
#
# Environment (set by run.sh):
#   BUILD       build directory with tributary and bench/gen_logs (Release)
#   DATA        directory for generated data (kept between runs)
#   WORK        scratch directory for this run
#   REPEAT      repetitions per measurement; the median is reported
#   SIZE        size of the main data file (e.g. 1G)

# data_file FORMAT SIZE -> path of a generated file, made once and reused.
data_file() {
  local format=$1 size=$2 f="$DATA/${1}-${2}.log"
  [ -s "$f" ] || "$BUILD/bench/gen_logs" --format "$format" --bytes "$size" --out "$f" >&2
  echo "$f"
}

# measure CMD... -> "seconds peak_rss_kib" of one run (stdout of CMD discarded).
measure() {
  local out="$WORK/time.$$"
  /usr/bin/time -o "$out" -f "%e %M" "$@" > /dev/null 2> "$WORK/stderr.last" || {
    echo "command failed: $*" >&2; tail -5 "$WORK/stderr.last" >&2; }
  tail -n 1 "$out"
}

# measure_sh 'shell pipeline' -> "seconds peak_rss_kib".
measure_sh() { measure bash -c "$1"; }

# median_run N CMD... -> the median (by its first field) of the lines that
# N runs of CMD (a command or shell function printing one line) print.
median_run() {
  local n=$1; shift
  for _ in $(seq "$n"); do "$@"; done | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'
}

# median_of N CMD... -> the median "seconds rss" of N runs (by seconds).
median_of() { local n=$1; shift; median_run "$n" measure "$@"; }

# mbps BYTES SECONDS
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f", b / s / 1e6 }'; }
# ratio A B -> A/B with two decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.001; printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# agent_config FILE: writes a config whose pipeline is given on stdin (the
# sources/transforms/sinks sections), with data_dir in WORK and no API.
agent_config() {
  local f=$1
  {
    echo "data_dir: $WORK/data-$(basename "$f" .yaml)"
    echo "api: { enabled: false }"
    cat
  } > "$f"
}

# row NAME WHAT MBPS RATIO RSS NOTE: one line of the results table.
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$@"; }

# sent_events PORT SINK_ID: sets SENT to the sink's
# tributary_component_sent_events_total (empty while the agent does not
# answer). Bash builtins only (/dev/tcp, read, case): a `curl | awk` per
# poll forks four processes, which on a 2-core machine took a few per cent
# of a core from the agent being measured.
sent_events() {
  local line
  SENT=""
  { exec 7<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&7
  while IFS= read -r line <&7; do
    case $line in
      "tributary_component_sent_events_total{"*"component_id=\"$2\""*) SENT=${line##* }; break ;;
    esac
  done
  exec 7>&-
}

# run_until_sent CONFIG SINK_ID LINES [ARGS...] -> "seconds peak_rss_kib cpu_seconds" of
# one agent run on CONFIG (which must not set `api`: an address is added),
# from start until sink SINK_ID has sent LINES events, then SIGTERM. For
# sources that never end by themselves (file). Every run starts with an
# empty data_dir (no checkpoints). The finish is seen within the 50 ms
# polling interval.
run_until_sent() {
  local cfg=$1 sink=$2 want=$3 port=$((20000 + RANDOM % 20000))
  shift 3
  local run_cfg="$WORK/run-$(basename "$cfg")"
  rm -rf "$(awk '/^data_dir:/ {print $2}' "$cfg")"
  { echo "api: { address: 127.0.0.1:$port }"; grep -v '^api:' "$cfg"; } > "$run_cfg"
  local start end pid
  start=$(date +%s.%N)
  /usr/bin/time -o "$WORK/time.until" -f "%e %M %U %S" "$BUILD/tributary" -c "$run_cfg" "$@" > /dev/null 2> "$WORK/stderr.until" &
  pid=$!
  while true; do
    sent_events "$port" "$sink"
    [ -n "$SENT" ] && [ "${SENT%.*}" -ge "$want" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "agent died" >&2; tail -5 "$WORK/stderr.until" >&2; return 1; }
    sleep 0.05  # the harness's polling interval
  done
  end=$(date +%s.%N)
  # SIGTERM the agent itself (GNU time would die and leave it running).
  kill -TERM "$(cat /proc/$pid/task/$pid/children)"; wait "$pid" || true
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }') $(awk '{print $2, $3 + $4}' "$WORK/time.until")"
}
