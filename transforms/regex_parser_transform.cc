#include "transforms/regex_parser_transform.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>
#include <strings.h>

#include "agent/json.h"
#include "config/registry.h"

namespace tributary {

const config::Schema<RegexParserTransform::Config>& RegexParserTransform::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("field", &Config::field, "The string field to parse.")
        .Check<std::string>([](const std::string& f) { return f.empty() ? std::string("must not be empty") : ""; });
    s.Field("patterns", &Config::patterns,
            "RE2 patterns with named groups `(?P<name>...)`, tried in order; the first that matches wins.")
        .Required();
    s.Field("types", &Config::types,
            "Capture name → type: `string`, `int`, `float`, `bool`, `timestamp` (RFC 3339) or "
            "`timestamp\\|<format>` (strptime, `%f` for fractions, or rfc3339/unix/unix_ms).");
    s.Field("timezone", &Config::timezone,
            "Zone of timestamps whose format has no `%z`: `UTC`, `local`, an offset like `+02:00` or an IANA name like `Europe/Paris` (summer time applies).")
        .Check<std::string>(TimeZone::Check);
    s.Field("drop_field", &Config::drop_field, "Remove the parsed field after a successful parse.");
    s.Field("drop_failed", &Config::drop_failed,
            "Drop events that fail to parse; false passes them on unchanged. Failures are counted either way.");
    s.Validate([](const Config& c, const YAML::Node& node, const config::ParseContext& ctx) {
      if (c.patterns.empty()) ctx.Error(node["patterns"], "`" + ctx.path + ".patterns` must not be empty");
      std::set<std::string> names;
      const YAML::Node list = node["patterns"];
      for (size_t i = 0; i < c.patterns.size(); ++i) {
        // Each pattern's own problem, at its own line.
        const YAML::Node at = list.IsSequence() ? list[i] : list;
        const std::string where = "`" + ctx.path + ".patterns[" + std::to_string(i) + "]`";
        if (std::string problem = config::CheckRegex(c.patterns[i]); !problem.empty()) {
          ctx.Error(at, where + ": " + problem, "RE2 syntax: https://github.com/google/re2/wiki/Syntax");
          continue;
        }
        RE2 re(c.patterns[i], RE2::Quiet);
        if (re.NamedCapturingGroups().empty())
          ctx.Error(at, where + " has no named capture group", "name the parts to extract: (?P<status>\\d+)");
        if (re.CapturingGroupNames().size() != re.NamedCapturingGroups().size())
          ctx.Error(at, where + " names two groups alike", "each (?P<name>...) in a pattern needs a name of its own");
        for (const auto& [name, index] : re.NamedCapturingGroups()) names.insert(name);
      }
      for (const auto& [name, type] : c.types) {
        YAML::Node at = node["types"][name];
        std::string problem = CheckType(type);
        if (!problem.empty()) ctx.Error(at, "`" + ctx.path + ".types." + name + "`: " + problem);
        if (!names.empty() && !names.count(name)) {
          std::vector<std::string> v(names.begin(), names.end());
          std::string near = config::ClosestMatch(name, v);
          ctx.Error(config::KeyNode(node["types"], name),
                    "`" + ctx.path + ".types." + name + "` names no capture group of `patterns`",
                    near.empty() ? "" : "did you mean `" + near + "`?");
        }
      }
    });
    return s;
  }();
  return s;
}

Result<RegexParserTransform::Conversion> RegexParserTransform::ParseType(const std::string& type) {
  Conversion c;
  if (type == "string") c.kind = Conversion::Kind::kString;
  else if (type == "int" || type == "integer") c.kind = Conversion::Kind::kInt;
  else if (type == "float") c.kind = Conversion::Kind::kFloat;
  else if (type == "bool" || type == "boolean") c.kind = Conversion::Kind::kBool;
  else if (type == "timestamp" || type.rfind("timestamp|", 0) == 0) {
    c.kind = Conversion::Kind::kTimestamp;
    auto f = TimeFormat::Parse(type == "timestamp" ? std::string_view("rfc3339") : std::string_view(type).substr(10));
    if (!f.ok()) return f.status();
    c.format = std::move(f).value();
  } else {
    return Status::InvalidArgument("unknown type \"" + type +
                                   "\" (string, int, float, bool, timestamp or timestamp|<format>)");
  }
  return c;
}

