#pragma once
// Option tables: each component declares its options once, and that one
// declaration drives YAML parsing, validation and the reference docs.
//
//   struct Config {
//     std::string format = "apache_common";
//     int64_t count = 0;
//     static const Schema<Config>& schema();
//   };
//   const Schema<Config>& Config::schema() {
//     static const Schema<Config> s = [] {
//       Schema<Config> s;
//       s.Field("format", &Config::format, "Line format.").OneOf({"apache_common", "json"});
//       s.Field("count", &Config::count, "Events to emit; 0 = unlimited.").Min(0);
//       return s;
//     }();
//     return s;
//   }
//
// Defaults are the struct's member initializers. Supported member types:
// std::string, bool, int64_t, int, uint64_t, double, ByteSize, Millis,
// Seconds, std::optional<T>, std::vector<T>, std::map<std::string, T>,
// YAML::Node (raw, parsed by the component) and any struct with its own
// static schema() (nested tables). Unknown keys are errors with a
// "did you mean" hint; every problem is reported, not just the first.
//
// A Schema is immutable after construction and safe to share across threads.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/diagnostics.h"

namespace tributary::config {

// A size in bytes: an integer, or a string with a unit ("64MiB", "2M", "512k").
struct ByteSize {
  uint64_t bytes = 0;
  bool operator==(const ByteSize&) const = default;
};
// Durations: a bare integer is in the unit of the type (the option's name
// says it: *_ms, *_secs); a string may carry its own ("500ms", "2s", "1m").
// Both hold a whole number of milliseconds, at most kMaxDurationMs.
struct Millis {
  int64_t ms = 0;
  std::chrono::milliseconds get() const { return std::chrono::milliseconds(ms); }
  bool operator==(const Millis&) const = default;
};
struct Seconds {
  double secs = 0;
  std::chrono::milliseconds get() const {
    return std::chrono::milliseconds(std::llround(secs * 1000));
  }
  bool operator==(const Seconds&) const = default;
};

// An RE2 pattern, checked when the config is parsed (errors point at it).
struct Regex {
  std::string pattern;
  bool operator==(const Regex&) const = default;
};

bool ParseByteSize(std::string_view s, uint64_t* out);
// A size as a user writes it: a whole number of the unit that gives the
// smallest one ("1MiB", "4KiB", "4GB"), else bytes ("1536").
std::string FormatByteSize(uint64_t bytes);
// Parses "250ms", "2s", "1.5m", "1h"; `unit_ms` is the unit of a bare number.
// False if `s` is not a duration, is negative or is longer than
// kMaxDurationMs.
bool ParseDuration(std::string_view s, double unit_ms, double* out_ms);
// The longest duration an option takes: 100 years. The runtime adds
// durations to clock readings held in int64 nanoseconds (which end 292
// years after their epoch): a longer one would wrap around into the past,
// a timeout that has expired at once. The runtime's resolution is 1 ms.
inline constexpr double kMaxDurationMs = 36500.0 * 86400 * 1000;
inline constexpr std::string_view kMaxDurationText = "36500d (100 years)";

// What YAML 1.2's core schema makes of a plain (unquoted) scalar
// (yaml.org/spec/1.2.2, 10.3.2):
//   null   null | Null | NULL | ~ | (empty)
//   bool   true | True | TRUE | false | False | FALSE
//   int    [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
//   float  [-+]?(\.[0-9]+ | [0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
//          | [-+]?(\.inf | \.Inf | \.INF) | \.nan | \.NaN | \.NAN
//   else a string.
// An int beyond int64_t is a float (as JSON parsers read one), and so is a
// float literal beyond a double's range (infinite). yaml-cpp leaves this to
// us: it hands every scalar over as text. The config options, add_fields'
// values, conditions' operands and `tests:` inputs all resolve through it.
struct CoreScalar {
  enum class Kind { kString, kNull, kBool, kInt, kFloat };
  Kind kind = Kind::kString;
  bool b = false;
  int64_t i = 0;
  double d = 0;
};
CoreScalar ResolveCoreScalar(std::string_view s);
// A core-schema int (decimal, 0o octal or 0x hex), as its magnitude and
// sign; false if `s` is none or the magnitude exceeds 64 bits.
bool ParseCoreInt(std::string_view s, uint64_t* magnitude, bool* negative);

// Where parsing is: the file and the dotted option path, for messages.
struct ParseContext {
  Diagnostics* diag;
  std::string file;
  std::string path;  // e.g. "sinks.out.buffer"

