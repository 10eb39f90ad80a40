#pragma once
// The condition language of `filter`, `route`, `sample.exclude` and the
// `conditions` of `tributary test` (docs/conditions.md).
//
// Grammar (YAML):
//   condition  := comparison | { all: [condition...] } | { any: [condition...] }
//               | { not: condition }
//   comparison := { field: <path>, <op>: <operand>, ... }   (every op must hold)
//   op         := eq | ne | gt | gte | lt | lte | matches | exists | contains
// A list where a condition is expected means `all` of it.
//
// Semantics: numbers compare numerically (int and float mix); a string field
// compared with a number is parsed as a number; timestamps compare with
// RFC 3339 strings; otherwise values compare as text (a null field has no
// text: it equals only null and matches no pattern). A missing field
// satisfies only `ne` and `exists: false`. `matches` is an RE2 search on the
// field's text; `contains` is a substring for strings and an element for
// arrays.
//
// A Condition is immutable after Parse, and Matches is thread-safe.

#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/event.h"
#include "config/schema.h"

namespace re2 {
class RE2;
}

namespace tributary {

class Condition {
 public:
  // Parses `node`; every problem is reported through ctx with its location.
  // nullopt if there was any problem.
  static std::optional<Condition> Parse(const YAML::Node& node, const config::ParseContext& ctx);
  // For a node already checked by Parse (at validation): parses without a
  // location context. A node that fails still yields a condition that
  // matches nothing.
  static Condition ParseValidated(const YAML::Node& node);

  bool Matches(const Event& event) const;
  // The condition as compact text, e.g. `status >= 500 and path matches '^/api/'`.
  std::string ToString() const;

  Condition(Condition&&) noexcept;
  Condition& operator=(Condition&&) noexcept;
  ~Condition();

  struct Node;

 private:
  Condition();
  std::unique_ptr<Node> root_;
};

// The typed value of a YAML node: scalars as add_fields reads them
// (plain numbers and booleans typed, quoted strings strings), sequences as
// arrays and maps as maps.
Value YamlToValue(const YAML::Node& node);

}  // namespace tributary
