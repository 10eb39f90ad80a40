#include "config/schema.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace tributary::config {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty()) return false;
  std::string tmp(s);
  char* end = nullptr;
  *out = std::strtod(tmp.c_str(), &end);
  return end == tmp.c_str() + tmp.size() && std::isfinite(*out);
}

std::string Shown(const YAML::Node& n, const ParseContext& ctx) {
  // Never echo what might be a secret: only short, single-line scalars.
  std::string s = ScalarText(n);
  if (s.size() > 40 || s.find('\n') != std::string::npos) return "";
  return " (got \"" + s + "\")";
}

}  // namespace

bool ParseCoreInt(std::string_view s, uint64_t* magnitude, bool* negative) {
  *negative = false;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {  // no sign on these
    base = s[1] == 'x' ? 16 : 8;
    s.remove_prefix(2);
  } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    *negative = s[0] == '-';
    s.remove_prefix(1);
  }
  // from_chars would take a sign or (base 16) nothing else odd; the digits
  // must be all there is.
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *magnitude, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

namespace {

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  } else {
    if (!digits()) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

}  // namespace

CoreScalar ResolveCoreScalar(std::string_view s) {
  using Kind = CoreScalar::Kind;
  CoreScalar c;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    c.kind = Kind::kNull;
    return c;
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    c.kind = Kind::kBool;
    c.b = s[0] == 't' || s[0] == 'T';
    return c;
  }
  uint64_t magnitude;
  bool negative;
  if (ParseCoreInt(s, &magnitude, &negative)) {
    if (negative ? magnitude <= 1ull << 63 : magnitude < 1ull << 63) {
      c.kind = Kind::kInt;
      c.i = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    } else {
      c.kind = Kind::kFloat;
      c.d = negative ? -static_cast<double>(magnitude) : static_cast<double>(magnitude);
    }
    return c;
  }
  std::string_view unsigned_part = s;
  const bool minus = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) unsigned_part.remove_prefix(1);
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF") {
    c.kind = Kind::kFloat;
    c.d = minus ? -HUGE_VAL : HUGE_VAL;
    return c;
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") {
    c.kind = Kind::kFloat;
    c.d = std::nan("");
    return c;
  }
  if (IsCoreFloat(s)) {
    c.kind = Kind::kFloat;
    // from_chars takes no `+`; a value beyond a double's range is infinite.
    auto r = std::from_chars(unsigned_part.data(), unsigned_part.data() + unsigned_part.size(), c.d);
    if (r.ec == std::errc::result_out_of_range) c.d = std::strtod(std::string(unsigned_part).c_str(), nullptr);
    if (minus) c.d = -c.d;
    return c;
  }
  return c;
}

std::string ScalarText(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : std::string(); }

bool ExpectScalar(const YAML::Node& n, const ParseContext& ctx, std::string_view type) {
  if (n.IsScalar()) return true;
  std::string got = n.IsMap() ? "a map" : n.IsSequence() ? "a list" : "nothing";
  ctx.Error(n, "`" + ctx.path + "` must be " + std::string(type) + ", got " + got);
  return false;
}

