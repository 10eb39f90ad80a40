#pragma once
// `console` sink: writes each event on its own line to stdout or stderr.
// One write(2) per batch; delivered once the kernel has the bytes. The
// console sinks of the process (also an old pipeline's, left writing after
// a reload) write to a stream one whole batch at a time, so that lines are
// never torn.

#include <memory>

#include "agent/component.h"
#include "config/schema.h"
#include "sinks/encoding.h"

namespace tributary {

class ConsoleSink final : public SimpleSink {
 public:
  struct Config {
    std::string target = "stdout";
    EncodingConfig encoding;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Writes events to stdout or stderr, one per line.";
  static Result<std::unique_ptr<Sink>> Build(const Config& config, BuildContext& ctx);

  Status Write(const Batch& batch) override;

 private:
  ConsoleSink(const Config& config, ComponentMetrics* metrics);
  int fd_;
  Encoder encoder_;
  ComponentMetrics* metrics_;
  std::string buf_;
};

}  // namespace tributary