  ParseContext Child(std::string_view key) const {
    return {diag, file, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  void Error(const YAML::Node& at, std::string message, std::string hint = {}) const {
    diag->Error(LocationOf(at, file), std::move(message), std::move(hint));
  }
  void Warning(const YAML::Node& at, std::string message, std::string hint = {}) const {
    diag->Warning(LocationOf(at, file), std::move(message), std::move(hint));
  }
};

// One row of the reference docs.
struct OptionDoc {
  std::string name;
  std::string type;
  std::string default_value;  // "" when required or no meaningful default
  std::string doc;
  bool required = false;
  bool secret = false;
  std::vector<std::string> choices;
  std::string min, max;  // bounds as a user writes the value; "" if none
  const class SchemaBase* nested = nullptr;  // sub-table, documented as name.sub
};

class SchemaBase {
 public:
  virtual ~SchemaBase() = default;
  virtual std::vector<OptionDoc> Docs() const = 0;
  std::vector<std::string> Names() const {
    std::vector<std::string> n;
    for (const auto& d : Docs()) n.push_back(d.name);
    return n;
  }
  // The dotted path of an option called `key` in a sub-table ("bulk.index"
  // for `index`), or "": where an unknown option may belong.
  std::string NestedPath(const std::string& key) const {
    for (const auto& d : Docs()) {
      if (d.nested == nullptr) continue;
      for (const auto& sub : d.nested->Docs())
        if (sub.name == key) return d.name + "." + key;
      if (std::string deeper = d.nested->NestedPath(key); !deeper.empty()) return d.name + "." + deeper;
    }
    return "";
  }
};

// ---- Value decoding --------------------------------------------------------

template <typename T, typename = void>
struct HasSchema : std::false_type {};
template <typename T>
struct HasSchema<T, std::void_t<decltype(T::schema())>> : std::true_type {};

template <typename T>
struct Decoder;  // specialized below: Decode(node, T*, ctx) -> bool, TypeName(), Format(T)

std::string ScalarText(const YAML::Node& n);  // the scalar as written
bool ExpectScalar(const YAML::Node& n, const ParseContext& ctx, std::string_view type);

template <>
struct Decoder<std::string> {
  static bool Decode(const YAML::Node& n, std::string* out, const ParseContext& ctx);
  static std::string TypeName() { return "string"; }
  static std::string Format(const std::string& v) { return v.empty() ? "" : "\"" + v + "\""; }
};
template <>
struct Decoder<bool> {
  static bool Decode(const YAML::Node& n, bool* out, const ParseContext& ctx);
  static std::string TypeName() { return "bool"; }
  static std::string Format(bool v) { return v ? "true" : "false"; }
};
template <>
struct Decoder<int64_t> {
  static bool Decode(const YAML::Node& n, int64_t* out, const ParseContext& ctx);
  static std::string TypeName() { return "integer"; }
  static std::string Format(int64_t v) { return std::to_string(v); }
};
template <>
struct Decoder<int> {
  static bool Decode(const YAML::Node& n, int* out, const ParseContext& ctx);
  static std::string TypeName() { return "integer"; }
  static std::string Format(int v) { return std::to_string(v); }
};
template <>
struct Decoder<uint64_t> {
  static bool Decode(const YAML::Node& n, uint64_t* out, const ParseContext& ctx);
  static std::string TypeName() { return "integer"; }
  static std::string Format(uint64_t v) { return std::to_string(v); }
};
template <>
struct Decoder<double> {
  static bool Decode(const YAML::Node& n, double* out, const ParseContext& ctx);
  static std::string TypeName() { return "number"; }
  static std::string Format(double v);
};
template <>
struct Decoder<ByteSize> {
  static bool Decode(const YAML::Node& n, ByteSize* out, const ParseContext& ctx);
  static std::string TypeName() { return "size"; }
  static std::string Format(ByteSize v) { return FormatByteSize(v.bytes); }
};
template <>
struct Decoder<Millis> {
  static bool Decode(const YAML::Node& n, Millis* out, const ParseContext& ctx);
  static std::string TypeName() { return "duration (ms)"; }
  static std::string Format(Millis v) { return std::to_string(v.ms); }
};
template <>
struct Decoder<Seconds> {
  static bool Decode(const YAML::Node& n, Seconds* out, const ParseContext& ctx);
  static std::string TypeName() { return "duration (s)"; }
  static std::string Format(Seconds v) { return Decoder<double>::Format(v.secs); }
};
template <>
struct Decoder<Regex> {
  static bool Decode(const YAML::Node& n, Regex* out, const ParseContext& ctx);
  static std::string TypeName() { return "regex"; }
  static std::string Format(const Regex& v) { return v.pattern.empty() ? "" : "'" + v.pattern + "'"; }
};
template <>
struct Decoder<YAML::Node> {
  static bool Decode(const YAML::Node& n, YAML::Node* out, const ParseContext&) {
    *out = n;
    return true;
  }
  static std::string TypeName() { return "any"; }
  static std::string Format(const YAML::Node& n) { return n.IsDefined() && !n.IsNull() ? "" : ""; }
};
template <typename T>
struct Decoder<std::optional<T>> {
  static bool Decode(const YAML::Node& n, std::optional<T>* out, const ParseContext& ctx) {
    if (n.IsNull()) {
      out->reset();
      return true;
    }
    T v{};
    if (out->has_value()) v = **out;
    if (!Decoder<T>::Decode(n, &v, ctx)) return false;
    *out = std::move(v);
    return true;
  }
  static std::string TypeName() { return Decoder<T>::TypeName(); }
  static std::string Format(const std::optional<T>& v) { return v ? Decoder<T>::Format(*v) : ""; }
};
template <typename T>
struct Decoder<std::vector<T>> {
  static bool Decode(const YAML::Node& n, std::vector<T>* out, const ParseContext& ctx) {
    if (n.IsScalar()) {  // one item: `include: /var/log/app.log` for `include: [/var/log/app.log]`
      T v{};
      if (!Decoder<T>::Decode(n, &v, ctx)) return false;
      out->assign(1, std::move(v));
      return true;
    }
    if (!n.IsSequence()) {
      ctx.Error(n, "`" + ctx.path + "` must be a list of " + Decoder<T>::TypeName(),
                "write it as [a, b] or one `- item` per line");
      return false;
    }
    out->clear();
    bool ok = true;
    for (size_t i = 0; i < n.size(); ++i) {
      T v{};
      if (Decoder<T>::Decode(n[i], &v, ctx.Child("[" + std::to_string(i) + "]")))
        out->push_back(std::move(v));
      else
        ok = false;
    }
    return ok;
  }
  static std::string TypeName() { return "list of " + Decoder<T>::TypeName(); }
  static std::string Format(const std::vector<T>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Decoder<T>::Format(v[i]);
    return s + "]";
  }
};
template <typename T>
struct Decoder<std::map<std::string, T>> {
  static bool Decode(const YAML::Node& n, std::map<std::string, T>* out, const ParseContext& ctx) {
    if (!n.IsMap()) {
      ctx.Error(n, "`" + ctx.path + "` must be a map of name: " + Decoder<T>::TypeName());
      return false;
    }
    out->clear();
    bool ok = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      T v{};
      if (Decoder<T>::Decode(it->second, &v, ctx.Child(key)))
        (*out)[key] = std::move(v);
      else
        ok = false;
    }
    return ok;
  }
  static std::string TypeName() { return "map of " + Decoder<T>::TypeName(); }
  static std::string Format(const std::map<std::string, T>& v) { return v.empty() ? "{}" : ""; }
};

template <typename T>
struct IsList : std::false_type {};
template <typename T>
struct IsList<std::vector<T>> : std::true_type {};
template <typename T>
struct IsMap : std::false_type {};
template <typename T>
struct IsMap<std::map<std::string, T>> : std::true_type {};

// A warning at `at` when `path` (the value of option `ctx.path`) is
// relative: it is taken from the directory the agent starts in, which for
// the Debian service is `/`, not the config file's.
void WarnIfRelative(const YAML::Node& at, const std::string& path, const ParseContext& ctx);

// The key node of `key` in a YAML map, for errors about the key itself
// (an unknown name); the map itself if it is not there.
YAML::Node KeyNode(const YAML::Node& map, std::string_view key);

// Runs `check` on each item of `v` alone, a one-item list or map, and
// reports each that fails at the item's node in `n` (the node `v` was
// decoded from); false if none fails alone.
template <typename T>
bool CheckItems(const T& v, const YAML::Node& n, const ParseContext& ctx,
                const std::function<std::string(const void*)>& check) {
  bool any = false;
  if constexpr (IsList<T>::value) {
    if (!n.IsSequence() || n.size() != v.size()) return false;  // one item written alone: n is the item
    for (size_t i = 0; i < v.size(); ++i) {
      const T one{v[i]};
      std::string problem = check(&one);
      if (problem.empty()) continue;
      ctx.Error(n[i], "`" + ctx.path + "[" + std::to_string(i) + "]`: " + problem);
      any = true;
    }
  } else {
    if (!n.IsMap()) return false;
    for (auto it = n.begin(); it != n.end(); ++it) {
      auto found = v.find(it->first.Scalar());
      if (found == v.end()) continue;
      const T one{*found};
      std::string problem = check(&one);
      if (problem.empty()) continue;
      ctx.Error(it->first, "`" + ctx.path + "`: " + problem);
      any = true;
    }
  }
  return any;
}

// ---- The table -------------------------------------------------------------

template <typename C>
class Schema : public SchemaBase {
 public:
  // The builder for one option; returned by Field() to add constraints.
  class Option {
   public:
    Option& Required() {
      doc_.required = true;
      return *this;
    }
    Option& Secret() {
      doc_.secret = true;
      return *this;
    }
    // Allowed values of a string option.
    Option& OneOf(std::vector<std::string> choices) {
      doc_.choices = std::move(choices);
      return *this;
    }
    // Bounds of a numeric option (inclusive).
    Option& Min(double v) {
      min_ = v;
      doc_.min = format_bound_(v);
      return *this;
    }
    Option& Max(double v) {
      max_ = v;
      doc_.max = format_bound_(v);
      return *this;
    }
    // A custom check on the decoded value: returns "" if fine, else the
    // problem, reported at the option's location. For a list or a map, the
    // checks are also run on each item alone when the whole fails: an item
    // that fails alone is reported at its own line (and every such item),
    // the option's first line only when no single item is at fault ("must
    // list at least one").
    template <typename T>
    Option& Check(std::function<std::string(const T&)> fn) {
      auto prev = check_;
      check_ = [fn, prev](const void* v) {
        if (prev) {
          std::string p = prev(v);
          if (!p.empty()) return p;
        }
        return fn(*static_cast<const T*>(v));
      };
      if constexpr (IsList<T>::value || IsMap<T>::value) {
        check_items_ = [check = check_](const void* v, const YAML::Node& n, const ParseContext& ctx) {
          return CheckItems(*static_cast<const T*>(v), n, ctx, check);
        };
      }
      return *this;
    }
    // A string option that also takes a list, joined with `sep`
    // (`bootstrap_servers: [a:9092, b:9092]` for "a:9092,b:9092").
    Option& JoinsList(std::string sep) {
      doc_.type += " or list of string";
      decode_ = [decode = decode_, sep](const YAML::Node& n, C* c, const ParseContext& ctx) {
        if (!n.IsSequence()) return decode(n, c, ctx);
        std::string joined;
        for (const auto& item : n) {
          if (!item.IsScalar()) {
            ctx.Error(item, "`" + ctx.path + "` must be a string or a list of strings");
            return false;
          }
          joined += (joined.empty() ? "" : sep) + item.Scalar();
        }
        return decode(YAML::Node(joined), c, ctx);
      };
      return *this;
    }
    Option& DefaultText(std::string text) {
      doc_.default_value = std::move(text);
      return *this;
    }

