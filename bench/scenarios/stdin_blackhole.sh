# stdin → blackhole vs `cat FILE | wc -l` (reading and splitting lines).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
f=$(data_file apache "$SIZE")
bytes=$(stat -L -c %s "$f")
agent_config "$WORK/stdin.yaml" <<'YAML'
sources: { in: { type: stdin } }
sinks: { out: { type: blackhole, inputs: [in] } }
YAML
read -r limit_s limit_rss <<< "$(median_of "$REPEAT" bash -c "cat '$f' | wc -l")"
read -r t_s t_rss <<< "$(median_of "$REPEAT" bash -c "'$BUILD/tributary' -c '$WORK/stdin.yaml' < '$f'")"
row stdin_blackhole "stdin → blackhole, $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" "cat FILE \| wc -l: $(mbps "$bytes" "$limit_s") MB/s"
