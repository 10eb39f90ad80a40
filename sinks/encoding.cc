#include "sinks/encoding.h"

#include "agent/json.h"

namespace tributary {

const config::Schema<EncodingConfig>& EncodingConfig::schema() {
  static const config::Schema<EncodingConfig> s = [] {
    config::Schema<EncodingConfig> s;
    s.Field("codec", &EncodingConfig::codec, "`json`: one JSON object per event; `text`: the `message` field only.")
        .OneOf({"json", "text"});
    s.Field("except_fields", &EncodingConfig::except_fields, "Top-level fields left out of the output.");
    return s;
  }();
  return s;
}

Encoder::Encoder(const EncodingConfig& config) : json_(config.codec == "json"), except_(config.except_fields) {}

void Encoder::Encode(const Event& event, std::string* out) const {
  if (!json_) {
    if (const Value* m = event.get(kMessageField)) m->append_text(out);
    return;
  }
  if (except_.empty()) {
    AppendJson(event, out);
    return;
  }
  const Fields& f = event.fields();
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < f.size(); ++i) {
    bool skip = false;
    for (const auto& e : except_) skip = skip || f.key(i) == e;
    if (skip) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(f.key(i), out);
    out->push_back(':');
    AppendJson(f.value(i), out);
  }
  out->push_back('}');
}

}  // namespace tributary
