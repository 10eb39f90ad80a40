#pragma once
// `json_parser` transform: parses a string field as JSON (simdjson) and
// merges the object's members into the event root, or stores the parsed
// value (any JSON type) under `target`. Nested objects and arrays become
// map and array values. Parsing twice handles wrapped JSON, e.g. a Docker
// log line {"log":"{\"message\":...}"}: the first parser lifts `log`, a
// second one parses `log`.
//
// Failures — field missing or not a string (`field_missing`), invalid JSON
// or invalid UTF-8 or a non-object with the root as target
// (`invalid_json`), nesting deeper than `max_depth` (`depth_exceeded`) —
// are counted, logged through a rate limiter, and the event is passed on
// untouched or dropped (`drop_invalid`).
//
// Each thread keeps its own simdjson parser (Process runs concurrently on
// different batches); its buffers are reused from event to event. With the
// root as target and a top-level field (the common case) the document is
// merged straight into the event: each value written over the field the
// recycled event already holds (event.h), the field removed before the
// members are appended (see JsonParser::ParseObjectInto).

#include <memory>

#include "agent/component.h"
#include "agent/log.h"
#include "config/schema.h"

namespace tributary {

class JsonParserTransform final : public Transform {
 public:
  struct Config {
    std::string field = "message";
    std::string target;
    bool drop_field = true;
    bool drop_invalid = false;
    int64_t max_depth = 64;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary = "Parses a string field as JSON into the event or a target field.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);

  void Process(Batch& in, std::span<Batch> outputs) override;

 private:
  JsonParserTransform(const Config& config, ComponentMetrics* m);
  enum class Outcome { kOk, kMissing, kInvalid, kTooDeep };
  Outcome ParseEvent(class JsonParser& parser, Event& e);

  Config config_;
  std::string id_;
  Counter* missing_;
  Counter* invalid_;
  Counter* too_deep_;
  Counter* discarded_;
  RateLimiter log_limiter_;
};

}  // namespace tributary
