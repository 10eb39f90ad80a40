// The physical limit of json_parser: simdjson (DOM) over every line of a
// file, touching every value once, nothing else. Prints the wall and CPU
// seconds of the parsing alone (not of reading the file into memory
// first) and lines/s.
//   raw_simdjson_loop FILE
#include <simdjson.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

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
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  simdjson::dom::parser parser;
  size_t lines = 0, ok = 0, touched = 0;
  const double cpu_start = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    simdjson::dom::element root;
    if (!parser.parse(data.data() + pos, nl - pos, true).get(root)) {
      ++ok;
      touched += Walk(root);
    }
    ++lines;
    pos = nl + 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  std::printf("lines=%zu parsed=%zu touched=%zu secs=%.3f cpu_secs=%.3f lines_per_sec=%.0f\n", lines, ok, touched, secs,
              cpu, lines / secs);
  return 0;
}
