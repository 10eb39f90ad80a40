# stdin → disk buffer → blackhole vs `dd conv=fsync` of the bytes the buffer
# wrote, on the same disk (WORK). The agent reads the file, splits lines,
# encodes batches into checksummed records, fsyncs (every 500 ms, or every
# batch), reads them back, decodes them and acks; dd only writes zeros and
# fsyncs once. Bytes written are taken from the agent's rusage (%O blocks).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
f=$(data_file apache "$SIZE")
bytes=$(stat -L -c %s "$f")
for flush in 500 0; do
  agent_config "$WORK/disk-$flush.yaml" <<YAML
sources: { in: { type: stdin } }
sinks:
  out:
    type: blackhole
    inputs: [in]
    buffer: { type: disk, max_size: 1073741824, flush_interval_ms: $flush }
YAML
  runs=()
  for _ in $(seq "$REPEAT"); do
    rm -rf "$WORK/data-disk-$flush"
    /usr/bin/time -o "$WORK/t" -f "%e %M %O" "$BUILD/tributary" -c "$WORK/disk-$flush.yaml" < "$f" > /dev/null 2> "$WORK/stderr.last"
    runs+=("$(tail -n 1 "$WORK/t")")
  done
  read -r t_s t_rss t_blocks <<< "$(printf '%s\n' "${runs[@]}" | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}')"
  written=$((t_blocks * 512))
  mb=$(( (written + 1048575) / 1048576 ))
  read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "dd if=/dev/zero of='$WORK/dd.out' bs=1M count=$mb conv=fsync status=none; rm -f '$WORK/dd.out'")"
  row "disk_buffer (flush ${flush} ms)" "stdin → disk buffer → blackhole, $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
    "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" \
    "buffer wrote $mb MiB; dd bs=1M count=$mb conv=fsync: $(mbps "$written" "$limit_s") MB/s, $(printf %.2f "$limit_s") s vs $(printf %.2f "$t_s") s"
done
