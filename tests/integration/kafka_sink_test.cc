// The `kafka` sink end to end: the tributary binary and mock_kafka run as
// separate processes; what reached the cluster is read back with kcat.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/compliance.h"
#include "tests/support/kafka_test_util.h"
#include "tests/support/mock_kafka_process.h"
#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

using test_support::MockKafka;
using namespace std::chrono_literals;

// "prefix-000042", then `pad` dots.
std::string Line(const std::string& prefix, int i, size_t pad = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%06d", prefix.c_str(), i);
  return buf + std::string(pad, '.');
}

std::string Lines(const std::string& prefix, int from, int to, size_t pad = 0) {
  std::string s;
  for (int i = from; i < to; ++i) s += Line(prefix, i, pad) + "\n";
  return s;
}

// Global settings and the source `in` (stdin unless given).
std::string Header(const TempDir& dir, const std::string& source = "{ type: stdin }") {
  return "data_dir: " + dir.path() + "/data\napi:\n  address: 127.0.0.1:0\nshutdown_timeout_secs: 30\n"
         "sources:\n  in: " + source + "\n";
}

// Header(dir) and a kafka sink `out` writing the `message` of each event
// (codec text) to the topic `logs`; `extra` is more YAML for the sink,
// indented by four spaces.
std::string TextSink(const TempDir& dir, const MockKafka& kafka, const std::string& extra = "") {
  return Header(dir) + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n    bootstrap_servers: \"" +
         kafka.bootstrap_servers() + "\"\n    topic: logs\n    encoding: { codec: text }\n" + extra;
}

double Metric(Agent& agent, const std::string& name, std::map<std::string, std::string> labels) {
  return agent.Metric(name, labels).value_or(-1);
}

double Sent(Agent& agent, const std::string& id = "out") {
  return Metric(agent, "tributary_component_sent_events_total", {{"component_id", id}});
}

// Values of the messages, with a failure for each one seen more than once.
std::multiset<std::string> Values(const std::vector<KafkaMessage>& messages) {
  std::multiset<std::string> v;
  for (const auto& m : messages) v.insert(m.value);
  return v;
}

void ExpectExactlyOnce(const std::vector<KafkaMessage>& messages, const std::string& prefix, int from, int to,
                       size_t pad = 0) {
  auto values = Values(messages);
  EXPECT_EQ(values.size(), static_cast<size_t>(to - from));
  int missing = 0, duplicated = 0;
  for (int i = from; i < to; ++i) {
    size_t n = values.count(Line(prefix, i, pad));
    missing += n == 0;
    duplicated += n > 1;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
}

// file → kafka sink: half the lines are in the file before the agent
// starts, half are appended while it runs.
TEST(KafkaSinkTest, EveryLineExactlyOnceInThePartitionOfItsKey) {
  MockKafka kafka(3, {{"logs", 4}});
  TempDir dir;
  const int n = 5000;
  const std::string log = dir / "app.log";
  WriteFile(log, Lines("line", 0, n / 2));
  Agent agent(dir,
              Header(dir, "{ type: file, include: [\"" + log + "\"] }") +
                  "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                  "    bootstrap_servers: \"" + kafka.bootstrap_servers() + "\"\n"
                  "    topic: logs\n    key_field: message\n    encoding: { codec: text }\n"
                  "    headers: { origin: source_type }\n");
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  AppendFile(log, Lines("line", n / 2, n));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == n; }, 30s)) << Sent(agent) << "\n" << agent.process().Stderr();
  std::string metrics = agent.Metrics();
  ExpectComponentMetrics(metrics, "out", "sink", "kafka");
  EXPECT_EQ(MetricValue(metrics, "tributary_component_sent_bytes_total", {{"component_id", "out"}}),
            2.0 * n * Line("line", 0).size());  // key and value
  agent.process().Signal(SIGTERM);
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();

  auto messages = ReadTopic(kafka.bootstrap_servers(), "logs");
  ExpectExactlyOnce(messages, "line", 0, n);
  std::set<int> partitions;
  int misplaced = 0;
  for (const auto& m : messages) {
    ASSERT_TRUE(m.key.has_value());
    EXPECT_EQ(*m.key, m.value);
    EXPECT_EQ(m.headers, "origin=file");
    misplaced += m.partition != ConsistentPartition(*m.key, 4);
    partitions.insert(m.partition);
  }
  EXPECT_EQ(misplaced, 0);
  EXPECT_EQ(partitions.size(), 4u);
}

