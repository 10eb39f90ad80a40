#pragma once
// `timestamp_parser` transform: parses a string field with the first of
// `formats` that fits (time_format.h) and stores the time as a timestamp
// value in `target` (the event timestamp by default). A field that already
// holds a timestamp is kept as it is. Failures are counted
// (`field_missing`, `timestamp_parse_failed`) and the event passed on
// untouched or dropped (`drop_failed`). Stateless; thread-safe.

#include "agent/component.h"
#include "agent/log.h"
#include "config/schema.h"
#include "transforms/time_format.h"

namespace tributary {

class TimestampParserTransform final : public Transform {
 public:
  struct Config {
    std::string field = "timestamp";
    std::vector<std::string> formats;
    std::string timezone = "UTC";
    std::string target = "timestamp";
    bool drop_field = false;
    bool drop_failed = false;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Parses a time string with strptime formats into the event timestamp.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);

  void Process(Batch& in, std::span<Batch> outputs) override;

 private:
  TimestampParserTransform(const Config& config, std::vector<TimeFormat> formats, TimeZone tz, ComponentMetrics* m);
  Config config_;
  std::vector<TimeFormat> formats_;
  TimeZone tz_;
  std::string id_;
  Counter* missing_;
  Counter* failed_;
  Counter* discarded_;
  RateLimiter log_limiter_;
};

}  // namespace tributary
