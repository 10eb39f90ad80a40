# demo_logs → blackhole: event generation plus the pipeline, vs cat of the
# same number of bytes (what the generated lines would weigh in a file).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
count=2000000
agent_config "$WORK/demo.yaml" <<YAML
sources: { demo: { type: demo_logs, format: apache_common, interval: 0, count: $count } }
sinks: { out: { type: blackhole, inputs: [demo] } }
YAML
f=$(data_file apache "$SIZE")
# Bytes of $count demo lines ≈ count × average line (~90 bytes).
bytes=$((count * 90))
head -c "$bytes" "$f" > "$WORK/same-bytes.log"
read -r limit_s _ <<< "$(median_of "$REPEAT" bash -c "cat '$WORK/same-bytes.log' | wc -l")"
read -r t_s t_rss <<< "$(median_of "$REPEAT" "$BUILD/tributary" -c "$WORK/demo.yaml")"
row demo_logs_blackhole "demo_logs ($count events) → blackhole" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "$(awk -v c=$count -v s="$t_s" 'BEGIN{printf "%.2f M events/s", c/s/1e6}'); cat of the same bytes: $(mbps "$bytes" "$limit_s") MB/s"
