#include "transforms/condition.h"

#include <re2/re2.h>

#include <cctype>
#include <charconv>
#include <cmath>

#include "agent/json.h"
#include "config/diagnostics.h"
#include "transforms/add_fields_transform.h"

namespace tributary {

namespace {

enum class Op { kEq, kNe, kGt, kGte, kLt, kLte, kMatches, kExists, kContains };

struct OpName {
  const char* name;
  Op op;
  const char* symbol;
};
constexpr OpName kOps[] = {{"eq", Op::kEq, "=="},          {"ne", Op::kNe, "!="},
                           {"gt", Op::kGt, ">"},           {"gte", Op::kGte, ">="},
                           {"lt", Op::kLt, "<"},           {"lte", Op::kLte, "<="},
                           {"matches", Op::kMatches, "matches"}, {"exists", Op::kExists, "exists"},
                           {"contains", Op::kContains, "contains"}};

struct Comparison {
  Op op;
  Value operand;
  std::string operand_text;       // the operand as text (string compares)
  bool has_number = false;        // the operand is numeric (or a numeric string for ordering)
  double number = 0;
  bool has_time = false;          // the operand is an RFC 3339 string
  Timestamp time{};
  std::unique_ptr<RE2> re;        // matches
};

// A leading `+` is a number's sign, as YAML reads an operand (`+5`).
std::string_view WithoutPlus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.')) s.remove_prefix(1);
  return s;
}

bool ParseNumber(std::string_view s, double* out) {
  s = WithoutPlus(s);
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  // `NaN` and `inf` are words, not numbers: compared as strings.
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

bool ParseInt(std::string_view s, int64_t* out) {
  s = WithoutPlus(s);
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool Equal(const Value& v, const Comparison& c) {
  const Value& o = c.operand;
  switch (o.kind()) {
    case Value::Kind::kNull: return v.is_null();
    case Value::Kind::kInt:
      if (v.is_int()) return v.as_int() == o.as_int();
      [[fallthrough]];
    case Value::Kind::kDouble: {
      double d;
      if (v.to_double(&d)) return d == c.number;
      if (v.is_string()) {
        // The text as written in the config too: `eq: 0x1F` is the number
        // 31 (YAML 1.2), and also holds for a field that reads "0x1F".
        if (v.as_string() == c.operand_text) return true;
        int64_t i;
        if (o.is_int() && ParseInt(v.as_string(), &i)) return i == o.as_int();
        return ParseNumber(v.as_string(), &d) && d == c.number;
      }
      return false;
    }
    case Value::Kind::kBool:
      if (v.is_bool()) return v.as_bool() == o.as_bool();
      return v.is_string() && v.as_string() == c.operand_text;
    case Value::Kind::kString:
      if (v.is_string()) return v.as_string() == c.operand_text;
      if (v.is_timestamp() && c.has_time) return v.as_timestamp() == c.time;
      if (v.is_null()) return false;  // null has no text: it is not `''` (as in Vector)
      return v.to_text() == c.operand_text;
    default: return v == o;
  }
}

// Orders v against the operand: *r < 0, 0, > 0. False if incomparable.
bool Order(const Value& v, const Comparison& c, int* r) {
  auto cmp = [r](auto a, auto b) {
    *r = a < b ? -1 : (b < a ? 1 : 0);
    return true;
  };
  if (c.has_number) {
    if (v.is_int() && c.operand.is_int()) return cmp(v.as_int(), c.operand.as_int());
    double d;
    if (v.to_double(&d)) return cmp(d, c.number);
    if (v.is_string() && ParseNumber(v.as_string(), &d)) return cmp(d, c.number);
    if (!c.operand.is_string()) return false;
  }
  if (c.has_time && v.is_timestamp()) return cmp(v.as_timestamp(), c.time);
  if (c.operand.is_string() && v.is_string()) {
    int x = v.as_string().compare(c.operand_text);
    *r = x < 0 ? -1 : (x > 0 ? 1 : 0);
    return true;
  }
  return false;
}

bool Compare(const Value* v, const Comparison& c) {
  if (c.op == Op::kExists) return (v != nullptr) == c.operand.as_bool();
  if (v == nullptr) return c.op == Op::kNe;
  int r = 0;
  switch (c.op) {
    case Op::kEq: return Equal(*v, c);
    case Op::kNe: return !Equal(*v, c);
    case Op::kGt: return Order(*v, c, &r) && r > 0;
    case Op::kGte: return Order(*v, c, &r) && r >= 0;
    case Op::kLt: return Order(*v, c, &r) && r < 0;
    case Op::kLte: return Order(*v, c, &r) && r <= 0;
    case Op::kMatches:
      if (v->is_string()) return RE2::PartialMatch(v->as_string(), *c.re);
      if (v->is_null()) return false;  // no text, not even an empty one: `^$` does not hold
      return RE2::PartialMatch(v->to_text(), *c.re);
    case Op::kContains:
      if (v->is_string()) return v->as_string().find(c.operand_text) != std::string::npos;
      if (v->is_array()) {
        for (const Value& e : v->as_array())
          if (Equal(e, c)) return true;
      }
      return false;
    case Op::kExists: break;
  }
  return false;
}

}  // namespace

struct Condition::Node {
  enum class Kind { kAll, kAny, kNot, kCompare, kNever };
  Kind kind = Kind::kNever;
  std::vector<std::unique_ptr<Node>> children;
  std::string field;
  std::vector<Comparison> comparisons;

  bool Matches(const Event& e) const {
    switch (kind) {
      case Kind::kAll:
        for (const auto& c : children)
          if (!c->Matches(e)) return false;
        return true;
      case Kind::kAny:
        for (const auto& c : children)
          if (c->Matches(e)) return true;
        return false;
      case Kind::kNot: return !children[0]->Matches(e);
      case Kind::kCompare: {
        const Value* v = e.get(field);
        for (const auto& c : comparisons)
          if (!Compare(v, c)) return false;
        return true;
      }
      case Kind::kNever: return false;
    }
    return false;
  }

  void Append(std::string* out) const {
    switch (kind) {
      case Kind::kAll:
      case Kind::kAny: {
        if (children.empty()) {
          *out += kind == Kind::kAll ? "true" : "false";
          return;
        }
        *out += "(";
        for (size_t i = 0; i < children.size(); ++i) {
          if (i) *out += kind == Kind::kAll ? " and " : " or ";
          children[i]->Append(out);
        }
        *out += ")";
        return;
      }
      case Kind::kNot:
        *out += "not ";
        children[0]->Append(out);
        return;
      case Kind::kCompare:
        for (size_t i = 0; i < comparisons.size(); ++i) {
          if (i) *out += " and ";
          const Comparison& c = comparisons[i];
          const char* sym = "";
          for (const auto& o : kOps)
            if (o.op == c.op) sym = o.symbol;
          *out += field + " " + sym + " ";
          if (c.operand.is_string()) {
            *out += "'" + c.operand_text + "'";
          } else {
            AppendJson(c.operand, out);
          }
        }
        return;
      case Kind::kNever: *out += "false"; return;
    }
  }
};

Condition::Condition() : root_(std::make_unique<Node>()) {}
Condition::Condition(Condition&&) noexcept = default;
Condition& Condition::operator=(Condition&&) noexcept = default;
Condition::~Condition() = default;

bool Condition::Matches(const Event& event) const { return root_->Matches(event); }

std::string Condition::ToString() const {
  std::string s;
  root_->Append(&s);
  return s;
}

Value YamlToValue(const YAML::Node& node) {
  if (node.IsSequence()) {
    Array a;
    for (const auto& e : node) a.push_back(YamlToValue(e));
    return Value(std::move(a));
  }
  if (node.IsMap()) {
    Fields f;
    for (auto it = node.begin(); it != node.end(); ++it) f.set(it->first.Scalar(), YamlToValue(it->second));
    return Value(std::move(f));
  }
  if (!node.IsDefined()) return Value();
  return ScalarValue(node);
}

namespace {

const char* kConditionHint =
    "a condition is {field: <name>, <op>: <value>} with op one of eq, ne, gt, gte, lt, lte, matches, exists, "
    "contains; or {all: [...]}, {any: [...]}, {not: {...}}";

bool ParseNode(const YAML::Node& n, const config::ParseContext& ctx, Condition::Node* out);

bool ParseList(const YAML::Node& n, const config::ParseContext& ctx, Condition::Node* out) {
  bool ok = true;
  for (size_t i = 0; i < n.size(); ++i) {
    auto child = std::make_unique<Condition::Node>();
    config::ParseContext at{ctx.diag, ctx.file, ctx.path + "[" + std::to_string(i) + "]"};
    ok = ParseNode(n[i], at, child.get()) && ok;
    out->children.push_back(std::move(child));
  }
  return ok;
}

bool ParseComparison(const YAML::Node& n, const config::ParseContext& ctx, Condition::Node* out) {
  out->kind = Condition::Node::Kind::kCompare;
  bool ok = true;
  YAML::Node field = n["field"];
  if (!field.IsDefined()) {
    ctx.Error(n, "`" + ctx.path + "`: a comparison needs `field`", kConditionHint);
    ok = false;
  } else if (!field.IsScalar() || field.Scalar().empty()) {
    ctx.Error(field, "`" + ctx.path + ".field` must be a field name");
    ok = false;
  } else {
    out->field = field.Scalar();
  }
  std::vector<std::string> valid = {"field", "all", "any", "not"};
  for (const auto& o : kOps) valid.push_back(o.name);
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (key == "field") continue;
    const OpName* op = nullptr;
    for (const auto& o : kOps)
      if (key == o.name) op = &o;
    config::ParseContext at = ctx.Child(key);
    if (key == "all" || key == "any" || key == "not") {
      ctx.Error(it->first, "`" + at.path + "` cannot be combined with a comparison",
                "put the comparison inside the `" + key + "` list");
      ok = false;
      continue;
    }
    if (op == nullptr) {
      std::string near = config::ClosestMatch(key, valid);
      ctx.Error(it->first, "unknown condition key `" + at.path + "`",
                near.empty() ? std::string(kConditionHint) : "did you mean `" + near + "`?");
      ok = false;
      continue;
    }
    const YAML::Node v = it->second;  // a copy: it->second is a temporary
    Comparison c;
    c.op = op->op;
    if (!v.IsScalar() && !v.IsNull()) {
      at.Error(v, "`" + at.path + "` must be a single value (string, number, bool or null)");
      ok = false;
      continue;
    }
    c.operand = v.IsNull() ? Value() : ScalarValue(v);
    c.operand_text = v.IsNull() ? std::string() : v.Scalar();
    if (c.op != Op::kMatches && c.operand.is_double() && std::isnan(c.operand.as_double())) {
      at.Error(v, "`" + at.path + "` is " + v.Scalar() + ", YAML's not-a-number, which equals nothing, not even itself",
               "quote it ('" + v.Scalar() + "') to compare with the text");
      ok = false;
      continue;
    }
    switch (c.op) {
      case Op::kExists:
        if (!c.operand.is_bool()) {
          at.Error(v, "`" + at.path + "` must be true or false");
          ok = false;
          continue;
        }
        break;
      case Op::kMatches: {
        if (v.IsNull() || c.operand_text.empty()) {
          at.Error(v, "`" + at.path + "` must be a regular expression");
          ok = false;
          continue;
        }
        if (std::string problem = config::CheckRegex(c.operand_text); !problem.empty()) {
          at.Error(v, "`" + at.path + "`: " + problem, "RE2 syntax: https://github.com/google/re2/wiki/Syntax");
          ok = false;
          continue;
        }
        RE2::Options opts;
        opts.set_log_errors(false);
        c.re = std::make_unique<RE2>(c.operand_text, opts);
        break;
      }
      case Op::kGt:
      case Op::kGte:
      case Op::kLt:
      case Op::kLte:
        if (!c.operand.is_int() && !c.operand.is_double() && !c.operand.is_string()) {
          at.Error(v, "`" + at.path + "` must be a number, a string or an RFC 3339 time");
          ok = false;
          continue;
        }
        break;
      default: break;
    }
    if (c.operand.to_double(&c.number)) c.has_number = true;
    if (c.operand.is_string()) c.has_time = ParseRfc3339(c.operand_text, &c.time);
    // The event's `timestamp` is a time: against a string that is not one
    // (`yesterday`, a year past 2262) an order never holds, silently.
    // A warning, not an error: a parser may have put a string there.
    if (out->field == kTimestampField && c.operand.is_string() && !c.has_time &&
        (c.op == Op::kGt || c.op == Op::kGte || c.op == Op::kLt || c.op == Op::kLte)) {
      const bool dated = c.operand_text.size() >= 5 && std::isdigit(static_cast<unsigned char>(c.operand_text[0])) &&
                         c.operand_text[4] == '-';
      at.Warning(v, "`" + at.path + "`: `timestamp` holds a time, and " +
                        (dated ? std::string("this is not an RFC 3339 time it can hold (1677-09-22 to 2262-04-11)")
                               : std::string("this is not an RFC 3339 time")) +
                        ": the comparison holds for no event whose timestamp is a time",
                 "write a time such as '2024-05-01T00:00:00Z'");
    }
    out->comparisons.push_back(std::move(c));
  }
  if (ok && out->comparisons.empty()) {
    ctx.Error(n, "`" + ctx.path + "`: the comparison on `" + out->field + "` has no operator", kConditionHint);
    ok = false;
  }
  return ok;
}

bool ParseNode(const YAML::Node& n, const config::ParseContext& ctx, Condition::Node* out) {
  if (n.IsSequence()) {
    out->kind = Condition::Node::Kind::kAll;
    return ParseList(n, ctx, out);
  }
  if (!n.IsMap()) {
    ctx.Error(n, "`" + ctx.path + "` must be a condition map", kConditionHint);
    return false;
  }
  for (const char* key : {"all", "any", "not"}) {
    YAML::Node sub = n[key];
    if (!sub.IsDefined()) continue;
    if (n.size() != 1) {
      ctx.Error(n, "`" + ctx.path + "`: `" + key + "` must be the only key of its map",
                "wrap several conditions in `all: [...]`");
      return false;
    }
    config::ParseContext at = ctx.Child(key);
    if (std::string_view(key) == "not") {
      out->kind = Condition::Node::Kind::kNot;
      auto child = std::make_unique<Condition::Node>();
      bool ok = ParseNode(sub, at, child.get());
      out->children.push_back(std::move(child));
      return ok;
    }
    out->kind = std::string_view(key) == "all" ? Condition::Node::Kind::kAll : Condition::Node::Kind::kAny;
    if (!sub.IsSequence()) {
      at.Error(sub, "`" + at.path + "` must be a list of conditions");
      return false;
    }
    return ParseList(sub, at, out);
  }
  return ParseComparison(n, ctx, out);
}

}  // namespace

std::optional<Condition> Condition::Parse(const YAML::Node& node, const config::ParseContext& ctx) {
  Condition c;
  if (!node.IsDefined() || node.IsNull()) {
    ctx.Error(node, "`" + ctx.path + "` must be a condition", kConditionHint);
    return std::nullopt;
  }
  if (!ParseNode(node, ctx, c.root_.get())) return std::nullopt;
  return c;
}

Condition Condition::ParseValidated(const YAML::Node& node) {
  config::Diagnostics diag;
  auto c = Parse(node, config::ParseContext{&diag, "", "condition"});
  if (c) return std::move(*c);
  return Condition();  // kNever
}

}  // namespace tributary