   private:
    friend class Schema;
    OptionDoc doc_;
    std::function<bool(const YAML::Node&, C*, const ParseContext&)> decode_;
    std::function<std::string(const void*)> check_;
    // Reports the items that fail check_ alone; false if none does.
    std::function<bool(const void*, const YAML::Node&, const ParseContext&)> check_items_;
    std::function<const void*(const C*)> address_;
    std::optional<double> min_, max_;
    std::function<std::optional<double>(const C*)> numeric_;
    std::string (*format_bound_)(double) = &Decoder<double>::Format;  // min_ and max_ in the option's syntax
  };

  template <typename T>
  Option& Field(std::string_view name, T C::*member, std::string_view doc) {
    auto opt = std::make_unique<Option>();
    opt->doc_.name = std::string(name);
    opt->doc_.doc = std::string(doc);
    const C defaults{};
    if constexpr (HasSchema<T>::value) {
      opt->doc_.type = "table";
      opt->doc_.nested = &T::schema();
      opt->decode_ = [member](const YAML::Node& n, C* c, const ParseContext& ctx) {
        return T::schema().Parse(n, &(c->*member), ctx);
      };
    } else {
      opt->doc_.type = Decoder<T>::TypeName();
      opt->doc_.default_value = Decoder<T>::Format(defaults.*member);
      opt->decode_ = [member](const YAML::Node& n, C* c, const ParseContext& ctx) {
        return Decoder<T>::Decode(n, &(c->*member), ctx);
      };
    }
    opt->address_ = [member](const C* c) -> const void* { return &(c->*member); };
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      opt->numeric_ = [member](const C* c) -> std::optional<double> {
        return static_cast<double>(c->*member);
      };
      if constexpr (std::is_integral_v<T>)  // 1000000, not 1e+06
        opt->format_bound_ = [](double v) { return std::to_string(static_cast<long long>(v)); };
    } else if constexpr (std::is_same_v<T, Millis>) {
      opt->numeric_ = [member](const C* c) -> std::optional<double> { return (c->*member).ms; };
      opt->format_bound_ = [](double v) { return std::to_string(static_cast<long long>(v)); };
    } else if constexpr (std::is_same_v<T, Seconds>) {
      opt->numeric_ = [member](const C* c) -> std::optional<double> { return (c->*member).secs; };
    } else if constexpr (std::is_same_v<T, ByteSize>) {
      opt->numeric_ = [member](const C* c) -> std::optional<double> {
        return static_cast<double>((c->*member).bytes);
      };
      opt->format_bound_ = [](double v) { return FormatByteSize(static_cast<uint64_t>(v)); };
    }
    options_.push_back(std::move(opt));
    return *options_.back();
  }