TEST(KafkaSinkTest, EveryCompressionCodecRoundTrips) {
  MockKafka kafka(1);
  TempDir dir;
  const std::vector<std::string> codecs = {"none", "gzip", "snappy", "lz4", "zstd"};
  std::string config = Header(dir) + "sinks:\n";
  for (const auto& c : codecs)
    config += "  out_" + c + ":\n    type: kafka\n    inputs: [in]\n    bootstrap_servers: \"" +
              kafka.bootstrap_servers() + "\"\n    topic: \"codec-" + c + "\"\n    compression: " + c +
              "\n    encoding: { codec: text }\n";
  Agent agent(dir, config, {}, {}, /*pipe_stdin=*/true);
  const int n = 2000;
  agent.process().WriteStdin(Lines("compressible-compressible-compressible", 0, n));
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(60s), 0) << agent.process().Stderr();
  for (const auto& c : codecs) {
    SCOPED_TRACE(c);
    ExpectExactlyOnce(ReadTopic(kafka.bootstrap_servers(), "codec-" + c), "compressible-compressible-compressible",
                      0, n);
  }
}

// A memory buffer with when_full: block, a small producer queue, and every
// broker down for a while: the queue fills (backpressure reaches the
// buffer), nothing is dropped, and all of it arrives once the brokers are
// back.
TEST(KafkaSinkTest, BrokerOutageLosesNothing) {
  MockKafka kafka(1, {{"logs", 2}});
  TempDir dir;
  Agent agent(dir,
              Header(dir) + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                            "    bootstrap_servers: \"" + kafka.bootstrap_servers() + "\"\n"
                            "    topic: logs\n    key_field: message\n    encoding: { codec: text }\n"
                            "    librdkafka_options:\n"
                            "      queue.buffering.max.messages: \"100\"\n"
                            "      statistics.interval.ms: \"200\"\n"
                            "      reconnect.backoff.max.ms: \"500\"\n"
                            "      message.timeout.ms: \"1000\"\n"
                            "    retry_initial_backoff_ms: 50\n"
                            "    buffer: { type: memory, max_events: 200, when_full: block }\n",
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  const size_t pad = 100;
  const int n = 6000;
  agent.process().WriteStdin(Lines("outage", 0, 500, pad));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == 500; }, 30s)) << agent.process().Stderr();

  kafka.command_ok("broker_down -1");
  // More than the pipe holds: the writer blocks while the agent does.
  std::thread writer([&] { agent.process().WriteStdin(Lines("outage", 500, n, pad)); });
  // The producer queue is full, the buffer holds a batch, the source waits.
  bool filled = WaitFor(
      [&] {
        return Metric(agent, "tributary_kafka_queue_messages", {{"component_id", "out"}}) == 100 &&
               Metric(agent, "tributary_buffer_events", {{"component_id", "out"}}) > 0;
      },
      30s);
  EXPECT_TRUE(filled) << agent.Metrics();
  // Longer than message.timeout.ms: librdkafka gives the messages up, the
  // sink counts that and produces them again.
  EXPECT_TRUE(WaitFor([&] { return Metric(agent, "tributary_sink_retries_total", {{"component_id", "out"}}) >= 100; }))
      << agent.Metrics();
  EXPECT_GE(Metric(agent, "tributary_component_errors_total", {{"component_id", "out"}, {"error_type", "delivery_failed"}}),
            100);
  EXPECT_EQ(Sent(agent), 500);
  EXPECT_LT(Metric(agent, "tributary_component_received_events_total", {{"component_id", "in"}}), n);
  EXPECT_TRUE(agent.process().Running());

  kafka.command_ok("broker_up -1");
  writer.join();
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(60s), 0) << agent.process().Stderr();
  const auto messages = ReadTopic(kafka.bootstrap_servers(), "logs");
  ExpectExactlyOnce(messages, "outage", 0, n, pad);
  // A message produced again keeps its key (and so its partition): the key
  // was once read from librdkafka's copy, freed when the report returned.
  int wrong_key = 0;
  for (const auto& m : messages) wrong_key += !m.key.has_value() || *m.key != m.value;
  EXPECT_EQ(wrong_key, 0);
}

