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

void Diagnostics::Error(Location loc, std::string message, std::string hint) {
  items_.push_back({Diagnostic::Severity::kError, std::move(loc), std::move(message), std::move(hint)});
  ++errors_;
}

void Diagnostics::Warning(Location loc, std::string message, std::string hint) {
  items_.push_back({Diagnostic::Severity::kWarning, std::move(loc), std::move(message), std::move(hint)});
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
