#include "tests/support/es_bulk_server/json.h"

#include <charconv>
#include <cmath>
#include <optional>

namespace es_test {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t min;
  uint32_t cp;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

void dump_double(std::string* out, double d) {
  if (!std::isfinite(d)) {
    out->append("null");
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  std::string_view text(buf, static_cast<size_t>(end - buf));
  out->append(text);
  // Keep it a JSON number that reads back as a double.
  if (text.find_first_of(".eE") == std::string_view::npos) out->append(".0");
}

using Pattern = std::vector<std::string>;  // dotted path split into segments

std::optional<Json> filter_node(const Json& node, const std::vector<Pattern>& patterns);

}  // namespace

void append_json_string(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

Json& Json::add(std::string key, Json value) {
  std::get<Object>(v_).emplace_back(std::move(key), std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  std::get<Array>(v_).push_back(std::move(value));
  return *this;
}

void Json::dump(std::string* out) const {
  struct Visitor {
    std::string* out;
    void operator()(std::nullptr_t) const { out->append("null"); }
    void operator()(bool b) const { out->append(b ? "true" : "false"); }
    void operator()(int64_t v) const { out->append(std::to_string(v)); }
    void operator()(double d) const { dump_double(out, d); }
    void operator()(const std::string& s) const { append_json_string(out, s); }
    void operator()(const Raw& r) const { out->append(r.text); }
    void operator()(const Array& a) const {
      out->push_back('[');
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) out->push_back(',');
        a[i].dump(out);
      }
      out->push_back(']');
    }
    void operator()(const Object& o) const {
      out->push_back('{');
      for (size_t i = 0; i < o.size(); ++i) {
        if (i) out->push_back(',');
        append_json_string(out, o[i].first);
        out->push_back(':');
        o[i].second.dump(out);
      }
      out->push_back('}');
    }
  };
  std::visit(Visitor{out}, v_);
}

std::string Json::dump() const {
  std::string out;
  dump(&out);
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative matcher with single-star backtracking.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

namespace {

std::optional<Json> filter_node(const Json& node, const std::vector<Pattern>& patterns) {
  for (const auto& p : patterns) {
    if (p.empty()) return node;  // a path ends here: keep the whole subtree
  }
  if (node.is_array()) {
    Json out = Json::array();
    bool any = false;
    for (const auto& e : node.elements()) {
      if (auto r = filter_node(e, patterns)) {
        out.push(std::move(*r));
        any = true;
      }
    }
    if (!any) return std::nullopt;
    return out;
  }
  if (!node.is_object()) return std::nullopt;
  Json out = Json::object();
  bool any = false;
  for (const auto& [key, value] : node.members()) {
    std::vector<Pattern> next;
    for (const auto& p : patterns) {
      if (p[0] == "**") {
        next.push_back(p);  // `**` consumes this level and stays
        if (p.size() == 1) {
          next.emplace_back();
        } else if (glob_match(p[1], key)) {  // `**` matches zero levels
          next.emplace_back(p.begin() + 2, p.end());
        }
      } else if (glob_match(p[0], key)) {
        next.emplace_back(p.begin() + 1, p.end());
      }
    }
    if (next.empty()) continue;
    if (auto r = filter_node(value, next)) {
      out.add(key, std::move(*r));
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return out;
}

}  // namespace

Json apply_filter_path(const Json& value, std::string_view filter, std::string* error) {
  std::vector<Pattern> patterns;
  size_t start = 0;
  while (start <= filter.size()) {
    size_t comma = filter.find(',', start);
    if (comma == std::string_view::npos) comma = filter.size();
    std::string_view path = filter.substr(start, comma - start);
    start = comma + 1;
    if (path.empty()) continue;
    if (path[0] == '-') {
      *error = "es_bulk_server does not support exclusions in filter_path [" + std::string(path) + "]";
      return value;
    }
    Pattern p;
    size_t s = 0;
    while (s <= path.size()) {
      size_t dot = path.find('.', s);
      if (dot == std::string_view::npos) dot = path.size();
      p.emplace_back(path.substr(s, dot - s));
      s = dot + 1;
    }
    patterns.push_back(std::move(p));
  }
  if (patterns.empty()) return value;
  if (auto r = filter_node(value, patterns)) return std::move(*r);
  return Json::object();
}

}  // namespace es_test
