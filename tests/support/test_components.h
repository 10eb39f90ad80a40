#pragma once
// Components registered only in test binaries (names start with `test_`, so
// the docs check skips them):
//   test_source     emits `batches` batches of `batch_size` events with a
//                   `seq` field, records each batch's final status
//   test_regex      a transform with a regex option (checks config errors)
//   test_sink       collects events; can be paused to simulate a slow sink,
//                   and rejects events whose `reject` field is true
// State is reachable through the static registries below, keyed by id.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/batch.h"

namespace tributary::testing {

struct TestSourceState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<BatchStatus> statuses;  // in order of finalization
  uint64_t sent_batches = 0;
  int alive = 0;  // sources of this id built and not yet destroyed
};

struct TestSinkState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Event> events;
  bool paused = false;
  void Pause();
  void Resume();
  size_t count();
};

TestSourceState& SourceState(const std::string& id);
TestSinkState& SinkState(const std::string& id);
void ResetTestComponents();

}  // namespace tributary::testing
