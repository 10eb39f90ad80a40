#pragma once
// How the raw loops get the lines of a file: either as the agent's file
// source does (read in 128 KiB chunks, lines split with memchr), so that
// the limit includes the same reading the agent pays for, or from a copy
// loaded into memory first (`preload`), for the matching or parsing alone.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace raw {

// CPU time of the whole process (every thread).
inline double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

inline std::string Load(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Calls fn(line) for every line of `data`.
template <typename Fn>
void ForEachLine(std::string_view data, Fn&& fn) {
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string_view::npos) nl = data.size();
    fn(data.substr(pos, nl - pos));
    pos = nl + 1;
  }
}

// Calls fn(line) for every line that starts in [begin, end) of the open
// file fd, reading it with pread in 128 KiB chunks.
template <typename Fn>
void ForEachLine(int fd, uint64_t begin, uint64_t end, Fn&& fn) {
  std::vector<char> buf(128 * 1024);
  std::string carry;  // a line split by a chunk boundary
  bool done = false;
  for (uint64_t off = begin; !done;) {
    const ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n <= 0) break;
    const char* p = buf.data();
    const char* stop = p + n;
    while (p < stop) {
      if (off + static_cast<uint64_t>(p - buf.data()) >= end && carry.empty()) {
        done = true;  // the next line starts in the next range
        break;
      }
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(stop - p)));
      if (nl == nullptr) {
        carry.append(p, static_cast<size_t>(stop - p));
        break;
      }
      if (carry.empty()) {
        fn(std::string_view(p, static_cast<size_t>(nl - p)));
      } else {
        carry.append(p, static_cast<size_t>(nl - p));
        fn(std::string_view(carry));
        carry.clear();
      }
      p = nl + 1;
    }
    off += static_cast<uint64_t>(n);
  }
  if (!carry.empty()) fn(std::string_view(carry));
}

// Start offsets of `parts` ranges of the file, each at the start of a line;
// the last entry is the file's size.
inline std::vector<uint64_t> LineRanges(int fd, int parts) {
  struct stat st {};
  fstat(fd, &st);
  const auto size = static_cast<uint64_t>(st.st_size);
  std::vector<uint64_t> starts{0};
  for (int i = 1; i < parts; ++i) {
    uint64_t at = std::max(starts.back(), size * static_cast<uint64_t>(i) / static_cast<uint64_t>(parts));
    char c = 0;
    while (at > 0 && at < size && pread(fd, &c, 1, static_cast<off_t>(at - 1)) == 1 && c != '\n') ++at;
    starts.push_back(std::min(at, size));
  }
  starts.push_back(size);
  return starts;
}

}  // namespace raw