std::string RegexParserTransform::CheckType(const std::string& type) {
  auto r = ParseType(type);
  return r.ok() ? "" : r.status().message();
}

bool RegexParserTransform::Convert(const Conversion& c, std::string_view s, const TimeZone& tz, Value* out) {
  switch (c.kind) {
    case Conversion::Kind::kString: *out = Value(s); return true;
    case Conversion::Kind::kInt: {
      std::string_view t = s;
      if (!t.empty() && t[0] == '+') t.remove_prefix(1);
      int64_t v;
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size()) return false;
      *out = Value(v);
      return true;
    }
    case Conversion::Kind::kFloat: {
      std::string_view t = s;
      if (!t.empty() && t[0] == '+') t.remove_prefix(1);
      double v;
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      // `inf` and `nan` are no number JSON can carry (they went out as null).
      if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size() || !std::isfinite(v)) return false;
      *out = Value(v);
      return true;
    }
    case Conversion::Kind::kBool: {
      auto is = [s](const char* w) { return s.size() == std::strlen(w) && strncasecmp(s.data(), w, s.size()) == 0; };
      if (is("true") || is("yes") || is("on") || is("1") || is("t") || is("y")) *out = Value(true);
      else if (is("false") || is("no") || is("off") || is("0") || is("f") || is("n")) *out = Value(false);
      else return false;
      return true;
    }
    case Conversion::Kind::kTimestamp: {
      Timestamp t;
      if (!c.format->Apply(s, tz, &t)) return false;
      *out = Value(t);
      return true;
    }
  }
  return false;
}

Result<std::unique_ptr<Transform>> RegexParserTransform::Build(const Config& config, BuildContext& ctx) {
  std::vector<Pattern> patterns;
  TimeZone tz;
  if (!TimeZone::Parse(config.timezone, &tz)) return Status::InvalidArgument("unknown time zone " + config.timezone);
  for (const auto& text : config.patterns) {
    RE2::Options opts;
    opts.set_log_errors(false);
    Pattern p;
    p.re = std::make_unique<RE2>(text, opts);
    if (!p.re->ok()) return Status::InvalidArgument("invalid pattern " + text + ": " + p.re->error());
    p.ngroups = 0;
    for (const auto& [name, index] : p.re->NamedCapturingGroups()) {
      Group g{index, name, {}};
      if (auto it = config.types.find(name); it != config.types.end()) {
        auto conv = ParseType(it->second);
        if (!conv.ok()) return conv.status();
        g.conversion = std::move(conv).value();
      }
      p.ngroups = std::max(p.ngroups, index);
      p.groups.push_back(std::move(g));
    }
    // Set fields in the order the groups appear in the pattern.
    std::sort(p.groups.begin(), p.groups.end(), [](const Group& a, const Group& b) { return a.index < b.index; });
    for (const Group& g : p.groups) {
      p.typed |= g.conversion.kind != Conversion::Kind::kString;
      p.name_filter |= KeyBit(g.name);
    }
    patterns.push_back(std::move(p));
  }
  return std::unique_ptr<Transform>(new RegexParserTransform(config, std::move(patterns), tz, ctx.metrics));
}

