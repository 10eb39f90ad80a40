// The kafka sink's and source's configuration and error handling, without a
// cluster (the end-to-end behaviour is in tests/integration/kafka_*_test.cc).

#include "sinks/kafka_sink.h"

#include <gtest/gtest.h>

#include "agent/kafka_client.h"
#include "config/config.h"
#include "sources/kafka_source.h"
#include "tests/support/test_util.h"

namespace tributary {
namespace {

std::optional<config::Config> Load(const std::string& yaml, config::Diagnostics* diag) {
  return config::LoadConfigFromStrings({{"t.yaml", "data_dir: /tmp/x\n" + yaml}}, diag);
}

// Only types this test links are registered in unit_tests: kafka on both ends.
const std::string kSource =
    "sources:\n  in:\n    type: kafka\n    bootstrap_servers: k:9092\n    group_id: g\n    topics: [a]\n";
const std::string kSink = "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n    bootstrap_servers: k:9092\n"
                          "    topic: b\n";

TEST(KafkaSinkConfigTest, MinimalConfigGetsDurableDefaults) {
  config::Diagnostics diag;
  auto cfg = Load(kSource + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n"
                            "    bootstrap_servers: \"k:9092\"\n    topic: \"logs-{{ service }}\"\n", &diag);
  ASSERT_TRUE(cfg) << diag.ToString();
  const auto& c = cfg->Find("out")->As<KafkaSink::Config>();
  EXPECT_EQ(c.compression, "none");
  EXPECT_TRUE(c.acknowledgements);
  auto conf = kafka::MakeConf(KafkaSink::DefaultOptions(c), {{"linger.ms", "20"}, {"acks", "1"}});
  ASSERT_TRUE(conf.ok());
  char buf[256];
  size_t n = sizeof buf;
  ASSERT_EQ(rd_kafka_conf_get(conf->get(), "enable.idempotence", buf, &n), RD_KAFKA_CONF_OK);
  EXPECT_STREQ(buf, "true");
  n = sizeof buf;
  ASSERT_EQ(rd_kafka_conf_get(conf->get(), "queue.buffering.max.ms", buf, &n), RD_KAFKA_CONF_OK);
  EXPECT_STREQ(buf, "20");  // the user's setting wins
}

TEST(KafkaSinkConfigTest, ProblemsAreReportedWithTheirLocation) {
  config::Diagnostics diag;
  auto cfg = Load(kSource + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n    topic: \"logs-{{ \"\n"
                            "    compression: brotli\n    librdkafka_options:\n      linger.ms: soon\n"
                            "      ssl.key.password: \"\"\n", &diag);
  EXPECT_FALSE(cfg);
  std::string text = diag.ToString();
  EXPECT_NE(text.find("bootstrap_servers"), std::string::npos) << text;
  EXPECT_NE(text.find("t.yaml:13:18: error: `sinks.out.compression`"), std::string::npos) << text;
  EXPECT_NE(text.find("`linger.ms`"), std::string::npos) << text;
  EXPECT_NE(text.find("sinks.out.topic"), std::string::npos) << text;
}

// `topic: 'logs/app'` was accepted, and every event was then rejected as
// `unknown_topic`: the text of a topic (around its {{ fields }}) is checked
// as Kafka checks names.
TEST(KafkaSinkConfigTest, ATopicNameKafkaRefusesIsAnError) {
  auto topic_problem = [](const std::string& topic) {
    config::Diagnostics diag;
    auto cfg = Load(kSource + "sinks:\n  out:\n    type: kafka\n    inputs: [in]\n    bootstrap_servers: k:9092\n"
                              "    topic: '" + topic + "'\n", &diag);
    return cfg ? std::string() : diag.ToString();
  };
  EXPECT_NE(topic_problem("logs/app").find("Kafka topic names hold only letters, digits, `.`, `_` and `-` (not `/`)"),
            std::string::npos)
      << topic_problem("logs/app");
  EXPECT_NE(topic_problem("logs app").find("(not ` `)"), std::string::npos);
  EXPECT_NE(topic_problem("logs-{{ service }}/x").find("(not `/`)"), std::string::npos);
  EXPECT_NE(topic_problem(std::string(250, 'a')).find("at most 249 characters"), std::string::npos);
  EXPECT_NE(topic_problem("..").find("may not be"), std::string::npos);
  for (const std::string& ok : std::vector<std::string>{"logs-app", "Logs_App.v2", std::string(249, 'a'), "logs-{{ service }}",
                               "logs-%Y.%m"})
    EXPECT_EQ(topic_problem(ok), "") << ok;
}

TEST(KafkaClientTest, SecretOptionsAreRecognisedAndNeverEchoed) {
  for (const char* k : {"sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret",
                        "ssl.key.pem", "sasl.oauthbearer.config"})
    EXPECT_TRUE(kafka::IsSecretOption(k)) << k;
  for (const char* k : {"linger.ms", "sasl.username", "ssl.ca.location", "bootstrap.servers"})
    EXPECT_FALSE(kafka::IsSecretOption(k)) << k;
  std::string p;
  EXPECT_EQ(kafka::CheckOptions({{"linger.ms", "20"}, {"sasl.password", "x"}}), "");
  p = kafka::CheckOptions({{"ssl.keystore.password.bogus", "hunter2"}});
  EXPECT_NE(p.find("ssl.keystore.password.bogus"), std::string::npos) << p;
  EXPECT_EQ(p.find("hunter2"), std::string::npos) << p;
}

TEST(KafkaSinkTest, PermanentErrorsAreClassified) {
  EXPECT_STREQ(KafkaSink::PermanentErrorType(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
               "topic_authorization_failed");
  EXPECT_STREQ(KafkaSink::PermanentErrorType(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), "message_too_large");
  EXPECT_STREQ(KafkaSink::PermanentErrorType(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC), "unknown_topic");
  EXPECT_STREQ(KafkaSink::PermanentErrorType(RD_KAFKA_RESP_ERR_INVALID_RECORD), "invalid_message");
  for (auto err : {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                   RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                   RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION})
    EXPECT_STREQ(KafkaSink::PermanentErrorType(err), "") << rd_kafka_err2name(err);
}

TEST(KafkaStatsTest, StatisticsFeedGauges) {
  Metrics metrics;
  auto cm = metrics.ForComponent("out", ComponentKind::kSink, "kafka");
  kafka::StatsMetrics stats(cm.get());
  stats.PartitionAssigned("logs", 0);
  EXPECT_FALSE(stats.Update("{not json"));
  ASSERT_TRUE(stats.Update(R"({"name":"p","msg_cnt":42,"msg_size":4200,
      "brokers":{"b:1/bootstrap":{"nodeid":-1,"rtt":{"avg":0}},"b:1/1":{"nodeid":1,"rtt":{"avg":2500}}},
      "topics":{"logs":{"partitions":{"0":{"consumer_lag":7},"-1":{"consumer_lag":-1}}}}})"));
  std::string text = metrics.Serialize();
  EXPECT_NE(text.find("tributary_kafka_queue_messages{component_id=\"out\",component_kind=\"sink\",component_type=\"kafka\"} 42"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tributary_kafka_broker_rtt_seconds{broker=\"b:1/1\""), std::string::npos) << text;
  EXPECT_EQ(text.find("b:1/bootstrap"), std::string::npos);
  EXPECT_NE(text.find("partition=\"0\",topic=\"logs\"} 7"), std::string::npos) << text;
}

// A consumer's lag series are those of the partitions it holds: librdkafka's
// statistics go on listing a revoked partition with its last lag.
TEST(KafkaStatsTest, LagIsReportedForAssignedPartitionsOnly) {
  Metrics metrics;
  auto cm = metrics.ForComponent("in", ComponentKind::kSource, "kafka");
  kafka::StatsMetrics stats(cm.get());
  const std::string doc = R"({"topics":{"logs":{"partitions":{"0":{"consumer_lag":7},"1":{"consumer_lag":9}}}}})";
  auto lag = [&](const char* partition) {
    return testing::MetricValue(metrics.Serialize(), "tributary_kafka_consumer_lag_messages",
                                {{"component_id", "in"}, {"topic", "logs"}, {"partition", partition}});
  };
  stats.PartitionAssigned("logs", 0);
  stats.PartitionAssigned("logs", 1);
  ASSERT_TRUE(stats.Update(doc));
  EXPECT_EQ(lag("0"), 7);
  EXPECT_EQ(lag("1"), 9);
  stats.PartitionRevoked("logs", 1);
  EXPECT_EQ(lag("0"), 7);
  EXPECT_EQ(lag("1"), std::nullopt) << metrics.Serialize();
  ASSERT_TRUE(stats.Update(doc));  // still listed by the statistics
  EXPECT_EQ(lag("1"), std::nullopt) << metrics.Serialize();
  stats.PartitionAssigned("logs", 1);  // back after another rebalance
  ASSERT_TRUE(stats.Update(doc));
  EXPECT_EQ(lag("1"), 9);
  stats.PartitionRevoked("logs", 0);
  stats.PartitionRevoked("logs", 1);
  EXPECT_EQ(metrics.Serialize().find("tributary_kafka_consumer_lag_messages{"), std::string::npos)
      << metrics.Serialize();
}

// librdkafka reports a lag of -1 while it knows no position (nothing
// consumed, nothing committed): such partitions had no series, so a group
// on a topic with empty partitions showed only some of the partitions it
// holds. An empty partition (log start = end) is 0 behind wherever the
// member starts; a partition with messages waits until the lag is known.
// The broker "GroupCoordinator" (a logical handle on one of the brokers) is
// not a broker of its own.
TEST(KafkaStatsTest, AnEmptyPartitionWithoutAPositionIsZeroBehind) {
  Metrics metrics;
  auto cm = metrics.ForComponent("in", ComponentKind::kSource, "kafka");
  kafka::StatsMetrics stats(cm.get());
  for (int p = 0; p < 4; ++p) stats.PartitionAssigned("logs", p);
  ASSERT_TRUE(stats.Update(R"({"brokers":{
      "127.0.0.1:9092/1":{"nodeid":1,"source":"learned","rtt":{"avg":2500}},
      "GroupCoordinator":{"nodeid":1,"source":"logical","rtt":{"avg":2600}}},
      "topics":{"logs":{"partitions":{
      "0":{"consumer_lag":3,"lo_offset":0,"hi_offset":10},
      "1":{"consumer_lag":-1,"lo_offset":0,"hi_offset":0},
      "2":{"consumer_lag":-1,"lo_offset":5,"hi_offset":5},
      "3":{"consumer_lag":-1,"lo_offset":0,"hi_offset":50}}}}})"));
  auto lag = [&](const char* partition) {
    return testing::MetricValue(metrics.Serialize(), "tributary_kafka_consumer_lag_messages",
                                {{"component_id", "in"}, {"topic", "logs"}, {"partition", partition}});
  };
  EXPECT_EQ(lag("0"), 3);
  EXPECT_EQ(lag("1"), 0) << metrics.Serialize();
  EXPECT_EQ(lag("2"), 0) << metrics.Serialize();
  EXPECT_EQ(lag("3"), std::nullopt) << metrics.Serialize();
  const std::string text = metrics.Serialize();
  EXPECT_NE(text.find("broker=\"127.0.0.1:9092/1\""), std::string::npos) << text;
  EXPECT_EQ(text.find("GroupCoordinator"), std::string::npos) << text;
}

TEST(KafkaSourceConfigTest, RequiresGroupAndTopicsAndDisablesAutoCommit) {
  config::Diagnostics diag;
  auto cfg = Load("sources:\n  in:\n    type: kafka\n    bootstrap_servers: k:9092\n    topics: []\n" + kSink,
                  &diag);
  EXPECT_FALSE(cfg);
  EXPECT_NE(diag.ToString().find("group_id"), std::string::npos) << diag.ToString();
  EXPECT_NE(diag.ToString().find("at least one topic"), std::string::npos) << diag.ToString();

  config::Diagnostics ok;
  cfg = Load("sources:\n  in:\n    type: kafka\n    bootstrap_servers: k:9092\n    group_id: g\n"
             "    topics: [logs, \"^app-.*\"]\n    decoding: { codec: json }\n" + kSink,
             &ok);
  ASSERT_TRUE(cfg) << ok.ToString();
  auto defaults = KafkaSource::DefaultOptions(cfg->Find("in")->As<KafkaSource::Config>());
  std::map<std::string, std::string> m(defaults.begin(), defaults.end());
  EXPECT_EQ(m["enable.auto.commit"], "false");
  EXPECT_EQ(m["enable.auto.offset.store"], "false");
  EXPECT_EQ(m["auto.offset.reset"], "latest");
  // A pattern (`^app-.*`) finds new topics at the metadata refresh: 30 s,
  // not librdkafka's 300 s, in which a new topic's messages are skipped
  // under `latest`. Names only: librdkafka's default is kept.
  EXPECT_EQ(m["topic.metadata.refresh.interval.ms"], "30000");
  config::Diagnostics names_only;
  cfg = Load("sources:\n  in:\n    type: kafka\n    bootstrap_servers: k:9092\n    group_id: g\n"
             "    topics: [logs]\n" + kSink,
             &names_only);
  ASSERT_TRUE(cfg) << names_only.ToString();
  defaults = KafkaSource::DefaultOptions(cfg->Find("in")->As<KafkaSource::Config>());
  const std::map<std::string, std::string> names(defaults.begin(), defaults.end());
  EXPECT_EQ(names.count("topic.metadata.refresh.interval.ms"), 0u);
}

}  // namespace
}  // namespace tributary
