#pragma once
// Encodings shared by sinks: how an event becomes bytes.
//   json  one JSON object per event (timestamps RFC 3339 with nanoseconds)
//   text  the `message` field as text (empty if absent)
//   logfmt  key=value pairs in the event's order; nested maps and arrays
//         flattened (`http.status=200`, `tags[0]=a`); a value that is
//         empty or holds a space, `=`, `"` or a control character is
//         quoted as a JSON string (`\"`, `\\`, `\n`, `\u0001`)
// An Encoder is built once per sink and is const (thread-safe).

#include <string>
#include <vector>

#include "agent/event.h"
#include "config/schema.h"

namespace tributary {

struct EncodingConfig {
  std::string codec = "json";
  std::vector<std::string> except_fields;
  static const config::Schema<EncodingConfig>& schema();
};

class Encoder {
 public:
  explicit Encoder(const EncodingConfig& config);
  // Appends the event's encoding (no delimiter) to *out.
  void Encode(const Event& event, std::string* out) const;

 private:
  enum class Codec { kJson, kText, kLogfmt };
  bool Excluded(const std::string& key) const;
  Codec codec_;
  std::vector<std::string> except_;
};

}  // namespace tributary
