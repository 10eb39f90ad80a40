// The physical limit of json_parser: simdjson (DOM) over every line of a
// file, touching every value once, nothing else.
//   raw_simdjson_loop FILE          reads the file as the agent's file
//                                   source does (raw_lines.h): the CPU of
//                                   reading and parsing;
//   raw_simdjson_loop FILE preload  loads the file into memory first and
//                                   reports the parsing loop alone.
// Prints the wall and CPU seconds of the measured part and lines/s.
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "raw_lines.h"

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

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const bool preload = argc > 2 && std::string(argv[2]) == "preload";
  simdjson::dom::parser parser;
  size_t lines = 0, ok = 0, touched = 0;
  auto parse = [&](std::string_view line) {
    simdjson::dom::element root;
    if (!parser.parse(line.data(), line.size(), true).get(root)) {
      ++ok;
      touched += Walk(root);
    }
    ++lines;
  };
  const std::string data = preload ? raw::Load(argv[1]) : std::string();
  const int fd = preload ? -1 : open(argv[1], O_RDONLY);
  if (!preload && fd < 0) return 1;
  const double cpu_start = raw::CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  if (preload) raw::ForEachLine(data, parse);
  else raw::ForEachLine(fd, 0, UINT64_MAX, parse);  // to the end
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = raw::CpuSeconds() - cpu_start;
  std::printf("lines=%zu parsed=%zu touched=%zu secs=%.3f cpu_secs=%.3f lines_per_sec=%.0f\n", lines, ok, touched, secs,
              cpu, lines / secs);
  return 0;
}
