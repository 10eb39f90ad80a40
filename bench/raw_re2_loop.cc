// The physical limit of regex_parser: RE2 captures of the Apache pattern
// over every line of a file, on N threads (lines split evenly), nothing
// else. Prints the wall and CPU seconds of the matching alone (not of
// reading the file into memory first) and lines/s.
//   raw_re2_loop FILE [THREADS]
#include <re2/re2.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

static const char* kApache =
    R"re(^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$)re";

// CPU time of the whole process (every thread).
static double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < data.size();) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    lines.emplace_back(data.data() + pos, nl - pos);
    pos = nl + 1;
  }
  RE2 re(kApache);
  const int ngroups = re.NumberOfCapturingGroups() + 1;
  std::vector<size_t> matched(threads);
  const double cpu_start = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<re2::StringPiece> caps(ngroups);
      size_t m = 0;
      for (size_t i = t; i < lines.size(); i += threads)
        m += re.Match(lines[i], 0, lines[i].size(), RE2::UNANCHORED, caps.data(), ngroups);
      matched[t] = m;
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  size_t m = 0;
  for (auto x : matched) m += x;
  std::printf("lines=%zu matched=%zu secs=%.3f cpu_secs=%.3f lines_per_sec=%.0f\n", lines.size(), m, secs, cpu,
              lines.size() / secs);
  return 0;
}
