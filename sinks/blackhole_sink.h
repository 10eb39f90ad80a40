#pragma once
// `blackhole` sink: accepts and discards everything (benchmarks, tests).
// Counts what it receives; optionally logs the totals every interval.

#include <chrono>
#include <memory>

#include "agent/component.h"
#include "config/schema.h"

namespace tributary {

class BlackholeSink final : public SimpleSink {
 public:
  struct Config {
    config::Seconds print_interval_secs{0};
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Discards every event (counted); for benchmarks and tests.";
  static Result<std::unique_ptr<Sink>> Build(const Config& config, BuildContext& ctx);

  Status Write(const Batch& batch) override;

 private:
  BlackholeSink(const Config& config, BuildContext& ctx);
  std::string id_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_print_;
  uint64_t events_ = 0;
};

}  // namespace tributary
