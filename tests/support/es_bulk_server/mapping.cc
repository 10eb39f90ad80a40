#include "tests/support/es_bulk_server/mapping.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

namespace es_test {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

struct TypeName {
  FieldType type;
  std::string_view name;
};
constexpr TypeName kTypes[] = {
    {FieldType::kLong, "long"},       {FieldType::kInteger, "integer"}, {FieldType::kShort, "short"},
    {FieldType::kByte, "byte"},       {FieldType::kDouble, "double"},   {FieldType::kFloat, "float"},
    {FieldType::kBoolean, "boolean"}, {FieldType::kKeyword, "keyword"}, {FieldType::kText, "text"},
    {FieldType::kDate, "date"},       {FieldType::kObject, "object"},
};

constexpr std::string_view kDateFormat = "strict_date_optional_time||epoch_millis";
constexpr size_t kPreviewLimit = 100;

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses `n` digits at s[*pos] into *value.
bool take_digits(std::string_view s, size_t* pos, size_t n, int* value) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *value = v;
  return true;
}

int days_in_month(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// A decimal number as Java's Double.parseDouble would take it (no hex, no
// surrounding junk). Returns false for anything else.
bool parse_decimal(std::string_view s, double* out) {
  if (s.empty() || s.size() > 64) return false;
  size_t i = 0;
  if (s[i] == '+' || s[i] == '-') ++i;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != s.size()) return false;
  const std::string copy(s);
  *out = std::strtod(copy.c_str(), nullptr);
  return std::isfinite(*out);
}

