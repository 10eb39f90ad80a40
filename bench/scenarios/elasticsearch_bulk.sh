# file → elasticsearch against es_bulk_server, vs curl posting the same
# bulk bodies (pre-built, 1000 documents each, 4 in parallel on keep-alive
# connections) to the same server in the same run. The limit is what the
# server takes from a client that does nothing but send; the ratio is how
# close the sink (encoding, batching, response parsing, acknowledgements)
# gets to it. Documents are the events as the sink encodes them (made by
# the agent's own json encoder), so the bodies have the same size.
#
# ES_SIZE (default 200M) sets the input size; the server keeps only ids
# (--no-sources) and forgets everything between runs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
server="$BUILD/tests/support/es_bulk_server/es_bulk_server"
[ -x "$server" ] || cmake --build "$BUILD" --parallel 2 --target es_bulk_server >/dev/null
f=$(data_file apache "${ES_SIZE:-200M}")
bytes=$(stat -L -c %s "$f")
lines=$(wc -l < "$f")

"$server" --port 0 --no-sources --ignore-stdin > "$WORK/es.out" 2> "$WORK/es.err" &
es_pid=$!
trap 'kill $es_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q LISTENING "$WORK/es.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/LISTENING/ {print $2}' "$WORK/es.out")
url="http://127.0.0.1:$port"

# The documents, encoded by tributary's json encoder, then 1000 per body.
agent_config "$WORK/docs.yaml" <<YAML
sources: { in: { type: file, include: ["$f"] } }
sinks: { out: { type: file, inputs: [in], path: "$WORK/docs.ndjson" } }
YAML
run_until_sent "$WORK/docs.yaml" out "$lines" > /dev/null
mkdir -p "$WORK/bodies"
awk -v dir="$WORK/bodies" '
  (NR - 1) % 1000 == 0 { if (out) close(out); out = sprintf("%s/%06d", dir, ++n) }
  { print "{\"index\":{\"_index\":\"bench\"}}" > out; print > out }' "$WORK/docs.ndjson"
rm -f "$WORK/docs.ndjson"
# One curl entry per body, the same request line and headers as the sink's.
target="$url/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"
first=1
for b in "$WORK"/bodies/*; do
  [ "$first" = 1 ] || echo next
  first=0
  printf 'url = "%s"\nheader = "Content-Type: application/x-ndjson"\ndata-binary = "@%s"\noutput = "/dev/null"\n' \
    "$target" "$b"
done > "$WORK/curl.cfg"
reset="curl -s -o /dev/null -X DELETE '$url/_test/docs'"
read -r limit_s limit_rss <<< "$(median_of "$REPEAT" bash -c "$reset; curl -s -S -Z --parallel-max 4 -K '$WORK/curl.cfg'")"
raw_docs=$(curl -s "$url/bench/_count" | sed 's/.*"count":\([0-9]*\).*/\1/')

agent_config "$WORK/es.yaml" <<YAML
sources: { in: { type: file, include: ["$f"] } }
sinks:
  es:
    type: elasticsearch
    inputs: [in]
    endpoints: ["$url"]
    bulk: { index: bench }
    batch: { max_events: 1000 }
    request: { concurrency: 4 }
YAML
es_run() { eval "$reset"; run_until_sent "$WORK/es.yaml" es "$lines"; }
read -r t_s t_rss t_cpu <<< "$(median_run "$REPEAT" es_run)"
docs=$(curl -s "$url/bench/_count" | sed 's/.*"count":\([0-9]*\).*/\1/')
[ "$docs" = "$lines" ] || echo "elasticsearch_bulk: tributary left $docs documents for $lines lines" >&2
[ "$raw_docs" = "$lines" ] || echo "elasticsearch_bulk: curl left $raw_docs documents for $lines lines" >&2
row elasticsearch_bulk "file → elasticsearch (es_bulk_server), $(basename "$f"), $lines docs" \
  "$(mbps "$bytes" "$t_s")" "$(ratio "$limit_s" "$t_s")" "$(mib "$t_rss")" \
  "curl -Z posting the same bulk bodies (4 parallel): $(mbps "$bytes" "$limit_s") MB/s of log lines; tributary CPU s: $t_cpu"
