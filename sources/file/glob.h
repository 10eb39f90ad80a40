#pragma once
// Path globs for the file source.
//
// Grammar (matched one path component at a time, components split on '/'):
//   pattern   := ['/'] component ('/' component)*
//   component := "**"            zero or more whole directories
//              | fnmatch(3) text  '*', '?', '[...]' within one component
// A leading '.' in a name is matched by '*' like any other byte.
//
// ExpandGlob walks the file system from the longest literal prefix of the
// pattern and reports every match and every directory it had to read (the
// directories worth watching for new matches). GlobMatch tests a path
// against a pattern without touching the file system; patterns without a
// '/' (exclude: ["*.gz"]) are matched against the file name only.
//
// Stateless functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace tributary::file {

struct GlobMatchResult {
  std::string path;
  bool is_directory = false;  // matched the pattern but is a directory
  bool is_other = false;      // matched but neither a regular file nor a directory (fifo, socket, ...)
  bool is_symlink = false;    // a symlink (the fields above describe where it leads)
};

struct GlobWalk {
  std::vector<GlobMatchResult> matches;
  std::vector<std::string> directories;  // read while expanding
  std::vector<std::pair<std::string, int>> errors;  // directory, errno (other than ENOENT)
  // Symbolic links whose target cannot be reached for another reason than
  // its absence (EACCES, ELOOP...): link path, errno.
  std::vector<std::pair<std::string, int>> unreachable_links;
};

// Expands `pattern` (absolute, or relative to the working directory) into
// *walk. Symbolic links to files are followed; links to directories are
// not descended by "**" (no loops).
void ExpandGlob(const std::string& pattern, GlobWalk* walk);

// `pattern` made absolute against the working directory, as ExpandGlob
// reads it (unchanged if absolute, or if the directory cannot be had).
std::string AbsolutePattern(const std::string& pattern);

// True if `path` matches `pattern` (see the grammar above).
bool GlobMatch(std::string_view pattern, std::string_view path);

// The directory a pattern starts in: its longest prefix without glob
// characters ("/var/log/app/*.log" → "/var/log/app").
std::string GlobBaseDir(const std::string& pattern);

bool HasGlobChars(std::string_view s);

}  // namespace tributary::file
