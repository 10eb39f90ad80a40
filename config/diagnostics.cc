#include "config/diagnostics.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace tributary::config {

std::string Location::ToString() const {
  std::string s = file.empty() ? "<config>" : file;
  if (line > 0) {
    s += ':' + std::to_string(line);
    if (column > 0) s += ':' + std::to_string(column);
  }
  return s;
}

Location LocationOf(const YAML::Node& node, std::string_view file) {
  Location loc;
  loc.file = std::string(file);
  if (node.IsDefined()) {
    YAML::Mark m = node.Mark();
    if (m.line >= 0) {
      loc.line = m.line + 1;
      loc.column = m.column + 1;
    }
  }
  return loc;
}

std::string Diagnostic::ToString() const {
  std::string s = location.ToString();
  s += severity == Severity::kError ? ": error: " : ": warning: ";
  s += message;
  if (!hint.empty()) s += " (" + hint + ")";
  return s;
}

void Diagnostics::MarkUnresolved(const std::string& file, int line) { unresolved_.emplace(file, line); }

void Diagnostics::Error(Location loc, std::string message, std::string hint) {
  if (!interpolating_ && !unresolved_.empty() && unresolved_.count({loc.file, loc.line})) return;
  items_.push_back({Diagnostic::Severity::kError, std::move(loc), std::move(message), std::move(hint)});
  Map(&items_.back());
  ++errors_;
}

void Diagnostics::Warning(Location loc, std::string message, std::string hint) {
  items_.push_back({Diagnostic::Severity::kWarning, std::move(loc), std::move(message), std::move(hint)});
  Map(&items_.back());
}

void Diagnostics::AddSubstitutions(const std::string& file, std::vector<Substitution> subs) {
  if (!subs.empty()) substitutions_.emplace_back(file, std::move(subs));
}

namespace {

// `text` with each occurrence of `value` replaced by `${name}`; a short
// value only where it stands quoted, so that "5" does not eat every 5.
void Redact(std::string* text, const Substitution& s) {
  if (s.value.empty()) return;
  const bool bare = s.value.size() >= 4;
  const std::string ref = "${" + s.name + "}";
  for (size_t pos = 0; (pos = text->find(s.value, pos)) != std::string::npos;) {
    const bool quoted = pos > 0 && pos + s.value.size() < text->size() &&
                        std::string_view("\"`'").find((*text)[pos - 1]) != std::string_view::npos &&
                        (*text)[pos + s.value.size()] == (*text)[pos - 1];
    if (bare || quoted) {
      text->replace(pos, s.value.size(), ref);
      pos += ref.size();
    } else {
      pos += s.value.size();
    }
  }
}

}  // namespace

void Diagnostics::Map(Diagnostic* d) const {
  Location& loc = d->location;
  if (loc.line <= 0) return;
  if (!empty_values_.empty())
    if (auto it = empty_values_.find({loc.file, loc.line, loc.column}); it != empty_values_.end()) loc = it->second;
  for (const auto& [file, subs] : substitutions_) {
    if (file != loc.file) continue;
    int shift = 0;
    const Substitution* at = nullptr;
    for (const Substitution& s : subs) {
      if (s.line != loc.line) continue;
      Redact(&d->message, s);
      Redact(&d->hint, s);
      if (loc.column >= s.column + s.length) {
        shift += s.source_length - s.length;
      } else if (at == nullptr && loc.column + 1 >= s.column) {
        at = &s;  // the value, or the quote that opens it
      }
    }
    if (at != nullptr && loc.column >= at->column) loc.column = at->source_column;
    else loc.column += shift;
    if (at != nullptr) {
      const std::string from = "the value comes from `${" + at->name + "}`";
      d->hint = d->hint.empty() ? from : d->hint + "; " + from;
    }
    return;
  }
}

std::string Diagnostics::ToString() const {
  std::string s;
  for (const auto& d : items_) s += d.ToString() + "\n";
  return s;
}

namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      // Transposition counts as one edit.
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], prev[j - 1]);  // approximate Damerau
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string BacktickList(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "`" : ", `") + n + "`";
  return out;
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : std::string();
}

}  // namespace tributary::config