  // A check over the whole decoded table (cross-option rules). Report
  // through the context; `node` is the table's own node for locations.
  using Validator = std::function<void(const C&, const YAML::Node& node, const ParseContext&)>;
  void Validate(Validator v) { validators_.push_back(std::move(v)); }

  // Parses `node` (a map, or null for all defaults) into *out, which holds
  // the defaults already. Keys in `ignore` are skipped (handled by the
  // caller, e.g. `type` and `inputs`). Returns false if anything failed.
  bool Parse(const YAML::Node& node, C* out, const ParseContext& ctx,
             const std::vector<std::string>& ignore = {}) const {
    const bool defined = node.IsDefined();
    if (defined && !node.IsNull() && !node.IsMap()) {
      // `encoding: json` for `encoding: { codec: json }`: name the option
      // that takes such a value, else list the options.
      std::string hint = "its options: " + Join(Names());
      if (node.IsScalar()) {
        const std::string key = ctx.path.substr(ctx.path.rfind('.') + 1);
        for (const auto& d : Docs())
          if (std::find(d.choices.begin(), d.choices.end(), node.Scalar()) != d.choices.end())
            hint = "write `" + key + ": { " + d.name + ": " + node.Scalar() + " }`";
      }
      ctx.Error(node, "`" + (ctx.path.empty() ? std::string("config") : ctx.path) + "` must be a map of options",
                hint);
      return false;
    }
    size_t errors_before = ctx.diag->error_count();
    std::vector<bool> seen(options_.size(), false);
    std::set<std::string> suggested;  // what unknown keys were taken to mean
    if (defined && node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.Scalar();
        if (std::find(ignore.begin(), ignore.end(), key) != ignore.end()) continue;
        size_t idx = Find(key);
        if (idx == options_.size()) {
          std::vector<std::string> names = Names();
          std::vector<std::string> candidates = names;
          candidates.insert(candidates.end(), ignore.begin(), ignore.end());
          std::string near = ClosestMatch(key, candidates);
          if (near.empty()) near = NestedPath(key);
          if (!near.empty()) suggested.insert(near);
          // Another shipper's shorter name for ours (`units` for
          // `include_units`): the options it is a word of.
          std::vector<std::string> worded;
          if (near.empty())
            for (const auto& n : names)
              if (("_" + n + "_").find("_" + key + "_") != std::string::npos) worded.push_back("`" + n + "`");
          ctx.Error(it->first, "unknown option `" + ctx.Child(key).path + "`",
                    !near.empty()                          ? "did you mean `" + near + "`?"
                    : !worded.empty() && worded.size() < 3 ? "did you mean " + JoinOr(worded) + "?"
                                                           : "valid options: " + Join(names));
          continue;
        }
        seen[idx] = true;
        const Option& opt = *options_[idx];
        ParseContext child = ctx.Child(key);
        if (!opt.decode_(it->second, out, child)) continue;
        CheckOption(opt, it->second, *out, child);
      }
    }
    for (size_t i = 0; i < options_.size(); ++i) {
      // A misspelt required option (`endpoint` for `endpoints`) is
      // reported once, as unknown with the right name.
      if (options_[i]->doc_.required && !seen[i] && !suggested.count(options_[i]->doc_.name)) {
        const YAML::Node& at = defined ? node : YAML::Node();
        ctx.Error(at, "missing required option `" + ctx.Child(options_[i]->doc_.name).path + "`",
                  options_[i]->doc_.doc);
      }
    }
    if (ctx.diag->error_count() == errors_before)
      for (const auto& v : validators_) v(*out, node, ctx);
    return ctx.diag->error_count() == errors_before;
  }