bool ParseByteSize(std::string_view s, uint64_t* out) {
  // A float in exponent form, as YAML reads `1e6` (global.md, Numbers).
  if (double v; s.find_first_of("eE") != std::string_view::npos && ParseNumber(s, &v)) {
    if (v < 0 || v >= 18446744073709551616.0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  double num;
  if (!ParseNumber(s.substr(0, i), &num) || num < 0) return false;
  std::string unit = Lower(s.substr(i));
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double mult;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb") mult = 1e3;
  else if (unit == "ki" || unit == "kib") mult = 1024.0;
  else if (unit == "m" || unit == "mb") mult = 1e6;
  else if (unit == "mi" || unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gb") mult = 1e9;
  else if (unit == "gi" || unit == "gib") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tb") mult = 1e12;
  else if (unit == "ti" || unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else return false;
  if (num * mult >= 18446744073709551616.0) return false;  // beyond uint64_t
  *out = static_cast<uint64_t>(num * mult);
  return true;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"},
      {1'000'000'000'000ull, "TB"}, {1'000'000'000ull, "GB"}, {1'000'000ull, "MB"}, {1'000ull, "KB"}};
  std::string best = std::to_string(bytes);
  uint64_t best_count = bytes;
  for (const auto& [size, name] : kUnits) {
    if (bytes != 0 && bytes % size == 0 && bytes / size < best_count) {
      best_count = bytes / size;
      best = std::to_string(best_count) + name;
    }
  }
  return best;
}

namespace {

enum class DurationRead { kOk, kNotADuration, kTooLong };

DurationRead ReadDuration(std::string_view s, double unit_ms, double* out_ms) {
  // A core-schema integer in the option's unit (0x10 too).
  uint64_t magnitude;
  bool negative;
  if (ParseCoreInt(s, &magnitude, &negative)) {
    if (negative && magnitude != 0) return DurationRead::kNotADuration;
    *out_ms = static_cast<double>(magnitude) * unit_ms;
    return *out_ms <= kMaxDurationMs ? DurationRead::kOk : DurationRead::kTooLong;
  }
  // A float in exponent form, as YAML reads `1e3` (global.md, Numbers).
  if (double v; s.find_first_of("eE") != std::string_view::npos && ParseNumber(s, &v)) {
    if (v < 0) return DurationRead::kNotADuration;
    *out_ms = v * unit_ms;
    return *out_ms <= kMaxDurationMs ? DurationRead::kOk : DurationRead::kTooLong;
  }
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == '-')) ++i;
  double num;
  if (!ParseNumber(s.substr(0, i), &num) || num < 0) return DurationRead::kNotADuration;
  std::string unit = Lower(s.substr(i));
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double mult;
  if (unit.empty()) mult = unit_ms;
  else if (unit == "ns") mult = 1e-6;
  else if (unit == "us") mult = 1e-3;
  else if (unit == "ms") mult = 1;
  else if (unit == "s" || unit == "sec" || unit == "secs") mult = 1000;
  else if (unit == "m" || unit == "min") mult = 60000;
  else if (unit == "h") mult = 3600000;
  else if (unit == "d") mult = 86400000;
  else return DurationRead::kNotADuration;
  *out_ms = num * mult;
  return *out_ms <= kMaxDurationMs ? DurationRead::kOk : DurationRead::kTooLong;
}

// A duration option's value in whole milliseconds, the runtime's unit:
// too long a value, or one that is not a whole number of milliseconds
// (`500us`, which would become 0, often a different behaviour), is an
// error at its location, never rounded silently.
bool DecodeDuration(const YAML::Node& n, double unit_ms, std::string_view unit_name, const ParseContext& ctx,
                    int64_t* out_ms) {
  if (!ExpectScalar(n, ctx, "a duration")) return false;
  double ms;
  switch (ReadDuration(n.Scalar(), unit_ms, &ms)) {
    case DurationRead::kOk: break;
    case DurationRead::kNotADuration:
      ctx.Error(n, "`" + ctx.path + "` must be a duration" + Shown(n, ctx),
                std::string(unit_name) + " as a number, or with a unit: \"500ms\", \"2s\", \"1m\"");
      return false;
    case DurationRead::kTooLong:
      ctx.Error(n, "`" + ctx.path + "` is too long" + Shown(n, ctx),
                "the longest duration is " + std::string(kMaxDurationText) +
                    ": the agent adds durations to clock readings that would overflow");
      return false;
  }
  const double whole = std::round(ms);
  if (std::fabs(ms - whole) > std::max(1e-6, whole * 1e-12)) {
    auto text = [](double v) { return std::to_string(static_cast<int64_t>(v)) + "ms"; };
    ctx.Error(n, "`" + ctx.path + "` must be a whole number of milliseconds" + Shown(n, ctx),
              "durations are counted in milliseconds: write " + text(std::floor(ms)) + " or " + text(std::ceil(ms)));
    return false;
  }
  *out_ms = static_cast<int64_t>(whole);
  return true;
}

}  // namespace

bool ParseDuration(std::string_view s, double unit_ms, double* out_ms) {
  return ReadDuration(s, unit_ms, out_ms) == DurationRead::kOk;
}

bool Decoder<std::string>::Decode(const YAML::Node& n, std::string* out, const ParseContext& ctx) {
  if (n.IsNull()) {
    out->clear();
    return true;
  }
  if (n.IsMap() && n.size() == 1 && n.begin()->first.IsMap() && n.begin()->second.IsNull()) {
    // `topic: {{ service }}`: YAML reads an unquoted template as a map
    // holding a map.
    ctx.Error(n, "`" + ctx.path + "` must be a string, got a map",
              "a `{{ field }}` template must be quoted: write \"{{ ... }}\" in double or single quotes");
    return false;
  }
  if (!ExpectScalar(n, ctx, "a string")) return false;
  *out = n.Scalar();
  return true;
}

bool Decoder<bool>::Decode(const YAML::Node& n, bool* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "true or false")) return false;
  std::string s = Lower(n.Scalar());
  if (s == "true" || s == "yes" || s == "on") *out = true;
  else if (s == "false" || s == "no" || s == "off") *out = false;
  else {
    ctx.Error(n, "`" + ctx.path + "` must be true or false" + Shown(n, ctx));
    return false;
  }
  return true;
}