std::string truncate_utf8(std::string_view s, size_t limit) {
  if (s.size() <= limit) return std::string(s);
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::string preview(element v) {
  std::string_view str;
  if (v.type() == element_type::STRING && v.get_string().get(str) == simdjson::SUCCESS) {
    return truncate_utf8(str, kPreviewLimit);
  }
  return truncate_utf8(simdjson::minify(v), kPreviewLimit);
}

Json cause(std::string_view type, std::string reason) {
  return Json::object().add("type", type).add("reason", std::move(reason));
}

Json parse_failure(Json caused_by) {
  return cause("mapper_parsing_exception", "failed to parse").add("caused_by", std::move(caused_by));
}

// Walks one document, stopping at the first problem (as Elasticsearch does).
class Checker {
 public:
  Checker(const Mapping& mapping, bool data_stream, std::string_view id)
      : mapping_(mapping), data_stream_(data_stream), id_(id) {}

  std::optional<Json> run(element root) {
    simdjson::dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS) {
      return parse_failure(cause("illegal_argument_exception", "Malformed content, must start with an object"));
    }
    std::string path;
    if (!walk_object(obj, &path)) return std::move(error_);
    if (data_stream_) {
      element ts;
      if (obj.at_key("@timestamp").get(ts) != simdjson::SUCCESS || ts.is_null()) {
        return parse_failure(
            cause("illegal_argument_exception", "data stream timestamp field [@timestamp] is missing"));
      }
      simdjson::dom::array arr;
      if (ts.get_array().get(arr) == simdjson::SUCCESS && arr.size() > 1) {
        return parse_failure(cause("illegal_argument_exception",
                                   "data stream timestamp field [@timestamp] encountered multiple values"));
      }
    }
    return std::nullopt;
  }

 private:
  bool walk_object(simdjson::dom::object obj, std::string* path) {
    std::vector<std::string_view> keys;
    for (auto kv : obj) keys.push_back(kv.key);
    std::vector<std::string_view> sorted = keys;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); ++i) {
      if (sorted[i] == sorted[i - 1]) {
        return fail(parse_failure(cause("json_parse_exception", "Duplicate field '" + std::string(sorted[i]) + "'")));
      }
    }
    const size_t base = path->size();
    for (auto kv : obj) {
      const std::string_view key = kv.key;
      if (key.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return fail(cause("mapper_parsing_exception", "Field name cannot contain only whitespace: [" +
                                                          (base ? *path + "." : std::string()) + std::string(key) +
                                                          "]"));
      }
      if (key.front() == '.' || key.back() == '.' || key.find("..") != std::string_view::npos) {
        return fail(cause("illegal_argument_exception",
                          "object field starting or ending with a [.] makes object resolution ambiguous: [" +
                              std::string(key) + "]"));
      }
      if (base) path->push_back('.');
      path->append(key);
      if (!mapping_.empty() && key.find('.') != std::string_view::npos && !check_dotted_prefixes(*path, base)) {
        return false;
      }
      const bool ok = check_value(kv.value, path);
      path->resize(base);
      if (!ok) return false;
    }
    return true;
  }

  // A dotted key ("a.b") may reach below a field mapped as a leaf ("a").
  bool check_dotted_prefixes(const std::string& path, size_t base) {
    for (size_t dot = path.find('.', base + 1); dot != std::string::npos; dot = path.find('.', dot + 1)) {
      const FieldType* type = mapping_.find(std::string_view(path).substr(0, dot));
      if (type && *type != FieldType::kObject) {
        return fail(cause("illegal_argument_exception", "Could not dynamically add mapping for field [" + path +
                                                            "]. Existing mapping for [" + path.substr(0, dot) +
                                                            "] must be of type object but found [" +
                                                            std::string(field_type_name(*type)) + "]."));
      }
    }
    return true;
  }

  bool check_value(element v, std::string* path) {
    const FieldType* type = mapping_.find(*path);
    FieldType implicit = FieldType::kDate;
    if (!type && data_stream_ && *path == "@timestamp") type = &implicit;
    if (type) return check_typed(v, *type, path);
    switch (v.type()) {
      case element_type::OBJECT:
        return walk_object(v.get_object().value_unsafe(), path);
      case element_type::ARRAY: {
        const simdjson::dom::array elements = v.get_array().value_unsafe();
        for (element e : elements) {
          if (!check_value(e, path)) return false;
        }
        return true;
      }
      case element_type::NULL_VALUE:
        return true;
      default:
        if (mapping_.is_parent(*path)) {
          return fail(cause("mapper_parsing_exception", "object mapping for [" + *path + "] tried to parse field [" +
                                                            *path + "] as object, but found a concrete value"));
        }
        return true;
    }
  }

  bool check_typed(element v, FieldType type, std::string* path) {
    const element_type t = v.type();
    if (t == element_type::NULL_VALUE) return true;
    if (t == element_type::ARRAY) {
      const simdjson::dom::array elements = v.get_array().value_unsafe();
      for (element e : elements) {
        if (!check_typed(e, type, path)) return false;
      }
      return true;
    }
    if (type == FieldType::kObject) {
      if (t == element_type::OBJECT) return walk_object(v.get_object().value_unsafe(), path);
      return fail(cause("mapper_parsing_exception", "object mapping for [" + *path + "] tried to parse field [" +
                                                        *path + "] as object, but found a concrete value"));
    }
    std::optional<Json> problem = value_problem(v, type);
    if (!problem) return true;
    Json c =
        cause("mapper_parsing_exception", "failed to parse field [" + *path + "] of type [" +
                                              std::string(field_type_name(type)) + "] in document with id '" +
                                              std::string(id_) + "'. Preview of field's value: '" + preview(v) + "'");
    c.add("caused_by", std::move(*problem));
    return fail(std::move(c));
  }

  // Why `v` (not null, not an array) cannot be a value of `type`, if it can't.
  static std::optional<Json> value_problem(element v, FieldType type) {
    const element_type t = v.type();
    if (t == element_type::OBJECT) {
      return cause("illegal_state_exception", "Can't get text on a START_OBJECT");
    }
    std::string_view str;
    const bool is_string = t == element_type::STRING && v.get_string().get(str) == simdjson::SUCCESS;
    switch (type) {
      case FieldType::kKeyword:
      case FieldType::kText:
        return std::nullopt;
      case FieldType::kBoolean:
        if (t == element_type::BOOL) return std::nullopt;
        if (is_string && (str == "true" || str == "false" || str.empty())) return std::nullopt;
        return cause("illegal_argument_exception",
                     "Failed to parse value [" + preview(v) + "] as only [true] or [false] are allowed.");
      case FieldType::kDate:
        if (t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE) return std::nullopt;
        if (is_string && (is_strict_date_optional_time(str) || all_digits(str) ||
                          (str.size() > 1 && str[0] == '-' && all_digits(str.substr(1))))) {
          return std::nullopt;
        }
        return cause("illegal_argument_exception",
                     "failed to parse date field [" + preview(v) + "] with format [" + std::string(kDateFormat) + "]");
      default:
        break;
    }
    // Numeric types: numbers and numeric strings (coerce), fractions truncated
    // for the integer types, within the type's range.
    double d = 0;
    bool integral_exact = false;
    int64_t i64 = 0;
    if (t == element_type::INT64) {
      i64 = v.get_int64().value_unsafe();
      d = static_cast<double>(i64);
      integral_exact = true;
    } else if (t == element_type::UINT64) {
      d = static_cast<double>(v.get_uint64().value_unsafe());
    } else if (t == element_type::DOUBLE) {
      d = v.get_double().value_unsafe();
    } else if (is_string) {
      if (!parse_decimal(str, &d)) {
        return cause("number_format_exception", "For input string: \"" + truncate_utf8(str, kPreviewLimit) + "\"");
      }
    } else {  // boolean
      const bool b = v.get_bool().value_unsafe();
      return cause("illegal_argument_exception", std::string("Current token (") + (b ? "VALUE_TRUE" : "VALUE_FALSE") +
                                                     ") not numeric, can not use numeric value accessors");
    }
    double lo, hi;
    std::string_view range_name;
    switch (type) {
      case FieldType::kLong:
        if (integral_exact) return std::nullopt;
        lo = -9223372036854775808.0, hi = 9223372036854775807.0, range_name = "long";
        break;
      case FieldType::kInteger:
        lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max(), range_name = "integer";
        break;
      case FieldType::kShort:
        lo = std::numeric_limits<int16_t>::min(), hi = std::numeric_limits<int16_t>::max(), range_name = "short";
        break;
      case FieldType::kByte:
        lo = std::numeric_limits<int8_t>::min(), hi = std::numeric_limits<int8_t>::max(), range_name = "byte";
        break;
      case FieldType::kFloat:
        if (std::fabs(d) > std::numeric_limits<float>::max()) {
          return cause("illegal_argument_exception",
                       "[float] supports only finite values, but got [" + preview(v) + "]");
        }
        return std::nullopt;
      default:  // double
        return std::nullopt;
    }
    const double truncated = std::trunc(d);
    if (truncated < lo || truncated >= hi + 1) {
      return cause("illegal_argument_exception", "Value [" + preview(v) + "] is out of range for " +
                                                     (range_name == "integer" ? "an " : "a ") +
                                                     std::string(range_name));
    }
    return std::nullopt;
  }

  bool fail(Json error) {
    error_ = std::move(error);
    return false;
  }

  const Mapping& mapping_;
  const bool data_stream_;
  const std::string_view id_;
  std::optional<Json> error_;
};

}  // namespace