  std::vector<OptionDoc> Docs() const override {
    std::vector<OptionDoc> d;
    for (const auto& o : options_) d.push_back(o->doc_);
    return d;
  }

 private:
  size_t Find(std::string_view key) const {
    for (size_t i = 0; i < options_.size(); ++i)
      if (options_[i]->doc_.name == key) return i;
    return options_.size();
  }
  static std::string JoinOr(const std::vector<std::string>& v) {
    return v.size() == 2 ? v[0] + " or " + v[1] : v.empty() ? "" : v[0];
  }
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s;
  }
  void CheckOption(const Option& opt, const YAML::Node& n, const C& c, const ParseContext& ctx) const {
    if (!opt.doc_.choices.empty()) {
      const auto* s = static_cast<const std::string*>(opt.address_(&c));
      if (opt.doc_.type == "string" &&
          std::find(opt.doc_.choices.begin(), opt.doc_.choices.end(), *s) == opt.doc_.choices.end()) {
        std::string near = ClosestMatch(*s, opt.doc_.choices);
        ctx.Error(n, "`" + ctx.path + "` must be one of: " + Join(opt.doc_.choices) +
                         (opt.doc_.secret || s->size() > 40 ? "" : " (got \"" + *s + "\")"),
                  near.empty() ? "" : "did you mean `" + near + "`?");
        return;
      }
    }
    if (opt.numeric_ && (opt.min_ || opt.max_)) {
      if (auto v = opt.numeric_(&c)) {
        if (opt.min_ && *v < *opt.min_) {
          ctx.Error(n, "`" + ctx.path + "` must be at least " + opt.format_bound_(*opt.min_));
          return;
        }
        if (opt.max_ && *v > *opt.max_) {
          ctx.Error(n, "`" + ctx.path + "` must be at most " + opt.format_bound_(*opt.max_));
          return;
        }
      }
    }
    if (opt.check_) {
      std::string problem = opt.check_(opt.address_(&c));
      if (!problem.empty() && !(opt.check_items_ && opt.check_items_(opt.address_(&c), n, ctx)))
        ctx.Error(n, "`" + ctx.path + "`: " + problem);
    }
  }

  std::vector<std::unique_ptr<Option>> options_;
  std::vector<Validator> validators_;
};

// A check for Option::Check<std::string>: compiles an RE2 pattern.
std::string CheckRegex(const std::string& pattern);

}  // namespace tributary::config