namespace {

constexpr const char* kIntegerHint = "a whole number: 16, or in hex 0x10, in octal 0o20";

}  // namespace

bool Decoder<int64_t>::Decode(const YAML::Node& n, int64_t* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "an integer")) return false;
  uint64_t magnitude;
  bool negative;
  if (!ParseCoreInt(n.Scalar(), &magnitude, &negative)) {
    ctx.Error(n, "`" + ctx.path + "` must be an integer" + Shown(n, ctx), kIntegerHint);
    return false;
  }
  if (negative ? magnitude > 1ull << 63 : magnitude >= 1ull << 63) {
    ctx.Error(n, "`" + ctx.path + "` is out of range" + Shown(n, ctx));
    return false;
  }
  *out = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

bool Decoder<int>::Decode(const YAML::Node& n, int* out, const ParseContext& ctx) {
  int64_t v;
  if (!Decoder<int64_t>::Decode(n, &v, ctx)) return false;
  if (v < INT32_MIN || v > INT32_MAX) {
    ctx.Error(n, "`" + ctx.path + "` is out of range" + Shown(n, ctx));
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool Decoder<uint64_t>::Decode(const YAML::Node& n, uint64_t* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "a non-negative integer")) return false;
  bool negative;
  if (!ParseCoreInt(n.Scalar(), out, &negative) || (negative && *out != 0)) {
    ctx.Error(n, "`" + ctx.path + "` must be a non-negative integer" + Shown(n, ctx), kIntegerHint);
    return false;
  }
  return true;
}

bool Decoder<double>::Decode(const YAML::Node& n, double* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "a number")) return false;
  const CoreScalar c = ResolveCoreScalar(n.Scalar());
  if (c.kind == CoreScalar::Kind::kInt) *out = static_cast<double>(c.i);
  else if (c.kind == CoreScalar::Kind::kFloat && std::isfinite(c.d)) *out = c.d;
  else {
    ctx.Error(n, "`" + ctx.path + "` must be a " + (c.kind == CoreScalar::Kind::kFloat ? "finite " : "") + "number" +
                     Shown(n, ctx));
    return false;
  }
  return true;
}

