#pragma once

// A small JSON value tree used to build the test server's responses.
//
// Objects keep insertion order (Elasticsearch's responses do too) and do not
// deduplicate keys. Strings are escaped on output; bytes that are not valid
// UTF-8 become U+FFFD, so whatever goes in, the output is valid JSON.
// A value is built and serialized by one thread; nothing here is shared.

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace es_test {

// Appends `s` to `out` as a quoted JSON string literal.
void append_json_string(std::string* out, std::string_view s);

class Json {
 public:
  // Text that is already serialized JSON (e.g. a stored `_source`); written
  // verbatim, never filtered into.
  struct Raw {
    std::string text;
  };
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : v_(b) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T v) : v_(static_cast<int64_t>(v)) {}
  Json(double v) : v_(v) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(std::string_view s) : v_(std::string(s)) {}
  Json(const char* s) : v_(std::string(s)) {}

  static Json object() { return Json(Object{}); }
  static Json array() { return Json(Array{}); }
  static Json raw(std::string text) { return Json(Raw{std::move(text)}); }

  // Appends a member to an object and returns *this for chaining.
  Json& add(std::string key, Json value);
  // Appends an element to an array and returns *this.
  Json& push(Json value);

  bool is_object() const { return std::holds_alternative<Object>(v_); }
  bool is_array() const { return std::holds_alternative<Array>(v_); }
  const Object& members() const { return std::get<Object>(v_); }
  const Array& elements() const { return std::get<Array>(v_); }

  void dump(std::string* out) const;
  std::string dump() const;

 private:
  explicit Json(Object o) : v_(std::move(o)) {}
  explicit Json(Array a) : v_(std::move(a)) {}
  explicit Json(Raw r) : v_(std::move(r)) {}

  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object, Raw> v_;
};

// Applies an Elasticsearch `filter_path` parameter: comma-separated dotted
// paths whose segments may use `*` (any characters within one field name) and
// `**` (any number of levels). Arrays are transparent; objects and arrays left
// empty are dropped; nothing matching gives `{}`. Exclusions (`-path`) are not
// supported: `error` is set and the value is returned unfiltered.
Json apply_filter_path(const Json& value, std::string_view filter, std::string* error);

// Glob match where `*` matches any run of characters (no other wildcards).
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace es_test
