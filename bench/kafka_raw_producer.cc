// The physical limit for the kafka sink bench: a plain librdkafka producer
// that sends each line of a file as one message, with the sink's defaults
// (idempotent, acks=all, no compression), and waits for every delivery
// report. Nothing else: no events, no encoding, no buffers.
//
//   kafka_raw_producer BOOTSTRAP TOPIC FILE [prop=value]...

#include <librdkafka/rdkafka.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s BOOTSTRAP TOPIC FILE [prop=value]...\n", argv[0]);
    return 2;
  }
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", argv[1]}, {"enable.idempotence", "true"}, {"acks", "all"}, {"compression.codec", "none"}};
  for (int i = 4; i < argc; ++i) {
    const char* eq = std::strchr(argv[i], '=');
    if (eq) props.emplace_back(std::string(argv[i], static_cast<size_t>(eq - argv[i])), eq + 1);
  }
  for (const auto& [k, v] : props)
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "%s\n", errstr);
      return 1;
    }
  static long failed = 0, delivered = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err) ++failed;
    else ++delivered;
  });
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "%s\n", errstr);
    return 1;
  }
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, argv[2], nullptr);
  std::ifstream in(argv[3], std::ios::binary);
  std::vector<char> buf(1 << 20);
  std::string carry;
  long sent = 0;
  auto produce = [&](const char* p, size_t n) {
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, const_cast<char*>(p), n, nullptr, 0,
                            nullptr) != 0) {
      if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        std::fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        std::exit(1);
      }
      rd_kafka_poll(rk, 10);
    }
    ++sent;
  };
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    size_t n = static_cast<size_t>(in.gcount()), start = 0;
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') continue;
      if (!carry.empty()) {
        carry.append(buf.data() + start, i - start);
        produce(carry.data(), carry.size());
        carry.clear();
      } else {
        produce(buf.data() + start, i - start);
      }
      start = i + 1;
    }
    carry.append(buf.data() + start, n - start);
    rd_kafka_poll(rk, 0);
  }
  if (!carry.empty()) produce(carry.data(), carry.size());
  rd_kafka_flush(rk, 600000);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  std::fprintf(stderr, "sent %ld delivered %ld failed %ld\n", sent, delivered, failed);
  return failed || delivered != sent ? 1 : 0;
}