// A stop (here the old pipeline's, in a reload) during an outage gives up
// what the sink holds: librdkafka's queue and the memory buffer. Nothing
// said how much (the Elasticsearch sink logged its requests' count); now
// one line per sink does, and discarded_events_total counts it. The file
// source reads it again.
TEST(KafkaSinkTest, AStopDuringAnOutageCountsAndLogsWhatItGivesUp) {
  MockKafka kafka(1, {{"logs", 2}});
  kafka.command_ok("broker_down -1");
  TempDir dir;
  const int n = 2000;
  WriteFile(dir / "in.log", Lines("gone", 0, n));
  std::string config = Header(dir, "{ type: file, include: [\"" + (dir / "in.log") + "\"], read_from: beginning }") +
                       "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                       "    bootstrap_servers: \"" + kafka.bootstrap_servers() + "\"\n"
                       "    topic: logs\n    encoding: { codec: text }\n";
  config.replace(config.find("shutdown_timeout_secs: 30"), 25, "shutdown_timeout_secs: 1");
  Agent agent(dir, config);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  ASSERT_TRUE(WaitFor([&] { return Metric(agent, "tributary_component_received_events_total", {{"component_id", "in"}}) == n; }))
      << agent.Metrics();
  agent.process().Signal(SIGHUP);
  const std::string line = "WARN [out] gave up " + std::to_string(n) + " events at the stop (";
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("reloaded:") != std::string::npos; }))
      << agent.process().Stderr();
  const std::string err = agent.process().Stderr();
  const size_t at = err.find(line);
  ASSERT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.substr(err.find("): ", at) + 3, err.find('\n', at) - err.find("): ", at) - 3),
            "the file source `in` reads them again when the new pipeline starts")
      << err;
  EXPECT_EQ(Metric(agent, "tributary_component_discarded_events_total", {{"component_id", "out"}, {"intentional", "false"}}),
            n);
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(30s), 0) << "the file source reads them again" << agent.process().Stderr();
}

// The same with `acknowledgements: false`: the sink had acknowledged what
// librdkafka's queue held when it queued it, and the stop purged it without
// a word or a count. It is lost (the file source has moved past it): one
// ERROR line per stop says so, discarded_events_total counts it, and a
// shutdown that loses events exits 1.
TEST(KafkaSinkTest, WithoutAcknowledgementsAStopDuringAnOutageCountsAndLogsWhatItGivesUp) {
  MockKafka kafka(1, {{"logs", 2}});
  kafka.command_ok("broker_down -1");
  TempDir dir;
  const int n = 2000, more = 500;
  WriteFile(dir / "in.log", Lines("gone", 0, n));
  std::string config = Header(dir, "{ type: file, include: [\"" + (dir / "in.log") + "\"], read_from: beginning }") +
                       "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                       "    bootstrap_servers: \"" + kafka.bootstrap_servers() + "\"\n"
                       "    topic: logs\n    encoding: { codec: text }\n    acknowledgements: false\n";
  config.replace(config.find("shutdown_timeout_secs: 30"), 25, "shutdown_timeout_secs: 1");
  Agent agent(dir, config);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  auto taken = [&] { return Metric(agent, "tributary_component_received_events_total", {{"component_id", "out"}}); };
  ASSERT_TRUE(WaitFor([&] { return taken() == n; })) << agent.Metrics();
  const std::string fate =
      "they are lost: the sink acknowledged them to their sources when it queued them (acknowledgements: false), "
      "so no source reads them again";
  auto line = [&](int events) {
    return "ERROR [out] gave up " + std::to_string(events) + " events at the stop (0 taken for delivery, " +
           std::to_string(events) + " acknowledged before delivery): " + fate + "\n";
  };
  agent.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return agent.process().Stderr().find("reloaded:") != std::string::npos; }))
      << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find(line(n)), std::string::npos) << agent.process().Stderr();
  EXPECT_EQ(Metric(agent, "tributary_component_discarded_events_total", {{"component_id", "out"}, {"intentional", "false"}}),
            n);
  // The file source does not read them again: the new pipeline takes only
  // what is written next, and gives that up at the shutdown.
  AppendFile(dir / "in.log", Lines("more", 0, more));
  ASSERT_TRUE(WaitFor([&] { return taken() == n + more; })) << agent.Metrics();
  agent.process().Signal(SIGTERM);
  EXPECT_EQ(agent.process().Wait(30s), 1) << "events were lost" << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find(line(more)), std::string::npos) << agent.process().Stderr();
}

