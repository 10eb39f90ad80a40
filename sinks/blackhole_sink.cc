#include "sinks/blackhole_sink.h"

#include "agent/log.h"
#include "config/registry.h"

namespace tributary {

const config::Schema<BlackholeSink::Config>& BlackholeSink::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("print_interval_secs", &Config::print_interval_secs,
            "Log the number of events received every this many seconds; 0 = never.")
        .Min(0);
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Sink>> BlackholeSink::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Sink>(new BlackholeSink(config, ctx));
}

BlackholeSink::BlackholeSink(const Config& config, BuildContext& ctx)
    : id_(ctx.id), interval_(config.print_interval_secs.get()), last_print_(std::chrono::steady_clock::now()) {}

Status BlackholeSink::Write(const Batch& batch) {
  events_ += batch.size();
  if (interval_.count() > 0) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_print_ >= interval_) {
      last_print_ = now;
      TLOG_INFO(id_, "received " + std::to_string(events_) + " events in total");
    }
  }
  return Status::Ok();
}

TRIBUTARY_REGISTER_SINK("blackhole", BlackholeSink);

}  // namespace tributary
