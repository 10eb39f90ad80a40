# file → kafka sink (text encoding, the sink's durable defaults: idempotent,
# acks=all) against tests/support/mock_kafka on loopback, vs a raw librdkafka
# producer sending the same lines with the same settings to the same cluster
# (bench/kafka_raw_producer). Both wait for every delivery report: the raw
# producer exits after its last one, the agent run ends when its sink has
# counted every line as sent (acknowledged by the broker).
# The mock keeps ~5 MiB per partition and drops older data: fine for timing.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cmake --build "$BUILD" --target mock_kafka kafka_raw_producer >/dev/null
f=$(data_file apache "$SIZE")
bytes=$(stat -L -c %s "$f")
lines=$(wc -l < "$f")

mkfifo "$WORK/mock.in"
"$BUILD/tests/support/mock_kafka/mock_kafka" --brokers 1 < "$WORK/mock.in" > "$WORK/mock.out" 2> "$WORK/mock.err" &
mock=$!
exec 9> "$WORK/mock.in"   # the mock runs until this closes
trap 'exec 9>&-; wait $mock 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q BOOTSTRAP "$WORK/mock.out" 2>/dev/null && break; sleep 0.1; done
bootstrap=$(awk '/BOOTSTRAP/ {print $2}' "$WORK/mock.out")

# Same topics for every repetition: appending is fine, only time matters.
agent_config "$WORK/kafka.yaml" <<YAML
sources: { in: { type: file, include: ["$f"] } }
sinks:
  out:
    type: kafka
    inputs: [in]
    bootstrap_servers: "$bootstrap"
    topic: tributary
    encoding: { codec: text }
YAML
read -r raw_s raw_rss <<< "$(median_of "$REPEAT" "$BUILD/bench/kafka_raw_producer" "$bootstrap" raw "$f")"
read -r t_s t_rss t_cpu <<< "$(median_run "$REPEAT" run_until_sent "$WORK/kafka.yaml" out "$lines")"
row kafka_sink "file → kafka (mock_kafka, 1 broker, acks=all, idempotent), $(basename "$f")" "$(mbps "$bytes" "$t_s")" \
  "$(ratio "$raw_s" "$t_s")" "$(mib "$t_rss")" \
  "raw librdkafka producer, same lines and settings: $(mbps "$bytes" "$raw_s") MB/s, $(mib "$raw_rss") MiB; $(awk -v l="$lines" -v s="$t_s" 'BEGIN{printf "%.2f M msgs/s", l/s/1e6}')"
