#include "sources/file/glob.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

namespace tributary::file {

namespace {

std::vector<std::string_view> SplitComponents(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool MatchComponent(std::string_view pattern, std::string_view name) {
  if (!HasGlobChars(pattern)) return pattern == name;
  std::string pat(pattern), nm(name);
  return ::fnmatch(pat.c_str(), nm.c_str(), 0) == 0;
}

bool MatchFrom(const std::vector<std::string_view>& pat, size_t pi, const std::vector<std::string_view>& path,
               size_t xi) {
  while (pi < pat.size()) {
    if (pat[pi] == "**") {
      // Collapse runs of "**"; then try every split.
      while (pi + 1 < pat.size() && pat[pi + 1] == "**") ++pi;
      for (size_t k = xi; k <= path.size(); ++k)
        if (MatchFrom(pat, pi + 1, path, k)) return true;
      return false;
    }
    if (xi >= path.size() || !MatchComponent(pat[pi], path[xi])) return false;
    ++pi;
    ++xi;
  }
  return xi == path.size();
}

std::string Join(const std::string& dir, std::string_view name) {
  if (dir == "/") return "/" + std::string(name);
  return dir + "/" + std::string(name);
}

struct Walker {
  const std::vector<std::string_view>& pat;
  GlobWalk* walk;
  std::unordered_set<std::string> visited;  // "**" may reach a directory twice (a set: 15,000 directories)

  void Report(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;  // vanished
    GlobMatchResult m;
    m.is_symlink = S_ISLNK(st.st_mode);
    if (m.is_symlink && ::stat(path.c_str(), &st) != 0) {
      if (errno != ENOENT && errno != ENOTDIR) walk->unreachable_links.emplace_back(path, errno);
      return;  // a dangling link, or one that leads where we may not go
    }
    m.path = path;
    m.is_directory = S_ISDIR(st.st_mode);
    m.is_other = !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode);
    walk->matches.push_back(std::move(m));
  }

  // Lists `dir`; false if it cannot be read.
  bool List(const std::string& dir, std::vector<std::pair<std::string, bool>>* entries) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno != ENOENT && errno != ENOTDIR) walk->errors.emplace_back(dir, errno);
      return false;
    }
    walk->directories.push_back(dir);
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = ::lstat(Join(dir, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      }
      entries->emplace_back(std::string(name), is_dir);
    }
    ::closedir(d);
    std::sort(entries->begin(), entries->end());
    return true;
  }

  void Walk(const std::string& dir, size_t pi) {
    if (pi == pat.size()) return;
    if (pat[pi] == "**") {
      std::string key = dir + "\n" + std::to_string(pi);
      if (!visited.insert(std::move(key)).second) return;
      // Zero directories: the rest of the pattern here.
      if (pi + 1 == pat.size()) {
        // A trailing "**" matches every file below.
        std::vector<std::pair<std::string, bool>> entries;
        if (!List(dir, &entries)) return;
        for (auto& [name, is_dir] : entries) {
          std::string p = Join(dir, name);
          if (is_dir) Walk(p, pi);
          else Report(p);
        }
        return;
      }
      Walk(dir, pi + 1);
      std::vector<std::pair<std::string, bool>> entries;
      if (!List(dir, &entries)) return;
      for (auto& [name, is_dir] : entries)
        if (is_dir) Walk(Join(dir, name), pi);  // one more directory level
      return;
    }
    const bool last = pi + 1 == pat.size();
    if (!HasGlobChars(pat[pi])) {
      std::string p = Join(dir, pat[pi]);
      if (last) {
        walk->directories.push_back(dir);  // where the file may appear
        Report(p);
      }
      else Walk(p, pi + 1);
      return;
    }
    std::vector<std::pair<std::string, bool>> entries;
    if (!List(dir, &entries)) return;
    for (auto& [name, is_dir] : entries) {
      if (!MatchComponent(pat[pi], name)) continue;
      std::string p = Join(dir, name);
      if (last) Report(p);
      else if (is_dir) Walk(p, pi + 1);
    }
  }
};

}  // namespace

bool HasGlobChars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

bool GlobMatch(std::string_view pattern, std::string_view path) {
  if (pattern.find('/') == std::string_view::npos) {
    size_t slash = path.rfind('/');
    std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    return MatchComponent(pattern, name);
  }
  return MatchFrom(SplitComponents(pattern), 0, SplitComponents(path), 0);
}

std::string GlobBaseDir(const std::string& pattern) {
  std::string base = pattern.empty() || pattern[0] != '/' ? "." : "/";
  for (auto c : SplitComponents(pattern)) {
    if (HasGlobChars(c)) return base;
    base = base == "/" ? "/" + std::string(c) : (base == "." ? std::string(c) : base + "/" + std::string(c));
  }
  // No glob characters: the pattern names a file; its directory is the base.
  size_t slash = base.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : base.substr(0, slash);
}

std::string AbsolutePattern(const std::string& pattern) {
  if (pattern.empty() || pattern[0] == '/') return pattern;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return pattern;
  return std::string(cwd) + "/" + pattern;
}

void ExpandGlob(const std::string& pattern, GlobWalk* walk) {
  const std::string abs = AbsolutePattern(pattern);
  if (abs.empty() || abs[0] != '/') return;
  auto comps = SplitComponents(abs);
  Walker w{comps, walk, {}};
  w.Walk("/", 0);
}

}  // namespace tributary::file