RegexParserTransform::RegexParserTransform(const Config& config, std::vector<Pattern> patterns, TimeZone tz,
                                           ComponentMetrics* m)
    : field_(config.field),
      drop_field_(config.drop_field),
      drop_failed_(config.drop_failed),
      tz_(tz),
      patterns_(std::move(patterns)),
      id_(m->id()),
      missing_(&m->Errors("field_missing", "processing")),
      mismatch_(&m->Errors("pattern_mismatch", "processing")),
      conversion_(&m->Errors("conversion_failed", "processing")),
      bad_utf8_(&m->Errors("invalid_utf8", "processing")),
      discarded_(&m->discarded_unintentional()) {
  for (const auto& p : patterns_) {
    max_groups_ = std::max(max_groups_, p.ngroups);
    max_named_ = std::max(max_named_, p.groups.size());
    for (const auto& g : p.groups) field_is_group_ |= g.name == field_;
  }
}

// Per-thread scratch, reused across events and batches (batches may be
// processed concurrently, so one set per thread).
struct RegexParserTransform::Scratch {
  std::vector<re2::StringPiece> caps;  // RE2's submatches
  std::vector<Value> scalars;          // per named group: its converted non-string value
  std::vector<int> slots;              // per named group: index of the event's field of that name, or -1
  std::string text;                    // a copy of the parsed field's text
  std::string repaired;                // the line with invalid UTF-8 replaced
};

namespace {

// RE2 (UTF-8 mode) matches nothing, not even `.`, against bytes that are
// not UTF-8. A line that fails to match and holds such bytes is matched
// again with each invalid byte replaced by U+FFFD.
void ReplaceInvalidUtf8(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n > 1 && !IsValidUtf8(s.substr(i, n))) ok = false;  // overlong, surrogate, > U+10FFFF
    if (ok) {
      out->append(s.data() + i, n);
      i += n;
    } else {
      out->append("\xEF\xBF\xBD");
      ++i;
    }
  }
}

}  // namespace

bool RegexParserTransform::ParseEvent(Event& e, Scratch& s, uint64_t* missing, uint64_t* mismatch,
                                      uint64_t* conversion, uint64_t* bad_utf8) {
  Fields& f = e.fields();
  // The field: a top-level key (its index kept for drop_field), else a
  // dotted path.
  const size_t field_index = f.index_of(field_);
  Value* v = field_index != Fields::npos ? &f.value(field_index) : e.get(field_);
  if (v == nullptr || !v->is_string()) {
    ++*missing;
    return false;
  }
  // Match the text in scratch, not in the event: the captures point into
  // it while the event's fields are overwritten, erased and appended, and
  // an erased field's buffer is reused by the next append (event.h). A
  // top-level field lends its string (a swap, nothing copied) and gets it
  // back unless drop_field removes it; a dotted path's field, or one that
  // a capture of the same name overwrites, is copied.
  std::string& text = s.text;
  const bool lent = field_index != Fields::npos && !field_is_group_;
  if (lent) text.swap(v->as_string());
  else detail::AssignText(text, v->as_string());
  auto give_back = [&] {
    if (lent) f.value(field_index).as_string().swap(text);
  };
  re2::StringPiece* caps = s.caps.data();
  // Called exactly as bench/raw_re2_loop.cc does. UNANCHORED is right for
  // any pattern; RE2 itself runs a pattern anchored with ^...$ as
  // ANCHOR_BOTH (straight to BitState/OnePass on short lines), so passing
  // that here would change nothing for such patterns.
  const Pattern* hit = nullptr;
  for (const Pattern& p : patterns_) {
    if (p.re->Match(text, 0, text.size(), RE2::UNANCHORED, caps, p.ngroups + 1)) {
      hit = &p;
      break;
    }
  }
  if (hit == nullptr && !IsValidUtf8(text)) {
    ReplaceInvalidUtf8(text, &s.repaired);
    ++*bad_utf8;
    for (const Pattern& p : patterns_) {
      if (p.re->Match(s.repaired, 0, s.repaired.size(), RE2::UNANCHORED, caps, p.ngroups + 1)) {
        hit = &p;
        break;
      }
    }
  }
  if (hit == nullptr) {
    give_back();
    ++*mismatch;
    return false;
  }
  const std::vector<Group>& groups = hit->groups;
  const size_t ng = groups.size();
  // Convert the typed captures first: a failure leaves the event as it was.
  if (hit->typed) {
    for (size_t i = 0; i < ng; ++i) {
      const Group& g = groups[i];
      const re2::StringPiece& sp = caps[g.index];
      if (g.conversion.kind == Conversion::Kind::kString || sp.data() == nullptr) continue;
      if (!Convert(g.conversion, std::string_view(sp.data(), sp.size()), tz_, &s.scalars[i])) {
        give_back();
        ++*conversion;
        return false;
      }
    }
  }
  if (drop_field_) {
    if (field_index != Fields::npos) f.erase_at(field_index);
    else e.remove(field_);
  }
  // Where each group goes: over the event's field of that name (found in
  // one pass over the event's keys), or appended at the end.
  int* slots = s.slots.data();
  std::fill(slots, slots + ng, -1);
  for (size_t k = 0; k < f.size(); ++k) {
    const std::string& key = f.key(k);
    if ((hit->name_filter & KeyBit(key)) == 0) continue;
    for (size_t i = 0; i < ng; ++i) {
      if (detail::SameKey(groups[i].name, key)) {
        if (slots[i] < 0) slots[i] = static_cast<int>(k);
        break;
      }
    }
  }
  for (size_t i = 0; i < ng; ++i) {
    const Group& g = groups[i];
    const re2::StringPiece& sp = caps[g.index];
    if (sp.data() == nullptr) continue;  // an optional group that did not take part
    const std::string_view sv(sp.data(), sp.size());
    const bool is_string = g.conversion.kind == Conversion::Kind::kString;
    if (slots[i] < 0) {
      if (is_string) f.append(g.name, sv);
      else f.append(g.name, std::move(s.scalars[i]));
      continue;
    }
    const size_t slot = static_cast<size_t>(slots[i]);
    if (!is_string) f.value(slot) = std::move(s.scalars[i]);
    else f.assign_at(slot, sv);
  }
  if (!drop_field_) give_back();
  return true;
}

