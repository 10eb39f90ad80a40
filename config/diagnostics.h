#pragma once
// Diagnostics: every problem found while loading a configuration, each with
// the file, line and column it is about and, where one exists, the fix.
//
// Loading never stops at the first problem: parsers report into a
// Diagnostics and go on, so `tributary validate` lists everything at once.
// Secrets never reach a message: option parsers print a secret option's
// name, never its value.

#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
}

namespace tributary::config {

struct Location {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based; 0 = unknown
  std::string ToString() const;  // "file:line:column"
};

// The location of a YAML node (yaml-cpp marks are 0-based).
Location LocationOf(const YAML::Node& node, std::string_view file);

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  Location location;
  std::string message;
  std::string hint;  // e.g. "did you mean `include`?"; may be empty
  std::string ToString() const;  // "file:line:col: error: message (hint)"
};

class Diagnostics {
 public:
  void Error(Location loc, std::string message, std::string hint = {});
  void Warning(Location loc, std::string message, std::string hint = {});

  bool has_errors() const { return errors_ > 0; }
  size_t error_count() const { return errors_; }
  const std::vector<Diagnostic>& all() const { return items_; }
  // One line per diagnostic, errors and warnings in the order found.
  std::string ToString() const;

 private:
  std::vector<Diagnostic> items_;
  size_t errors_ = 0;
};

// The candidate closest to `word` by edit distance, or "" if none is close
// enough to be a plausible misspelling.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace tributary::config