std::string Decoder<double>::Format(double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

bool Decoder<ByteSize>::Decode(const YAML::Node& n, ByteSize* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "a size")) return false;
  bool negative;
  if (ParseCoreInt(n.Scalar(), &out->bytes, &negative) && !negative) return true;  // 0x100000 too
  if (!ParseByteSize(n.Scalar(), &out->bytes)) {
    ctx.Error(n, "`" + ctx.path + "` must be a size in bytes" + Shown(n, ctx),
              "e.g. 1048576, \"512KiB\", \"64MiB\", \"1GB\"");
    return false;
  }
  return true;
}

bool Decoder<Millis>::Decode(const YAML::Node& n, Millis* out, const ParseContext& ctx) {
  return DecodeDuration(n, 1, "milliseconds", ctx, &out->ms);
}

bool Decoder<Seconds>::Decode(const YAML::Node& n, Seconds* out, const ParseContext& ctx) {
  int64_t ms;
  if (!DecodeDuration(n, 1000, "seconds", ctx, &ms)) return false;
  out->secs = static_cast<double>(ms) / 1000;
  return true;
}

bool Decoder<Regex>::Decode(const YAML::Node& n, Regex* out, const ParseContext& ctx) {
  if (!ExpectScalar(n, ctx, "a regular expression")) return false;
  std::string problem = CheckRegex(n.Scalar());
  if (!problem.empty()) {
    ctx.Error(n, "`" + ctx.path + "`: " + problem, "RE2 syntax: https://github.com/google/re2/wiki/Syntax");
    return false;
  }
  out->pattern = n.Scalar();
  return true;
}

std::string CheckRegex(const std::string& pattern) {
  // In double quotes YAML reads `\b`, `\a`, `\f`, `\v`, `\e` and `\0` as
  // control characters: "\bGET\b" is a pattern of backspaces that compiles
  // and never matches.
  for (char c : pattern) {
    static constexpr std::string_view kEscapes[] = {"\\0", "", "", "", "", "", "", "\\a", "\\b", "", "", "\\v",
                                                    "\\f", "", "", "", "", "", "", "", "", "", "", "", "",
                                                    "", "", "\\e"};
    const auto u = static_cast<unsigned char>(c);
    if (u < std::size(kEscapes) && !kEscapes[u].empty())
      return "the pattern holds a control character (" + std::string(kEscapes[u]) +
             " in a double-quoted YAML string is one, not a regular expression escape): write regular "
             "expressions in single quotes ('\\bGET\\b') or double each backslash";
  }
  RE2 re(pattern, RE2::Quiet);
  if (re.ok()) return "";
  std::string problem = "invalid regular expression: " + re.error();
  // What people bring from PCRE, Onigmo (Fluent Bit) and Java.
  if (pattern.find("(?=") != std::string::npos || pattern.find("(?!") != std::string::npos ||
      pattern.find("(?<=") != std::string::npos || pattern.find("(?<!") != std::string::npos)
    problem += "; RE2 has no lookahead or lookbehind (it matches in linear time): match the text itself instead";
  else if (pattern.find("(?<") != std::string::npos)
    problem += "; RE2 writes a named group as (?P<name>...)";
  else if (re.error_code() == RE2::ErrorBadEscape && RE2::PartialMatch(pattern, R"(\\[1-9])"))
    problem += "; RE2 has no backreferences";
  return problem;
}

void WarnIfRelative(const YAML::Node& at, const std::string& path, const ParseContext& ctx) {
  if (path.empty() || path.front() == '/') return;
  ctx.Warning(at, "`" + ctx.path + "` is a relative path (" + path + "): it is taken from the directory the agent "
                  "starts in, not the config file's (the Debian service starts in /)",
              "write an absolute path");
}

YAML::Node KeyNode(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return map;
  for (auto it = map.begin(); it != map.end(); ++it)
    if (it->first.IsScalar() && it->first.Scalar() == key) return YAML::Node(it->first);
  return map;
}

}  // namespace tributary::config