void RegexParserTransform::Process(Batch& in, std::span<Batch> outputs) {
  thread_local Scratch scratch;
  Scratch& s = scratch;
  if (s.caps.size() < static_cast<size_t>(max_groups_) + 1) s.caps.resize(static_cast<size_t>(max_groups_) + 1);
  if (s.scalars.size() < max_named_) s.scalars.resize(max_named_);
  if (s.slots.size() < max_named_) s.slots.resize(max_named_);
  std::vector<Event>& events = in.mutable_events();
  uint64_t missing = 0, mismatch = 0, conversion = 0, bad_utf8 = 0;
  size_t out = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    bool ok = ParseEvent(events[i], s, &missing, &mismatch, &conversion, &bad_utf8);
    if (!ok && drop_failed_) continue;
    if (out != i) events[out] = std::move(events[i]);
    ++out;
  }
  if (bad_utf8) bad_utf8_->Increment(static_cast<double>(bad_utf8));
  const uint64_t failed = missing + mismatch + conversion;
  if (failed) {
    if (missing) missing_->Increment(static_cast<double>(missing));
    if (mismatch) mismatch_->Increment(static_cast<double>(mismatch));
    if (conversion) conversion_->Increment(static_cast<double>(conversion));
    if (drop_failed_) discarded_->Increment(static_cast<double>(events.size() - out));
    LogLimited(log_limiter_, LogLevel::kWarn, id_,
               std::to_string(failed) + " event(s) of a batch of " + std::to_string(events.size()) +
                   " failed to parse (field missing: " + std::to_string(missing) +
                   ", no pattern matched: " + std::to_string(mismatch) +
                   ", conversion failed: " + std::to_string(conversion) + ")" +
                   (drop_failed_ ? "; dropped" : "; passed on unchanged"));
  }
  events.resize(out);
  outputs[0] = std::move(in);
}

TRIBUTARY_REGISTER_TRANSFORM("regex_parser", RegexParserTransform);

}  // namespace tributary
