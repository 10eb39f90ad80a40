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
  // topic, an index): empty is a problem too.
  static std::string CheckTarget(const std::string& text);

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