// tributary_sink_request_duration_seconds has one sample per batch that
// was produced. Batches refused before anything was sent (a topic template
// that fails for every event) were recorded as sub-millisecond requests.
TEST(KafkaSinkTest, RequestDurationHasASamplePerProducedBatchOnly) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  auto sink = [&](const std::string& id, const std::string& topic) {
    return "  " + id + ":\n    type: kafka\n    inputs: [in]\n    bootstrap_servers: \"" + kafka.bootstrap_servers() +
           "\"\n    topic: \"" + topic + "\"\n    encoding: { codec: text }\n";
  };
  Agent agent(dir, Header(dir, "{ type: stdin, max_batch_events: 100 }") + "sinks:\n" + sink("out", "logs") +
                       sink("bad", "t-{{ nosuch }}"),
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  const int n = 1000;
  agent.process().WriteStdin(Lines("d", 0, n));
  ASSERT_TRUE(WaitFor([&] {
    return Sent(agent, "out") == n &&
           Metric(agent, "tributary_component_errors_total", {{"component_id", "bad"}, {"error_type", "template_failed"}}) == n;
  })) << agent.Metrics();
  const double batches = Metric(agent, "tributary_sink_request_duration_seconds_count", {{"component_id", "out"}});
  EXPECT_GE(batches, 1);
  EXPECT_LT(batches, n / 2) << "one sample per batch, not per message";
  EXPECT_EQ(agent.Metric("tributary_sink_request_duration_seconds_count", {{"component_id", "bad"}}).value_or(0), 0)
      << agent.Metrics();
  agent.process().CloseStdin();
  EXPECT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();
}

