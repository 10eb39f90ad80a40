#pragma once
// Templates for names built from events: `{{ field }}` is replaced by the
// event's field (dotted paths allowed) as text; `%Y`, `%m`, `%d`, `%H` ...
// (strftime) format the event's `timestamp` field (UTC; now if absent).
//
//   "/var/log/out-%Y-%m-%d-{{ service }}.log"
//
// Parsed once at build time; Render is cheap and thread-safe (const).

#include <string>
#include <string_view>
#include <vector>

#include "agent/event.h"
#include "agent/status.h"

namespace tributary {

class Template {
 public:
  // Parses `text`; an unterminated `{{` or an empty field name is an error.
  static Result<Template> Parse(std::string_view text);
  // A check for config schemas: "" if `text` parses, else the problem.
  static std::string Check(const std::string& text);
  // The same for a template that names where events go (a file path, a
  // topic, an index): empty is a problem too, and so is a `%` that is not
  // a strftime conversion (`%Q`, a `%` at the end), which strftime would
  // write as it is; `%%` is a literal `%`.
  static std::string CheckTarget(const std::string& text);
  // Calls fn(conversion, position) for each strftime conversion in `text`
  // outside `{{ }}`: "Y", "Ey", "%" (for `%%`), "" for a `%` at the end.
  template <typename Fn>
  static void ForEachConversion(std::string_view text, Fn fn) {
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 2, "{{") == 0) {
        size_t end = text.find("}}", i);
        if (end == std::string_view::npos) return;
        i = end + 1;
      } else if (text[i] == '%') {
        size_t len = i + 1 < text.size() ? 1 : 0;
        if (len && (text[i + 1] == 'E' || text[i + 1] == 'O') && i + 2 < text.size()) len = 2;
        fn(text.substr(i + 1, len), i);
        i += len;
      }
    }
  }
  // True if strftime knows `conversion` (as ForEachConversion gives it).
  static bool IsKnownConversion(std::string_view conversion);

  // Appends the rendering for `event` to *out. Fails (kNotFound) naming the
  // first field that is missing or null.
  Status Render(const Event& event, std::string* out) const;
  // True if the template has no fields and no time formats.
  bool is_static() const { return static_; }
  const std::string& text() const { return text_; }

 private:
  struct Part {
    bool is_field;
    bool has_time;  // literal with % conversions
    std::string text;
  };
  std::vector<Part> parts_;
  std::string text_;
  bool static_ = true;
};

}  // namespace tributary
