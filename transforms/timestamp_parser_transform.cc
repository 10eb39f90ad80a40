#include "transforms/timestamp_parser_transform.h"

#include "config/registry.h"

namespace tributary {

const config::Schema<TimestampParserTransform::Config>& TimestampParserTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("field", &Config::field, "The field holding the time text.")
        .Check<std::string>([](const std::string& f) { return f.empty() ? std::string("must not be empty") : ""; });
    s.Field("formats", &Config::formats,
            "Formats tried in order: `rfc3339`, `unix`, `unix_ms`, `unix_us`, `unix_ns` or a strptime format "
            "(`%f` reads a fraction of a second).")
        .Required()
        .Check<std::vector<std::string>>([](const std::vector<std::string>& v) {
          if (v.empty()) return std::string("must list at least one format");
          for (const auto& f : v) {
            std::string p = TimeFormat::Check(f);
            if (!p.empty()) return p;
          }
          return std::string();
        });
    s.Field("timezone", &Config::timezone,
            "Zone of times whose format has no `%z`: `UTC`, `local`, an offset like `+02:00` or an IANA name like `Europe/Paris` (summer time applies).")
        .Check<std::string>(TimeZone::Check);
    s.Field("target", &Config::target, "Where the parsed timestamp is stored.")
        .Check<std::string>([](const std::string& f) { return f.empty() ? std::string("must not be empty") : ""; });
    s.Field("drop_field", &Config::drop_field, "Remove `field` after a successful parse (when it differs from `target`).");
    s.Field("drop_failed", &Config::drop_failed,
            "Drop events whose time does not parse; false passes them on unchanged. Counted either way.");
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> TimestampParserTransform::Build(const Config& config, BuildContext& ctx) {
  std::vector<TimeFormat> formats;
  for (const auto& f : config.formats) {
    auto r = TimeFormat::Parse(f);
    if (!r.ok()) return r.status();
    formats.push_back(std::move(r).value());
  }
  TimeZone tz;
  if (!TimeZone::Parse(config.timezone, &tz)) return Status::InvalidArgument("unknown time zone " + config.timezone);
  return std::unique_ptr<Transform>(new TimestampParserTransform(config, std::move(formats), tz, ctx.metrics));
}

TimestampParserTransform::TimestampParserTransform(const Config& config, std::vector<TimeFormat> formats, TimeZone tz,
                                                   ComponentMetrics* m)
    : config_(config),
      formats_(std::move(formats)),
      tz_(tz),
      id_(m->id()),
      missing_(&m->Errors("field_missing", "processing")),
      failed_(&m->Errors("timestamp_parse_failed", "processing")),
      discarded_(&m->discarded_unintentional()) {}

void TimestampParserTransform::Process(Batch& in, std::span<Batch> outputs) {
  std::vector<Event>& events = in.mutable_events();
  uint64_t missing = 0, failed = 0;
  size_t out = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    Event& e = events[i];
    bool ok = false;
    Value* v = e.get(config_.field);
    if (v == nullptr || (!v->is_string() && !v->is_timestamp())) {
      ++missing;
    } else if (v->is_timestamp()) {
      ok = true;
      if (config_.target != config_.field) {
        Timestamp t = v->as_timestamp();
        if (config_.drop_field) e.remove(config_.field);
        e.set(config_.target, Value(t));
      }
    } else {
      Timestamp t;
      for (const TimeFormat& f : formats_) {
        if (f.Apply(v->as_string(), tz_, &t)) {
          ok = true;
          break;
        }
      }
      if (ok) {
        if (config_.drop_field && config_.target != config_.field) e.remove(config_.field);
        e.set(config_.target, Value(t));
      } else {
        ++failed;
      }
    }
    if (!ok && config_.drop_failed) continue;
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  if (missing + failed) {
    if (missing) missing_->Increment(static_cast<double>(missing));
    if (failed) failed_->Increment(static_cast<double>(failed));
    if (config_.drop_failed) discarded_->Increment(static_cast<double>(events.size() - out));
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               std::to_string(missing + failed) + " event(s) of a batch of " + std::to_string(events.size()) +
                   " had no parsable time in `" + config_.field + "` (missing: " + std::to_string(missing) +
                   ", no format matched: " + std::to_string(failed) + ")" +
                   (config_.drop_failed ? "; dropped" : "; passed on unchanged"));
  }
  events.resize(out);
  outputs[0] = std::move(in);
}

TRIBUTARY_REGISTER_TRANSFORM("timestamp_parser", TimestampParserTransform);

}  // namespace tributary
