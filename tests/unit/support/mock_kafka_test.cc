// Tests of tests/support/mock_kafka through the MockKafka helper, with real
// librdkafka producers and consumers talking the Kafka protocol to it.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/mock_kafka_process.h"

namespace tributary::test_support {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct ProducerDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Producer = std::unique_ptr<rd_kafka_t, ProducerDeleter>;

struct ConsumerDeleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using Consumer = std::unique_ptr<rd_kafka_t, ConsumerDeleter>;

// One delivery report, as seen by the producer's dr_msg_cb.
struct Delivery {
  rd_kafka_resp_err_t err;
  int32_t partition;
  std::string key;
  std::string payload;
};
using Deliveries = std::vector<Delivery>;

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* deliveries = static_cast<Deliveries*>(opaque);
  deliveries->push_back(
      {msg->err, msg->partition,
       std::string(static_cast<const char*>(msg->key), msg->key_len),
       std::string(static_cast<const char*>(msg->payload), msg->len)});
}

rd_kafka_conf_t* make_conf(
    std::initializer_list<std::pair<const char*, std::string>> settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf, name, value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string(name) + ": " + errstr);
    }
  }
  return conf;
}

// `deliveries` must outlive the producer: its delivery reports land there
// from rd_kafka_poll()/rd_kafka_flush() on the calling thread.
Producer make_producer(
    const MockKafka& kafka, Deliveries* deliveries,
    std::initializer_list<std::pair<const char*, std::string>> settings = {}) {
  rd_kafka_conf_t* conf = make_conf(settings);
  char errstr[512];
  if (rd_kafka_conf_set(conf, "bootstrap.servers",
                        kafka.bootstrap_servers().c_str(), errstr,
                        sizeof errstr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(errstr);
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, deliveries);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(errstr);
  }
  return Producer(rk);
}

rd_kafka_resp_err_t produce(rd_kafka_t* rk, const std::string& topic,
                            const std::string& key,
                            const std::string& payload) {
  return rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(topic.c_str()),
      RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(payload.data()), payload.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

// Serves the producer's callbacks until `count` delivery reports arrived or
// `timeout` passed; returns whether they all arrived.
bool wait_for_deliveries(rd_kafka_t* rk, const Deliveries& deliveries,
                         size_t count, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (deliveries.size() < count && Clock::now() < deadline) {
    rd_kafka_poll(rk, 50);
  }
  return deliveries.size() >= count;
}

// Produces one message and returns its delivery report's error.
rd_kafka_resp_err_t produce_and_wait(rd_kafka_t* rk, Deliveries& deliveries,
                                     const std::string& topic,
                                     const std::string& payload,
                                     milliseconds timeout) {
  size_t before = deliveries.size();
  rd_kafka_resp_err_t err = produce(rk, topic, payload, payload);
  if (err) return err;
  if (!wait_for_deliveries(rk, deliveries, before + 1, timeout)) {
    throw std::runtime_error("no delivery report for " + payload + " within " +
                             std::to_string(timeout.count()) + " ms");
  }
  return deliveries.back().err;
}

int partition_count(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, handle, &metadata, 5000);
  rd_kafka_topic_destroy(handle);
  if (err) return -1;
  int count = -1;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == 0) {
    count = metadata->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(metadata);
  return count;
}