bool parse_field_type(std::string_view name, FieldType* out) {
  for (const auto& t : kTypes) {
    if (t.name == name) {
      *out = t.type;
      return true;
    }
  }
  return false;
}

std::string_view field_type_name(FieldType type) {
  for (const auto& t : kTypes) {
    if (t.type == type) return t.name;
  }
  return "unknown";
}

void Mapping::set(const std::string& path, FieldType type) {
  fields_[path] = type;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
    parents_.insert(path.substr(0, dot));
  }
}

const FieldType* Mapping::find(std::string_view path) const {
  auto it = fields_.find(path);
  return it == fields_.end() ? nullptr : &it->second;
}

std::optional<Json> check_document(element root, const Mapping& mapping, bool data_stream, std::string_view id) {
  return Checker(mapping, data_stream, id).run(root);
}

bool is_strict_date_optional_time(std::string_view s) {
  size_t pos = 0;
  int year, month = 1, day = 1;
  if (!take_digits(s, &pos, 4, &year)) return false;
  if (pos < s.size() && s[pos] == '-') {
    ++pos;
    if (!take_digits(s, &pos, 2, &month) || month < 1 || month > 12) return false;
    if (pos < s.size() && s[pos] == '-') {
      ++pos;
      if (!take_digits(s, &pos, 2, &day) || day < 1 || day > days_in_month(year, month)) return false;
    }
  }
  if (pos == s.size()) return true;
  if (s[pos] != 'T') return false;
  ++pos;
  int hour, minute = 0, second = 0;
  if (!take_digits(s, &pos, 2, &hour) || hour > 23) return false;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!take_digits(s, &pos, 2, &minute) || minute > 59) return false;
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!take_digits(s, &pos, 2, &second) || second > 59) return false;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos, ++digits;
        if (digits < 1 || digits > 9) return false;
      }
    }
  }
  if (pos == s.size()) return true;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  ++pos;
  int oh, om = 0;
  if (!take_digits(s, &pos, 2, &oh) || oh > 18) return false;
  if (pos == s.size()) return true;
  if (s[pos] == ':') ++pos;
  if (!take_digits(s, &pos, 2, &om) || om > 59) return false;
  return pos == s.size();
}

}  // namespace es_test
