#include "sinks/encoding.h"

#include "agent/json.h"

namespace tributary {

const config::Schema<EncodingConfig>& EncodingConfig::schema() {
  static const config::Schema<EncodingConfig> s = [] {
    config::Schema<EncodingConfig> s;
    s.Field("codec", &EncodingConfig::codec,
            "`json`: one JSON object per event; `text`: the `message` field only; `logfmt`: `key=value` pairs, "
            "nested fields flattened (`http.status=200`), values with spaces or quotes quoted.")
        .OneOf({"json", "text", "logfmt"});
    s.Field("except_fields", &EncodingConfig::except_fields, "Top-level fields left out of the output.");
    return s;
  }();
  return s;
}

Encoder::Encoder(const EncodingConfig& config)
    : codec_(config.codec == "text"     ? Codec::kText
             : config.codec == "logfmt" ? Codec::kLogfmt
                                        : Codec::kJson),
      except_(config.except_fields) {}

bool Encoder::Excluded(const std::string& key) const {
  for (const auto& e : except_)
    if (key == e) return true;
  return false;
}

namespace {

// As is when it can be; else quoted as a JSON string, which logfmt
// readers unquote.
void AppendLogfmtText(std::string_view s, std::string* out) {
  bool quote = s.empty();
  for (char c : s) quote = quote || c == ' ' || c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20;
  if (quote) AppendJsonString(s, out);
  else out->append(s);
}

// key=value for a scalar; one pair per leaf of a map or array.
void AppendLogfmtPair(const std::string& key, const Value& v, bool* first, std::string* out) {
  if (v.is_map()) {
    const Fields& m = v.as_map();
    for (size_t i = 0; i < m.size(); ++i) AppendLogfmtPair(key + "." + m.key(i), m.value(i), first, out);
    return;
  }
  if (v.is_array()) {
    const Array& a = v.as_array();
    for (size_t i = 0; i < a.size(); ++i) AppendLogfmtPair(key + "[" + std::to_string(i) + "]", a[i], first, out);
    return;
  }
  if (!*first) out->push_back(' ');
  *first = false;
  AppendLogfmtText(key, out);
  out->push_back('=');
  if (v.is_string()) AppendLogfmtText(v.as_string(), out);
  else if (v.is_null()) out->append("\"\"");
  else v.append_text(out);  // a number, bool or RFC 3339 time: nothing to quote
}

}  // namespace

void Encoder::Encode(const Event& event, std::string* out) const {
  if (codec_ == Codec::kText) {
    if (const Value* m = event.get(kMessageField)) m->append_text(out);
    return;
  }
  const Fields& f = event.fields();
  if (codec_ == Codec::kLogfmt) {
    bool first = true;
    for (size_t i = 0; i < f.size(); ++i)
      if (!Excluded(f.key(i))) AppendLogfmtPair(f.key(i), f.value(i), &first, out);
    return;
  }
  if (except_.empty()) {
    AppendJson(event, out);
    return;
  }
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < f.size(); ++i) {
    if (Excluded(f.key(i))) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(f.key(i), out);
    out->push_back(':');
    AppendJson(f.value(i), out);
  }
  out->push_back('}');
}

}  // namespace tributary
