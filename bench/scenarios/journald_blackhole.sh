# journald (journal_directory, 1M entries) → blackhole vs
# `journalctl -D DIR -o export > /dev/null` over the same directory.
# The journal is made once under $DATA/journal-1M by systemd-journal-remote
# from Journal Export Format entries shaped like a service's stdout entries
# (18 fields, the apache lines of gen_logs as MESSAGE).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
entries=${JOURNAL_ENTRIES:-1000000}
jdir="$DATA/journal-$entries"
if [ ! -s "$jdir/.complete" ]; then
  rm -rf "$jdir"; mkdir -p "$jdir"
  src="$DATA/apache-$entries-lines.log"
  [ -s "$src" ] || "$BUILD/bench/gen_logs" --format apache --lines "$entries" --out "$src" >&2
  awk -v now="$(date +%s)000000" '
    BEGIN { boot = "4f3c2a1b0d9e8f7a6b5c4d3e2f1a0b9c"; machine = "0a1b2c3d4e5f60718293a4b5c6d7e8f9" }
    {
      printf "__REALTIME_TIMESTAMP=%.0f\n__MONOTONIC_TIMESTAMP=%.0f\n_BOOT_ID=%s\n", now + NR, 1000000 + NR, boot
      printf "_MACHINE_ID=%s\n_HOSTNAME=bench-host-1\n_TRANSPORT=stdout\nPRIORITY=6\nSYSLOG_FACILITY=3\n", machine
      printf "SYSLOG_IDENTIFIER=nginx\n_PID=%d\n_UID=33\n_GID=33\n_COMM=nginx\n_EXE=/usr/sbin/nginx\n", 1000 + NR % 8
      printf "_CMDLINE=nginx: worker process\n_SYSTEMD_CGROUP=/system.slice/nginx.service\n_SYSTEMD_UNIT=nginx.service\n"
      printf "_SYSTEMD_INVOCATION_ID=9d2c6f3a8b1e4d7f0a5c2e9b6d3f8a1c\nMESSAGE=%s\n\n", $0
    }' "$src" | /lib/systemd/systemd-journal-remote --output="$jdir/bench.journal" - >&2
  echo "$entries" > "$jdir/.complete"
fi
agent_config "$WORK/journald.yaml" <<YAML
sources:
  journal:
    type: journald
    journal_directory: $jdir
    current_boot_only: false
    stop_at_end: true
sinks: { out: { type: blackhole, inputs: [journal] } }
YAML
bytes=$(journalctl -D "$jdir" -o export | wc -c)
# One run: "wall_s cpu_s peak_rss_kib peak_anon_kib". Peak RSS counts the
# journal files' mmap (page cache); RssAnon, sampled every 50 ms, is the
# process's own memory.
run_one() {
  local out="$WORK/time.jd"
  /usr/bin/time -o "$out" -f "%e %U %S %M" "$@" > /dev/null 2> "$WORK/stderr.jd" &
  local tpid=$! anon=0 a pid
  while kill -0 "$tpid" 2> /dev/null; do
    pid=$(pgrep -P "$tpid" | head -n 1 || true)
    if [ -n "$pid" ]; then
      a=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
      [ -n "$a" ] && [ "$a" -gt "$anon" ] && anon=$a
    fi
    sleep 0.05
  done
  wait "$tpid" || { echo "command failed: $*" >&2; tail -5 "$WORK/stderr.jd" >&2; }
  awk -v anon="$anon" '{ printf "%s %.2f %s %s\n", $1, $2 + $3, $4, anon }' "$out"
}
read -r limit_s limit_cpu limit_rss limit_anon <<< "$(median_run "$REPEAT" run_one journalctl -D "$jdir" -o export)"
# Each run starts without a checkpoint.
read -r t_s t_cpu t_rss t_anon <<< "$(median_run "$REPEAT" run_one bash -c "rm -rf '$WORK/data-journald'; exec '$BUILD/tributary' -c '$WORK/journald.yaml'")"
eps() { awk -v c="$entries" -v s="$1" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f k entries/s", c / s / 1e3 }'; }
row journald_blackhole "journald, $entries entries (journal_directory) → blackhole" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" \
  "$(eps "$t_s") ($t_s s wall, $t_cpu s CPU, RssAnon $(mib "$t_anon") MiB); journalctl -D DIR -o export > /dev/null: $(eps "$limit_s") ($limit_s s wall, $limit_cpu s CPU, RssAnon $(mib "$limit_anon") MiB); MB/s = export-format bytes; peak RSS includes the mmap of the journal files"
