// The physical limit of json_parser: simdjson (DOM) over every line of a
// file, touching every value once, nothing else. Two ways to get the lines:
//   raw_simdjson_loop FILE          reads the file as the agent's file
//                                   source does (read(2) in 128 KiB chunks,
//                                   lines split with memchr): the CPU of
//                                   reading and parsing;
//   raw_simdjson_loop FILE preload  loads the file into memory first and
//                                   reports the parsing loop alone.
// Prints the wall and CPU seconds of the measured part and lines/s.
#include <simdjson.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static size_t Walk(simdjson::dom::element e) {
  size_t n = 1;
  simdjson::dom::object obj;
  simdjson::dom::array arr;
  std::string_view str;
  if (!e.get(obj)) {
    for (auto f : obj) n += f.key.size() + Walk(f.value);
  } else if (!e.get(arr)) {
    for (auto c : arr) n += Walk(c);
  } else if (!e.get(str)) {
    n += str.size();
  }
  return n;
}

// CPU time of the whole process (every thread).
static double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const bool preload = argc > 2 && std::string(argv[2]) == "preload";
  simdjson::dom::parser parser;
  size_t lines = 0, ok = 0, touched = 0;
  auto parse = [&](const char* p, size_t n) {
    simdjson::dom::element root;
    if (!parser.parse(p, n, true).get(root)) {
      ++ok;
      touched += Walk(root);
    }
    ++lines;
  };
  std::string data;
  if (preload) {
    std::ifstream in(argv[1], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  const double cpu_start = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  if (preload) {
    for (size_t pos = 0; pos < data.size();) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) nl = data.size();
      parse(data.data() + pos, nl - pos);
      pos = nl + 1;
    }
  } else {
    const int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 1;
    std::vector<char> buf(128 * 1024);
    std::string carry;  // a line split by a chunk boundary
    for (ssize_t n; (n = read(fd, buf.data(), buf.size())) > 0;) {
      const char* p = buf.data();
      const char* end = p + n;
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
        if (nl == nullptr) {
          carry.append(p, static_cast<size_t>(end - p));
          break;
        }
        if (carry.empty()) {
          parse(p, static_cast<size_t>(nl - p));
        } else {
          carry.append(p, static_cast<size_t>(nl - p));
          parse(carry.data(), carry.size());
          carry.clear();
        }
        p = nl + 1;
      }
    }
    if (!carry.empty()) parse(carry.data(), carry.size());
    close(fd);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  std::printf("lines=%zu parsed=%zu touched=%zu secs=%.3f cpu_secs=%.3f lines_per_sec=%.0f\n", lines, ok, touched, secs,
              cpu, lines / secs);
  return 0;
}
