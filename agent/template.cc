#include "agent/template.h"

#include <ctime>

namespace tributary {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<Template> Template::Parse(std::string_view text) {
  Template t;
  t.text_ = std::string(text);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    std::string_view literal = text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
    if (!literal.empty()) {
      bool has_time = literal.find('%') != std::string_view::npos;
      t.parts_.push_back({false, has_time, std::string(literal)});
      if (has_time) t.static_ = false;
    }
    if (open == std::string_view::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos)
      return Status::InvalidArgument("unterminated `{{` in template \"" + std::string(text) + "\"");
    std::string_view field = Trim(text.substr(open + 2, close - open - 2));
    if (field.empty()) return Status::InvalidArgument("empty field name `{{ }}` in template \"" + std::string(text) + "\"");
    t.parts_.push_back({true, false, std::string(field)});
    t.static_ = false;
    pos = close + 2;
  }
  return t;
}

std::string Template::Check(const std::string& text) {
  auto r = Parse(text);
  return r.ok() ? "" : r.status().message();
}

bool Template::IsKnownConversion(std::string_view c) {
  // C99 and POSIX strftime, and the GNU ones glibc adds (%k %l %P %s); E
  // and O only where POSIX allows them.
  if (c.size() == 1) return std::string_view("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%").find(c[0]) != std::string_view::npos;
  if (c.size() == 2 && c[0] == 'E') return std::string_view("cCxXyY").find(c[1]) != std::string_view::npos;
  if (c.size() == 2 && c[0] == 'O') return std::string_view("deHImMSuUVwWy").find(c[1]) != std::string_view::npos;
  return false;
}

std::string Template::CheckTarget(const std::string& text) {
  if (text.empty()) return "must not be empty";
  if (std::string problem = Check(text); !problem.empty()) return problem;
  std::string problem;
  ForEachConversion(text, [&problem](std::string_view c, size_t) {
    if (!problem.empty() || IsKnownConversion(c)) return;
    problem = c.empty() ? "ends with a `%`, which is not a time conversion (write `%%` for a literal `%`)"
                        : "`%" + std::string(c) +
                              "` is not a strftime conversion (%Y %m %d %H %M %S %j %a %b ... as strftime(3) "
                              "has them; write `%%` for a literal `%`)";
  });
  return problem;
}

Status Template::Render(const Event& event, std::string* out) const {
  std::tm tm{};
  bool have_tm = false;
  for (const auto& p : parts_) {
    if (p.is_field) {
      const Value* v = event.get(p.text);
      if (v == nullptr || v->is_null()) return Status::NotFound("field `" + p.text + "` is missing");
      v->append_text(out);
      continue;
    }
    if (!p.has_time) {
      out->append(p.text);
      continue;
    }
    if (!have_tm) {
      Timestamp ts = Now();
      const Value* v = event.get(kTimestampField);
      if (v != nullptr && v->is_timestamp()) ts = v->as_timestamp();
      std::time_t secs = std::chrono::system_clock::to_time_t(
          std::chrono::time_point_cast<std::chrono::system_clock::duration>(ts));
      gmtime_r(&secs, &tm);
      have_tm = true;
    }
    char buf[512];
    size_t n = std::strftime(buf, sizeof buf, p.text.c_str(), &tm);
    if (n == 0 && !p.text.empty()) out->append(p.text);
    else out->append(buf, n);
  }
  return Status::Ok();
}

}  // namespace tributary