// A disk buffer across an outage and a kill -9: while every broker is down
// the agent takes all input into its disk buffer (the source is not held
// back), is killed, and a new agent on the same data_dir delivers all of it
// once the brokers are back. Nothing reached Kafka during the outage, so
// every line arrives exactly once.
// Every broker is down for 20 s while lines keep arriving, and the agent is
// killed with -9 halfway through: the disk buffer keeps what it took in,
// nothing is sent (or dropped) during the outage, and once the brokers are
// back every line is in the topic exactly once.
TEST(KafkaSinkTest, DiskBufferKeepsEverythingThroughOutageAndKillNine) {
  MockKafka kafka(1, {{"logs", 2}});
  TempDir dir;
  const std::string config =
      TextSink(dir, kafka,
               "    librdkafka_options:\n"
               "      queue.buffering.max.messages: \"100\"\n"
               "      reconnect.backoff.max.ms: \"500\"\n"
               "    buffer: { type: disk, max_size: 64MiB, when_full: block, flush_interval_ms: 0 }\n");
  const int n = 5000;
  auto down_at = std::chrono::steady_clock::now();
  {
    Agent agent(dir, config, {}, {}, /*pipe_stdin=*/true);
    ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
    agent.process().WriteStdin(Lines("disk", 0, 500));
    ASSERT_TRUE(WaitFor([&] { return Sent(agent) == 500; }, 30s)) << agent.process().Stderr();
    // The buffer persists its ack position in its ledger shortly after an
    // ack; wait for that, or the kill -9 below would legitimately send those
    // 500 again. Ledger grammar (agent/disk_buffer.h): "TRBLEDG1"
    // version:fixed32 ack_segment:fixed64 ack_offset:fixed64
    // ack_event:fixed64 ..., little-endian.
    const std::string ledger = dir.path() + "/data/buffer/out/ledger";
    ASSERT_TRUE(WaitFor([&] {
      std::string l = ReadFile(ledger);
      if (l.size() < 36 || l.compare(0, 8, "TRBLEDG1") != 0) return false;
      uint64_t ack_event = 0;
      for (int i = 7; i >= 0; --i) ack_event = ack_event << 8 | static_cast<unsigned char>(l[28 + i]);
      return ack_event == 500;
    }));
    kafka.command_ok("broker_down -1");
    down_at = std::chrono::steady_clock::now();
    agent.process().WriteStdin(Lines("disk", 500, n));
    // All of it is taken in (on disk or in the producer), none delivered.
    ASSERT_TRUE(WaitFor(
        [&] {
          return Metric(agent, "tributary_component_received_events_total", {{"component_id", "in"}}) == n &&
                 Metric(agent, "tributary_buffer_events", {{"component_id", "out"}}) > 0;
        },
        30s))
        << agent.Metrics();
    // The first 10 s of the outage: nothing is sent, the process holds on.
    auto mid = down_at + 10s - std::chrono::steady_clock::now();
    EXPECT_FALSE(WaitFor([&] { return Sent(agent) != 500 || agent.process().Wait(0ms).has_value(); },
                         std::chrono::duration_cast<std::chrono::milliseconds>(mid)));
    agent.process().Signal(SIGKILL);
    ASSERT_TRUE(agent.process().Wait(10s).has_value());
  }
  Agent agent(dir, config, {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  agent.process().WriteStdin(Lines("disk", n, 2 * n));
  ASSERT_TRUE(WaitFor([&] {
    return Metric(agent, "tributary_component_received_events_total", {{"component_id", "in"}}) == n;
  }, 30s)) << agent.Metrics();
  // The rest of the 20 s: still nothing sent, nothing dropped.
  auto rest = down_at + 20s - std::chrono::steady_clock::now();
  EXPECT_FALSE(WaitFor([&] { return Sent(agent) > 0 || agent.process().Wait(0ms).has_value(); },
                       std::chrono::duration_cast<std::chrono::milliseconds>(rest)));
  EXPECT_GE(std::chrono::steady_clock::now() - down_at, 20s);
  kafka.command_ok("broker_up -1");
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == 2 * n - 500; }, 60s)) << agent.Metrics();
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();
  ExpectExactlyOnce(ReadTopic(kafka.bootstrap_servers(), "logs"), "disk", 0, 2 * n);
}

// TOPIC_AUTHORIZATION_FAILED answers and an oversized message are permanent:
// those events are rejected and counted with their reason, the rest is
// delivered exactly once, and the pipeline keeps going.
TEST(KafkaSinkTest, PermanentErrorsAreRejectedCountedAndThePipelineContinues) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  kafka.command_ok("push_errors Produce 1 TOPIC_AUTHORIZATION_FAILED");
  Agent agent(dir,
              TextSink(dir, kafka,
                       "    librdkafka_options:\n"
                       "      message.max.bytes: \"4000\"\n"
                       "      topic.metadata.refresh.interval.ms: \"500\"\n"),
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  auto rejected = [&](const std::string& type) {
    return Metric(agent, "tributary_component_errors_total", {{"component_id", "out"}, {"error_type", type}});
  };
  agent.process().WriteStdin(Lines("auth", 0, 1000));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) + rejected("topic_authorization_failed") == 1000; }, 30s))
      << agent.Metrics();
  EXPECT_GE(rejected("topic_authorization_failed"), 1);

  // librdkafka fails the topic locally until its next metadata refresh, so
  // the next lines may be refused too: write rounds until one gets through
  // whole. Every line is accounted for either way.
  auto refused = [&] { return rejected("topic_authorization_failed"); };
  int written = 1000, clean_rounds = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (clean_rounds == 0 && std::chrono::steady_clock::now() < deadline) {
    const double before = Sent(agent);
    agent.process().WriteStdin(Lines("auth", written, written + 10));
    written += 10;
    ASSERT_TRUE(WaitFor([&] { return Sent(agent) + refused() == written; }, 30s)) << agent.Metrics();
    clean_rounds += Sent(agent) - before == 10;
  }
  ASSERT_EQ(clean_rounds, 1);
  // An oversized line is refused locally; the lines after it go through.
  const double sent = Sent(agent);
  agent.process().WriteStdin(std::string(6000, 'x') + "\n" + Lines("auth", written, written + 500));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == sent + 500; }, 30s)) << agent.Metrics();
  written += 500;
  EXPECT_EQ(rejected("message_too_large"), 1);
  EXPECT_EQ(Metric(agent, "tributary_component_discarded_events_total",
                   {{"component_id", "out"}, {"intentional", "false"}}),
            refused() + 1);
  const double total_refused = refused();
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();

  auto values = Values(ReadTopic(kafka.bootstrap_servers(), "logs"));
  EXPECT_EQ(values.size(), written - total_refused);
  for (int i = written - 510; i < written; ++i) EXPECT_EQ(values.count(Line("auth", i)), 1u) << i;
  for (const auto& v : values) EXPECT_EQ(values.count(v), 1u) << v;
}

