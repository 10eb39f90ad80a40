#include "tests/support/kafka_test_util.h"

#include <librdkafka/rdkafka.h>
#include <zlib.h>

#include <stdexcept>

#include "tests/support/test_util.h"

namespace tributary::testing {

std::vector<KafkaMessage> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                    std::chrono::milliseconds timeout) {
  // Per message: "partition offset keylen valuelen headers\n" key value "\n".
  Process kcat({.argv = {"kcat", "-C", "-q", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-f",
                         "%p %o %K %S %h\\n%k%s\\n"}});
  auto code = kcat.Wait(timeout);
  if (!code) throw std::runtime_error("kcat did not finish reading " + topic);
  if (*code != 0) throw std::runtime_error("kcat failed (" + std::to_string(*code) + "): " + kcat.Stderr());
  std::string out = kcat.Stdout();
  std::vector<KafkaMessage> messages;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) throw std::runtime_error("kcat output truncated");
    std::string header = out.substr(pos, eol - pos);
    KafkaMessage m;
    long long klen = 0, vlen = 0;
    int consumed = 0;
    if (std::sscanf(header.c_str(), "%d %ld %lld %lld %n", &m.partition, &m.offset, &klen, &vlen, &consumed) < 4)
      throw std::runtime_error("unexpected kcat line: " + header);
    m.headers = header.substr(static_cast<size_t>(consumed));
    pos = eol + 1;
    if (klen >= 0) {
      m.key = out.substr(pos, static_cast<size_t>(klen));
      pos += static_cast<size_t>(klen);
    }
    if (vlen > 0) {
      m.value = out.substr(pos, static_cast<size_t>(vlen));
      pos += static_cast<size_t>(vlen);
    }
    if (pos >= out.size() || out[pos] != '\n') throw std::runtime_error("kcat output out of step");
    ++pos;
    messages.push_back(std::move(m));
  }
  return messages;
}

void ProduceMessages(const std::string& bootstrap, const std::string& topic, const std::vector<std::string>& values,
                     const std::map<std::string, std::string>& options) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> all = {{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}};
  for (const auto& [k, v] : options) all[k] = v;
  for (const auto& [k, v] : all)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(errstr);
  int failed = 0;
  rd_kafka_conf_set_opaque(conf, &failed);
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err) ++*static_cast<int*>(opaque);
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) throw std::runtime_error(errstr);
  size_t index = 0;
  for (const auto& v : values) {
    const std::string key = std::to_string(index++);
    while (true) {
      auto err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_KEY(key.data(), key.size()),
                                   RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, 50);
        continue;
      }
      if (err) {
        rd_kafka_destroy(rk);
        throw std::runtime_error(std::string("produce: ") + rd_kafka_err2str(err));
      }
      break;
    }
    rd_kafka_poll(rk, 0);
  }
  auto err = rd_kafka_flush(rk, 30000);
  rd_kafka_destroy(rk);
  if (err || failed) throw std::runtime_error("test producer: " + std::to_string(failed) + " delivery failures");
}

namespace {

// A consumer of `group` that does not join it: for reading and setting the
// group's committed offsets.
rd_kafka_t* GroupClient(const std::string& bootstrap, const std::string& group) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", group.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    throw std::runtime_error(errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  if (!rk) throw std::runtime_error(errstr);
  return rk;
}

}  // namespace

std::vector<int64_t> CommittedOffsets(const std::string& bootstrap, const std::string& group,
                                      const std::string& topic, int partitions) {
  rd_kafka_t* rk = GroupClient(bootstrap, group);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  std::vector<int64_t> out(static_cast<size_t>(partitions), -1);
  if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i)
      if (!list->elems[i].err) out[static_cast<size_t>(list->elems[i].partition)] = list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  return out;
}

void CommitOffsets(const std::string& bootstrap, const std::string& group, const std::string& topic,
                   const std::vector<int64_t>& offsets) {
  rd_kafka_t* rk = GroupClient(bootstrap, group);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size()));
  for (size_t p = 0; p < offsets.size(); ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), static_cast<int32_t>(p))->offset = offsets[p];
  rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, 0);
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) err = list->elems[i].err;
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  if (err) throw std::runtime_error(std::string("commit failed: ") + rd_kafka_err2str(err));
}

int ConsistentPartition(const std::string& key, int partitions) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(key.data()), static_cast<uInt>(key.size()));
  return static_cast<int>(crc % static_cast<uLong>(partitions));
}

}  // namespace tributary::testing
