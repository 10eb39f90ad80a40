#pragma once
// `demo_logs` source: generates fake log lines (Apache common log format or
// JSON) for trying pipelines out and for benchmarks. With `interval: 0` it
// emits batches of `batch_size` as fast as the pipeline takes them.

#include <memory>

#include "agent/component.h"
#include "config/schema.h"

namespace tributary {

class DemoLogsSource final : public Source {
 public:
  struct Config {
    std::string format = "apache_common";
    uint64_t count = 0;
    config::Seconds interval{1.0};
    uint64_t batch_size = 1000;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Generates demo log lines (apache_common or json).";
  static Result<std::unique_ptr<Source>> Build(const Config& config, BuildContext& ctx);

  Status Run(SourceContext& ctx) override;

  // The n-th demo line of a format (deterministic), for tests and benches.
  static std::string Line(std::string_view format, uint64_t n, Timestamp now);

 private:
  DemoLogsSource(const Config& config, std::string host) : config_(config), host_(std::move(host)) {}
  Config config_;
  std::string host_;
};

}  // namespace tributary
