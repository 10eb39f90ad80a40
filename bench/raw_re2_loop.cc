// The physical limit of regex_parser: RE2 captures of the Apache pattern
// over every line of a file, on N threads, nothing else.
//   raw_re2_loop FILE [THREADS]          reads the file as the agent's file
//                                        source does (raw_lines.h), each
//                                        thread its share of the lines: the
//                                        CPU of reading and matching;
//   raw_re2_loop FILE THREADS preload    loads the file into memory first
//                                        and reports the matching alone.
// Prints the wall and CPU seconds of the measured part and lines/s.
#include <re2/re2.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "raw_lines.h"

static const char* kApache =
    R"re(^(?P<host>[\w\.]+) - (?P<user>[\w]+) (?P<bytes_in>[\d]+) \[(?P<timestamp>.*)\] "(?P<method>[\w]+) (?P<path>.*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$)re";

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1;
  const bool preload = argc > 3 && std::string(argv[3]) == "preload";
  std::vector<std::string_view> lines;  // preload: the lines, dealt out in turn
  const std::string data = preload ? raw::Load(argv[1]) : std::string();
  if (preload) raw::ForEachLine(data, [&](std::string_view l) { lines.push_back(l); });
  const int fd = preload ? -1 : open(argv[1], O_RDONLY);
  if (!preload && fd < 0) return 1;
  const std::vector<uint64_t> ranges = preload ? std::vector<uint64_t>() : raw::LineRanges(fd, threads);
  RE2 re(kApache);
  const int ngroups = re.NumberOfCapturingGroups() + 1;
  std::vector<size_t> seen(threads), matched(threads);
  const double cpu_start = raw::CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<re2::StringPiece> caps(ngroups);
      size_t n = 0, m = 0;
      auto match = [&](std::string_view line) {
        ++n;
        m += re.Match(re2::StringPiece(line.data(), line.size()), 0, line.size(), RE2::UNANCHORED, caps.data(),
                      ngroups);
      };
      if (preload) {
        for (size_t i = t; i < lines.size(); i += threads) match(lines[i]);
      } else {
        raw::ForEachLine(fd, ranges[t], ranges[t + 1], match);
      }
      seen[t] = n;
      matched[t] = m;
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = raw::CpuSeconds() - cpu_start;
  size_t n = 0, m = 0;
  for (int t = 0; t < threads; ++t) {
    n += seen[t];
    m += matched[t];
  }
  std::printf("lines=%zu matched=%zu secs=%.3f cpu_secs=%.3f lines_per_sec=%.0f\n", n, m, secs, cpu, n / secs);
  return 0;
}
