#pragma once
// `regex_parser` transform: matches a string field against RE2 patterns
// (the first that matches wins) and sets one field per named capture
// group, converted to its declared type.
//
// Build compiles each pattern once and resolves every named group's
// index and conversion. Process matches a per-thread copy of the field's
// text into a per-thread array of StringPieces (Process runs concurrently
// on different batches; the copy keeps the captures valid while the event
// changes), converts every typed capture before touching the event, so a
// failed event is left exactly as it was, and then writes the captures
// into the event: a group whose name the event already has overwrites that
// field in place, the others are appended over the event's spare fields
// (event.h), reusing their buffers.
//
// Failures — the field is missing or not a string (`field_missing`), no
// pattern matched (`pattern_mismatch`), a capture did not convert
// (`conversion_failed`) — are counted in component_errors_total, logged
// through a rate limiter, and the event is passed on untouched or dropped
// (`drop_failed`). A line with bytes that are not UTF-8 is matched with
// them replaced by U+FFFD (RE2 matches nothing against them), counted as
// `invalid_utf8`.

#include <re2/re2.h>

#include <memory>

#include "agent/component.h"
#include "agent/log.h"
#include "config/schema.h"
#include "transforms/time_format.h"

namespace tributary {

class RegexParserTransform final : public Transform {
 public:
  struct Config {
    std::string field = "message";
    std::vector<std::string> patterns;
    std::map<std::string, std::string> types;
    std::string timezone = "UTC";
    bool drop_field = true;
    bool drop_failed = false;
    static const config::Schema<Config>& schema();
  };
  static constexpr std::string_view kSummary =
      "Parses a string field with RE2 named capture groups into typed fields.";
  static Result<std::unique_ptr<Transform>> Build(const Config& config, BuildContext& ctx);

  void Process(Batch& in, std::span<Batch> outputs) override;

  // One declared type. kTimestamp uses `format`.
  struct Conversion {
    enum class Kind { kString, kInt, kFloat, kBool, kTimestamp } kind = Kind::kString;
    std::optional<TimeFormat> format;
  };
  // Parses "int", "float", "bool", "string", "timestamp" (RFC 3339) or
  // "timestamp|<format>"; "" if fine, else the problem.
  static std::string CheckType(const std::string& type);
  static Result<Conversion> ParseType(const std::string& type);
  // Converts one capture; false if it does not convert.
  static bool Convert(const Conversion& c, std::string_view text, const TimeZone& tz, Value* out);

 private:
  struct Group {
    int index;  // capture group number
    std::string name;
    Conversion conversion;
  };
  struct Pattern {
    std::unique_ptr<RE2> re;
    std::vector<Group> groups;  // named groups only
    int ngroups;                // highest named group number
    bool typed = false;         // some group converts to a non-string
    uint64_t name_filter = 0;   // NameBit of every group name
  };
  struct Scratch;
  RegexParserTransform(const Config& config, std::vector<Pattern> patterns, TimeZone tz, ComponentMetrics* m);
  // Parses one event in place; false if it failed (and was counted).
  bool ParseEvent(Event& e, Scratch& s, uint64_t* missing, uint64_t* mismatch, uint64_t* conversion,
                  uint64_t* bad_utf8);

  std::string field_;
  bool drop_field_;
  bool drop_failed_;
  bool field_is_group_ = false;  // a group has the field's own name
  TimeZone tz_;
  std::vector<Pattern> patterns_;
  int max_groups_ = 0;        // highest group number of any pattern
  size_t max_named_ = 0;      // most named groups of any pattern
  std::string id_;
  Counter* missing_;
  Counter* mismatch_;
  Counter* conversion_;
  Counter* bad_utf8_;
  Counter* discarded_;
  RateLimiter log_limiter_;
};

}  // namespace tributary
