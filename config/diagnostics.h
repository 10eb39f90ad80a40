#pragma once
// Diagnostics: every problem found while loading a configuration, each with
// the file, line and column it is about and, where one exists, the fix.
//
// Loading never stops at the first problem: parsers report into a
// Diagnostics and go on, so `tributary validate` lists everything at once.
// Secrets never reach a message: option parsers print a secret option's
// name, never its value.

#include <map>
#include <tuple>
#include <set>
#include <string>
#include <string_view>
#include <utility>
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

// Where interpolation put a variable's value into a file's text (1-based
// columns of the same line): `column`/`length` in the text YAML parses,
// `source_column`/`source_length` for the `${...}` in the file as written.
struct Substitution {
  int line = 0;
  int column = 0;
  int length = 0;
  int source_column = 0;
  int source_length = 0;
  std::string name;   // the variable
  std::string value;  // what was inserted (quoted or escaped as needed)
};

class Diagnostics {
 public:
  void Error(Location loc, std::string message, std::string hint = {});
  void Warning(Location loc, std::string message, std::string hint = {});

  // The substitutions made in `file`: from then on a location in it is given
  // in the file's own columns, and an error on a line that took a
  // variable's value names the variable instead of showing the value.
  void AddSubstitutions(const std::string& file, std::vector<Substitution> subs);
  // A `${VAR}` on this line could not be resolved (its error is given):
  // errors on the line from after the interpolation, about the value it
  // left empty, are dropped.
  void MarkUnresolved(const std::string& file, int line);
  // Set while a file is interpolated: its errors are all kept.
  void SetInterpolating(bool on) { interpolating_ = on; }
  // An empty value (`count:` and nothing after it) has the place of the
  // next token, often on the next line: an error at `at` is given at
  // `key_end` instead, after the key the value belongs to.
  void AddEmptyValue(const Location& at, const Location& key_end) { empty_values_[{at.file, at.line, at.column}] = key_end; }

  bool has_errors() const { return errors_ > 0; }
  size_t error_count() const { return errors_; }
  const std::vector<Diagnostic>& all() const { return items_; }
  // One line per diagnostic, errors and warnings in the order found.
  std::string ToString() const;

 private:
  void Map(Diagnostic* d) const;

  std::vector<Diagnostic> items_;
  std::vector<std::pair<std::string, std::vector<Substitution>>> substitutions_;
  std::set<std::pair<std::string, int>> unresolved_;
  bool interpolating_ = false;
  std::map<std::tuple<std::string, int, int>, Location> empty_values_;
  size_t errors_ = 0;
};

// The candidate closest to `word` by edit distance, or "" if none is close
// enough to be a plausible misspelling.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// Names as a message lists them: "`a`, `b`, `c`".
std::string BacktickList(const std::vector<std::string>& names);

}  // namespace tributary::config
