#include "transforms/json_parser_transform.h"

#include "agent/json.h"
#include "config/registry.h"

namespace tributary {

const config::Schema<JsonParserTransform::Config>& JsonParserTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("field", &Config::field, "The string field holding the JSON text.")
        .Check<std::string>([](const std::string& f) { return f.empty() ? std::string("must not be empty") : ""; });
    s.Field("target", &Config::target,
            "Where the result goes: empty merges the object's members into the event root (the JSON must be an "
            "object); a field name stores the parsed value (any JSON type) there.");
    s.Field("drop_field", &Config::drop_field,
            "Remove `field` after a successful parse (unless the JSON itself set it).");
    s.Field("drop_invalid", &Config::drop_invalid,
            "Drop events whose field is missing or not valid JSON; false passes them on unchanged. Counted either way.");
    s.Field("max_depth", &Config::max_depth,
            "Most objects/arrays nested in one another, empty ones included (`{\"a\":{}}` is 2); deeper "
            "documents are invalid (`depth_exceeded`).")
        .Min(1)
        .Max(1024);
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Transform>> JsonParserTransform::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Transform>(new JsonParserTransform(config, ctx.metrics));
}

JsonParserTransform::JsonParserTransform(const Config& config, ComponentMetrics* m)
    : config_(config),
      id_(m->id()),
      missing_(&m->Errors("field_missing", "processing")),
      invalid_(&m->Errors("invalid_json", "processing")),
      too_deep_(&m->Errors("depth_exceeded", "processing")),
      discarded_(&m->discarded_unintentional()) {}

namespace {

// This thread's parser for a depth bound (a handful of bounds at most).
JsonParser& ThreadParser(size_t max_depth) {
  thread_local std::vector<std::pair<size_t, std::unique_ptr<JsonParser>>> parsers;
  for (auto& [depth, p] : parsers)
    if (depth == max_depth) return *p;
  parsers.emplace_back(max_depth, std::make_unique<JsonParser>(max_depth));
  return *parsers.back().second;
}

}  // namespace

JsonParserTransform::Outcome JsonParserTransform::ParseEvent(JsonParser& parser, Event& e) {
  auto outcome = [](const Status& s) {
    return s.ok() ? Outcome::kOk : s.code() == StatusCode::kResourceExhausted ? Outcome::kTooDeep : Outcome::kInvalid;
  };
  if (config_.target.empty()) {
    // The common case: a top-level field merged into the root. The text
    // stays in the event; the parser reads it before anything changes and
    // removes the field first, so that the members are appended after the
    // fields that stay (a member of the same name comes back at the end).
    Fields& f = e.fields();
    for (size_t k = f.size(); k-- > 0;) {  // from the back: the sources put the message last
      if (f.key(k) != config_.field) continue;
      const Value& v = f.value(k);
      if (!v.is_string()) return Outcome::kMissing;
      const std::string& text = v.as_string();
      const bool padded = text.capacity() - text.size() >= JsonParser::kPadding;
      return outcome(parser.ParseObjectInto(text, &f, padded, config_.drop_field ? k : Fields::npos));
    }
  }
  // A dotted path, or a target field.
  Value* v = e.get(config_.field);
  if (v == nullptr || !v->is_string()) return Outcome::kMissing;
  // Take the text out and leave a timestamp in its place: JSON never
  // produces one, so afterwards it tells whether the document set the
  // field itself.
  std::string text = std::move(v->as_string());
  *v = Value(Timestamp{});
  const bool padded = text.capacity() - text.size() >= JsonParser::kPadding;
  auto fail = [&](const Status& s) {  // the event is left as it was
    *e.get(config_.field) = Value(std::move(text));
    return s.code() == StatusCode::kResourceExhausted ? Outcome::kTooDeep : Outcome::kInvalid;
  };
  if (config_.target.empty()) {
    Status s = parser.ParseObjectInto(text, &e.fields(), padded);
    if (!s.ok()) return fail(s);
    Value* now = e.get(config_.field);
    if (now != nullptr && now->is_timestamp() && now->as_timestamp() == Timestamp{}) {
      if (config_.drop_field) e.remove(config_.field);
      else *now = Value(std::move(text));
    }
    return Outcome::kOk;
  }
  thread_local Value parsed;
  Status s = parser.Parse(text, &parsed, padded);
  if (!s.ok()) return fail(s);
  if (config_.drop_field && config_.target != config_.field) e.remove(config_.field);
  else *e.get(config_.field) = Value(std::move(text));
  e.set(config_.target, std::move(parsed));
  parsed = Value();
  return Outcome::kOk;
}

void JsonParserTransform::Process(Batch& in, std::span<Batch> outputs) {
  std::vector<Event>& events = in.mutable_events();
  JsonParser& parser = ThreadParser(static_cast<size_t>(config_.max_depth));
  uint64_t missing = 0, invalid = 0, too_deep = 0;
  size_t out = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    Outcome o = ParseEvent(parser, events[i]);
    if (o != Outcome::kOk) {
      (o == Outcome::kMissing ? missing : o == Outcome::kInvalid ? invalid : too_deep)++;
      if (config_.drop_invalid) continue;
    }
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  const uint64_t failed = missing + invalid + too_deep;
  if (failed) {
    if (missing) missing_->Increment(static_cast<double>(missing));
    if (invalid) invalid_->Increment(static_cast<double>(invalid));
    if (too_deep) too_deep_->Increment(static_cast<double>(too_deep));
    if (config_.drop_invalid) discarded_->Increment(static_cast<double>(events.size() - out));
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               std::to_string(failed) + " event(s) of a batch of " + std::to_string(events.size()) +
                   " were not parsed (field missing or not a string: " + std::to_string(missing) +
                   ", invalid JSON: " + std::to_string(invalid) + ", nested deeper than " +
                   std::to_string(config_.max_depth) + ": " + std::to_string(too_deep) + ")" +
                   (config_.drop_invalid ? "; dropped" : "; passed on unchanged"));
  }
  events.resize(out);
  outputs[0] = std::move(in);
}

TRIBUTARY_REGISTER_TRANSFORM("json_parser", JsonParserTransform);

}  // namespace tributary