TEST(MockKafkaTest, ThousandKeyedMessagesComeBackFromThreePartitions) {
  const std::string topic = "roundtrip";
  MockKafka kafka(3, {{topic, 3}});
  ASSERT_EQ(std::count(kafka.bootstrap_servers().begin(),
                       kafka.bootstrap_servers().end(), ','),
            2)
      << kafka.bootstrap_servers();

  constexpr int kMessages = 1000;
  Deliveries deliveries;
  Producer producer = make_producer(kafka, &deliveries, {{"linger.ms", "5"}});
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(produce(producer.get(), topic, "key-" + std::to_string(i),
                      "payload-" + std::to_string(i)),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(producer.get(), 15000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(deliveries.size(), static_cast<size_t>(kMessages));
  std::map<std::string, int32_t> partition_of_key;
  for (const Delivery& d : deliveries) {
    ASSERT_EQ(d.err, RD_KAFKA_RESP_ERR_NO_ERROR) << d.key;
    partition_of_key[d.key] = d.partition;
  }
  std::set<int32_t> partitions_used;
  for (const auto& [key, partition] : partition_of_key) {
    partitions_used.insert(partition);
  }
  EXPECT_EQ(partitions_used, (std::set<int32_t>{0, 1, 2}));

  rd_kafka_conf_t* conf =
      make_conf({{"bootstrap.servers", kafka.bootstrap_servers()},
                 {"group.id", "mock-kafka-test"},
                 {"enable.auto.commit", "false"}});
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  ASSERT_NE(rk, nullptr) << errstr;
  Consumer consumer(rk);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* assignment =
      rd_kafka_topic_partition_list_new(3);
  for (int32_t p = 0; p < 3; ++p) {
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t assign_err = rd_kafka_assign(rk, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  ASSERT_EQ(assign_err, RD_KAFKA_RESP_ERR_NO_ERROR);

  std::map<std::string, std::string> consumed;  // key -> payload
  int duplicates = 0;
  const Clock::time_point deadline = Clock::now() + seconds(15);
  while (consumed.size() < static_cast<size_t>(kMessages) &&
         Clock::now() < deadline) {
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk, 100);
    if (msg == nullptr) continue;
    if (msg->err) {
      ADD_FAILURE() << "consumer error: " << rd_kafka_message_errstr(msg);
    } else {
      std::string key(static_cast<const char*>(msg->key), msg->key_len);
      std::string payload(static_cast<const char*>(msg->payload), msg->len);
      EXPECT_EQ(partition_of_key[key], msg->partition) << key;
      if (!consumed.emplace(key, payload).second) ++duplicates;
    }
    rd_kafka_message_destroy(msg);
  }
  ASSERT_EQ(consumed.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(duplicates, 0);
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(consumed["key-" + std::to_string(i)],
              "payload-" + std::to_string(i));
  }
}

TEST(MockKafkaTest, BrokerDownFailsDeliveryAndBrokerUpRestoresIt) {
  const std::string topic = "outage";
  MockKafka kafka(1, {{topic, 1}});
  Deliveries deliveries;
  // Short timeouts so the outage shows within seconds; a short reconnect
  // backoff so the producer comes back soon after the broker does.
  Producer producer = make_producer(kafka, &deliveries,
                                    {{"message.timeout.ms", "2000"},
                                     {"reconnect.backoff.ms", "50"},
                                     {"reconnect.backoff.max.ms", "200"}});

  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, topic, "before",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_NO_ERROR);

  EXPECT_EQ(kafka.command("broker_down 1"), "OK broker 1 down");
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, topic, "during",
                             seconds(10)),
            RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);

  EXPECT_EQ(kafka.command("broker_up 1"), "OK broker 1 up");
  EXPECT_EQ(
      produce_and_wait(producer.get(), deliveries, topic, "after", seconds(10)),
      RD_KAFKA_RESP_ERR_NO_ERROR);
}

TEST(MockKafkaTest, PushedProduceErrorReachesTheDeliveryReport) {
  MockKafka kafka(3, {{"denied", 1}, {"other", 1}});
  Deliveries deliveries;
  Producer producer = make_producer(kafka, &deliveries);

  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "denied", "first",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(kafka.command("push_errors Produce 1 TOPIC_AUTHORIZATION_FAILED"),
            "OK pushed 1 TOPIC_AUTHORIZATION_FAILED(29) onto Produce(0)");
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "denied", "second",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  // One request used the pushed error up. (librdkafka itself keeps failing
  // "denied" until its next metadata refresh, so try another topic.)
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "other", "third",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_NO_ERROR);
}

TEST(MockKafkaTest, EachPushedErrorFailsOneRequest) {
  MockKafka kafka(3, {{"flaky", 1}});
  Deliveries deliveries;
  // One retry: two retriable errors in a row fail the message, one does not.
  Producer producer = make_producer(
      kafka, &deliveries,
      {{"message.send.max.retries", "1"}, {"retry.backoff.ms", "20"}});

  EXPECT_EQ(kafka.command("push_errors Produce 2 NOT_ENOUGH_REPLICAS"),
            "OK pushed 2 NOT_ENOUGH_REPLICAS(19) onto Produce(0)");
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "flaky", "twice",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);

  EXPECT_EQ(kafka.command("push_errors Produce 1 NOT_ENOUGH_REPLICAS"),
            "OK pushed 1 NOT_ENOUGH_REPLICAS(19) onto Produce(0)");
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "flaky", "once",
                             seconds(10)),
            RD_KAFKA_RESP_ERR_NO_ERROR);
}