// A broker checks max.message.bytes against a whole record batch, and
// librdkafka fails every message of a refused batch with
// MSG_SIZE_TOO_LARGE. The messages are small: they were all rejected as
// too large. Now they are produced again one at a time and delivered.
TEST(KafkaSinkTest, ABatchTheBrokerRefusesAsTooLargeIsProducedAgainOneAtATime) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  kafka.command_ok("push_errors Produce 1 MSG_SIZE_TOO_LARGE");
  Agent agent(dir,
              TextSink(dir, kafka),
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  const int kCount = 200;
  agent.process().WriteStdin(Lines("big", 0, kCount));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == kCount; }, 30s)) << agent.Metrics() << agent.process().Stderr();
  EXPECT_EQ(Metric(agent, "tributary_component_errors_total", {{"component_id", "out"}, {"error_type", "message_too_large"}}),
            0);
  EXPECT_EQ(Metric(agent, "tributary_component_discarded_events_total",
                   {{"component_id", "out"}, {"intentional", "false"}}),
            0);
  EXPECT_GE(Metric(agent, "tributary_sink_retries_total", {{"component_id", "out"}}), 1);
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("producing them again one at a time"), std::string::npos)
      << agent.process().Stderr();
  ExpectExactlyOnce(ReadTopic(kafka.bootstrap_servers(), "logs"), "big", 0, kCount);
}

// librdkafka's produce call refuses a message over the producer's
// message.max.bytes with MSG_SIZE_TOO_LARGE, whose text is the broker's
// ("Broker: Message size too large"). The log says it was refused
// locally, with the message's size and the limit.
TEST(KafkaSinkTest, OversizedMessageIsSaidToBeRefusedLocallyWithItsSizeAndTheLimit) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  Agent agent(dir,
              TextSink(dir, kafka, "    librdkafka_options: { message.max.bytes: \"4000\" }\n"),
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  agent.process().WriteStdin(std::string(6000, 'x') + "\n" + Lines("small", 0, 10));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == 10; }, 30s)) << agent.Metrics();
  EXPECT_EQ(Metric(agent, "tributary_component_errors_total",
                   {{"component_id", "out"}, {"error_type", "message_too_large"}}),
            1);
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();
  const std::string log = agent.process().Stderr();
  EXPECT_NE(log.find("event rejected (message_too_large): refused locally by the producer, never sent to a broker: "
                     "the message is 6000 bytes (value 6000, key 0, plus the record overhead), over the producer's "
                     "message.max.bytes (4000)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("Broker: Message size too large"), std::string::npos) << log;
}

// OUT_OF_ORDER_SEQUENCE_NUMBER is fatal for librdkafka's idempotent
// producer: the sink rebuilds it and sends again what the old one held.
TEST(KafkaSinkTest, FatalProducerErrorRebuildsTheProducer) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  kafka.command_ok("push_errors Produce 1 OUT_OF_ORDER_SEQUENCE_NUMBER");
  Agent agent(dir,
              TextSink(dir, kafka),
              {}, {}, /*pipe_stdin=*/true);
  ASSERT_GT(agent.api_port(), 0) << agent.process().Stderr();
  agent.process().WriteStdin(Lines("fatal", 0, 1000));
  ASSERT_TRUE(WaitFor([&] { return Sent(agent) == 1000; }, 30s)) << agent.process().Stderr();
  EXPECT_GE(Metric(agent, "tributary_sink_retries_total", {{"component_id", "out"}}), 1);
  agent.process().CloseStdin();
  ASSERT_EQ(agent.process().Wait(30s), 0) << agent.process().Stderr();
  EXPECT_NE(agent.process().Stderr().find("rebuilding the producer"), std::string::npos);
  ExpectExactlyOnce(ReadTopic(kafka.bootstrap_servers(), "logs"), "fatal", 0, 1000);
}

