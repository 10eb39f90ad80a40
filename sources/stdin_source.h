#pragma once
// `stdin` source: reads lines from standard input until EOF, then finishes
// (and the agent shuts down once every source has). Batches whatever is
// available, up to `max_batch_events`; polls so a stop request is seen
// promptly.

#include <memory>

#include "agent/component.h"
#include "agent/log.h"
#include "config/schema.h"

namespace tributary {

class StdinSource final : public Source {
 public:
  struct Config {
    config::ByteSize max_line_bytes{102400};
    std::string oversize_policy = "truncate";
    std::string line_delimiter = "\n";
    uint64_t max_batch_events = 1000;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Reads lines from standard input until EOF.";
  static Result<std::unique_ptr<Source>> Build(const Config& config, BuildContext& ctx);

  Status Run(SourceContext& ctx) override;

 private:
  StdinSource(const Config& config, BuildContext& ctx);
  Config config_;
  std::string id_;
  std::string host_;
  RateLimiter log_limiter_;
  Counter* oversize_;
  Counter* discarded_;  // intentional: oversize lines under `oversize_policy: discard`
  Counter* read_errors_;
};

}  // namespace tributary