TEST(MockKafkaTest, CreatesTopicsOnCommandAndAutomatically) {
  MockKafka kafka(2);
  EXPECT_EQ(kafka.command("create_topic five 5"), "OK topic five 5 partitions");
  EXPECT_TRUE(kafka.command("create_topic five 5").starts_with("ERR "));

  Deliveries deliveries;
  Producer producer = make_producer(kafka, &deliveries);
  EXPECT_EQ(partition_count(producer.get(), "five"), 5);
  EXPECT_EQ(produce_and_wait(producer.get(), deliveries, "never-created",
                             "hello", seconds(10)),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_GT(partition_count(producer.get(), "never-created"), 0);
}

TEST(MockKafkaTest, AnswersEveryCommandWithOneLine) {
  MockKafka kafka(3);
  EXPECT_EQ(kafka.command("ping"), "OK pong");
  EXPECT_EQ(kafka.command("rtt 2 25"), "OK broker 2 rtt 25 ms");
  EXPECT_EQ(kafka.command("rtt -1 0"), "OK broker -1 rtt 0 ms");
  EXPECT_EQ(kafka.command("push_errors Fetch 2 NOT_LEADER_FOR_PARTITION"),
            "OK pushed 2 NOT_LEADER_FOR_PARTITION(6) onto Fetch(1)");
  EXPECT_EQ(kafka.command("push_errors offsetcommit 1 request_timed_out"),
            "OK pushed 1 REQUEST_TIMED_OUT(7) onto OffsetCommit(8)");
  EXPECT_EQ(kafka.command("push_errors 3 1 10"),
            "OK pushed 1 MSG_SIZE_TOO_LARGE(10) onto Metadata(3)");
  EXPECT_EQ(kafka.command("clear_errors Fetch"), "OK cleared Fetch(1)");
  EXPECT_EQ(kafka.command("clear_errors 8"), "OK cleared OffsetCommit(8)");
  EXPECT_EQ(kafka.command("clear_errors Metadata"), "OK cleared Metadata(3)");

  EXPECT_EQ(kafka.command("broker_down 4"),
            "ERR bad broker id 4, want 1..3 or -1 for all");
  EXPECT_TRUE(kafka.command("push_errors Bogus 1 REQUEST_TIMED_OUT")
                  .starts_with("ERR unknown api key"));
  EXPECT_TRUE(kafka.command("push_errors Produce 1 NO_SUCH_ERROR")
                  .starts_with("ERR unknown error code"));
  EXPECT_TRUE(kafka.command("push_errors Produce 0 29").starts_with("ERR"));
  EXPECT_TRUE(kafka.command("create_topic t zero").starts_with("ERR"));
  EXPECT_TRUE(kafka.command("ping extra").starts_with("ERR wrong number"));
  EXPECT_EQ(kafka.command("frobnicate"), "ERR unknown command frobnicate");
  EXPECT_EQ(kafka.command(""), "ERR empty command");
  EXPECT_EQ(kafka.command("ping"), "OK pong");
  EXPECT_THROW(kafka.command_ok("broker_up 0"), std::runtime_error);
}

TEST(MockKafkaTest, ExitsOnEofAndIsReaped) {
  MockKafka kafka;
  pid_t pid = kafka.pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kafka.stop(), 0);
  EXPECT_EQ(kafka.pid(), -1);
  errno = 0;
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);  // already reaped
  EXPECT_EQ(errno, ECHILD);
}

TEST(MockKafkaTest, ReportsAProgramThatDiesAtStart) {
  MockKafka::Options options;
  options.extra_args = {"--no-such-flag"};
  EXPECT_THROW(MockKafka kafka(options), std::runtime_error);
}

TEST(MockKafkaTest, ExitsCleanlyOnQuitAndOnSigterm) {
  MockKafka quitting;
  EXPECT_EQ(quitting.command("quit"), "OK bye");
  EXPECT_EQ(quitting.stop(), 0);

  MockKafka terminated;
  ASSERT_EQ(kill(terminated.pid(), SIGTERM), 0);
  // The program handles a pending signal before reading stdin, so it exits
  // instead of answering.
  EXPECT_THROW(terminated.command("ping"), std::runtime_error);
  EXPECT_EQ(terminated.stop(), 0);
}

}  // namespace
}  // namespace tributary::test_support
