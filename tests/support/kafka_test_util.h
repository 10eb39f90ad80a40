#pragma once
// Helpers for tests that talk to tests/support/mock_kafka: read a topic back
// with kcat, and produce test messages with a plain librdkafka producer.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tributary::testing {

struct KafkaMessage {
  int partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;  // nullopt: no key
  std::string value;
  std::string headers;  // kcat's "n=v,n=v" rendering
};

// Every message of `topic` from the beginning, read with kcat (-e: until the
// end of every partition). Throws if kcat fails or takes longer than `timeout`.
std::vector<KafkaMessage> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Produces `values` to `topic` with librdkafka, each keyed by its index in
// `values` (so they spread over every partition), and waits until every one
// is delivered; throws on any delivery failure.
void ProduceMessages(const std::string& bootstrap, const std::string& topic, const std::vector<std::string>& values,
                     const std::map<std::string, std::string>& options = {});

// The offsets `group` has committed for partitions 0..partitions-1 of
// `topic` (-1 where none), fetched without joining the group.
std::vector<int64_t> CommittedOffsets(const std::string& bootstrap, const std::string& group,
                                      const std::string& topic, int partitions);

// Commits `offsets[p]` for partition p of `topic` as `group`, without
// joining it (the group must have no members); throws if the commit fails.
void CommitOffsets(const std::string& bootstrap, const std::string& group, const std::string& topic,
                   const std::vector<int64_t>& offsets);

// The partition librdkafka's default partitioner (consistent_random) picks
// for a non-empty key: CRC32 of the key modulo the partition count.
int ConsistentPartition(const std::string& key, int partitions);

}  // namespace tributary::testing