// The docs' `acks: "1"` for speed: librdkafka refuses it with the
// idempotence the sink turns on by default, and it did so in the sink's
// thread once the pipeline ran; the sink was dead, stdin's lines were read
// into its buffer and lost with exit 0. Weaker acks now turn idempotence
// off unless it is asked for, and a combination librdkafka refuses fails
// the start (exit 78) before anything is read.
TEST(KafkaSinkTest, WeakerAcksWorkAndARefusedCombinationFailsTheStart) {
  MockKafka kafka(1, {{"logs", 1}});
  TempDir dir;
  auto config = [&](const std::string& options) {
    return Header(dir) + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                         "    bootstrap_servers: \"" + kafka.bootstrap_servers() + "\"\n    topic: logs\n"
                         "    encoding: { codec: text }\n    librdkafka_options: { " + options + " }\n";
  };
  WriteFile(dir / "fast.yaml", config("acks: \"1\""));
  Process fast({.argv = {TributaryBinary(), "-c", dir / "fast.yaml"}, .env = {}, .pipe_stdin = true});
  fast.WriteStdin(Lines("line", 0, 100));
  fast.CloseStdin();
  ASSERT_EQ(fast.Wait(30s), 0) << fast.Stderr();
  ExpectExactlyOnce(ReadTopic(kafka.bootstrap_servers(), "logs"), "line", 0, 100);

  WriteFile(dir / "both.yaml", config("acks: \"1\", enable.idempotence: \"true\""));
  Process both({.argv = {TributaryBinary(), "-c", dir / "both.yaml"}, .env = {}, .pipe_stdin = true});
  both.WriteStdin(Lines("more", 0, 100));
  both.CloseStdin();
  ASSERT_EQ(both.Wait(30s), 78) << both.Stderr();
  EXPECT_NE(both.Stderr().find("cannot create Kafka producer: `acks` must be set to `all` when `enable.idempotence` is true"),
            std::string::npos)
      << both.Stderr();
}

TEST(KafkaSinkTest, BadLibrdkafkaOptionIsAConfigError) {
  TempDir dir;
  std::string path = dir / "bad.yaml";
  WriteFile(path, Header(dir) + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                                "    bootstrap_servers: \"127.0.0.1:1\"\n    topic: logs\n"
                                "    librdkafka_options:\n      linger.ms: \"soon\"\n"
                                "      sasl.password: \"hunter2-secret\"\n      no.such.property: \"1\"\n");
  Process validate({.argv = {TributaryBinary(), "validate", "--no-environment", "-c", path}, .env = {}, .pipe_stdin = false});
  ASSERT_EQ(validate.Wait(20s), 78);
  std::string out = validate.Stdout() + validate.Stderr();
  EXPECT_NE(out.find("bad.yaml:"), std::string::npos) << out;
  EXPECT_NE(out.find("linger.ms"), std::string::npos) << out;
  EXPECT_NE(out.find("no.such.property"), std::string::npos) << out;
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
}

}  // namespace
}  // namespace tributary::testing
