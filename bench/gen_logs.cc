// Benchmark data generator: writes log lines to a file until it holds at
// least --bytes bytes (or exactly --lines lines).
//
//   gen_logs --format apache|json --bytes 1G --out FILE
//   gen_logs --format apache --lines 1000000 --out FILE
//
// Lines are deterministic for a given --seed, varied enough that regexes
// and JSON parsers do real work (hosts, users, paths, statuses, sizes).

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdint>
#include <string>

#include "config/schema.h"

namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

constexpr const char* kUsers[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"};
constexpr const char* kMethods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"};
constexpr const char* kPaths[] = {"/", "/index.html", "/api/v1/users", "/api/v1/orders", "/static/app.js",
                                  "/login", "/api/v1/search", "/images/logo.png"};
constexpr int kStatuses[] = {200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 500, 503};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate benchmark log data"};
  std::string format = "apache", out_path, bytes_text;
  uint64_t lines = 0, seed = 1;
  app.add_option("--format", format, "apache or json")->check(CLI::IsMember({"apache", "json"}));
  app.add_option("--bytes", bytes_text, "Target size, e.g. 1G, 100M");
  app.add_option("--lines", lines, "Exact number of lines");
  app.add_option("--seed", seed, "Seed");
  app.add_option("--out", out_path, "Output file")->required();
  CLI11_PARSE(app, argc, argv);
  uint64_t target = 0;
  if (!bytes_text.empty() && !tributary::config::ParseByteSize(bytes_text, &target)) {
    std::fprintf(stderr, "bad --bytes %s\n", bytes_text.c_str());
    return 2;
  }
  if (target == 0 && lines == 0) lines = 1000000;
  FILE* out = std::fopen(out_path.c_str(), "wb");
  if (!out) {
    std::perror(out_path.c_str());
    return 1;
  }
  std::setvbuf(out, nullptr, _IOFBF, 1 << 20);
  uint64_t written = 0;
  char buf[512];
  for (uint64_t n = 0; lines ? n < lines : written < target; ++n) {
    uint64_t r = Mix(n ^ (seed << 40));
    unsigned a = r & 0xff, b = (r >> 8) & 0xff, c = (r >> 16) & 0xff, d = (r >> 24) & 0xff;
    const char* user = kUsers[(r >> 32) % 8];
    const char* method = kMethods[(r >> 35) % 8];
    const char* path = kPaths[(r >> 38) % 8];
    int status = kStatuses[(r >> 41) % 12];
    unsigned in = static_cast<unsigned>((r >> 45) % 5000);
    unsigned out_bytes = static_cast<unsigned>((r >> 20) % 100000);
    int day = 1 + static_cast<int>(n / 86400 % 28), hh = static_cast<int>(n / 3600 % 24),
        mm = static_cast<int>(n / 60 % 60), ss = static_cast<int>(n % 60);
    int len;
    if (format == "json") {
      len = std::snprintf(buf, sizeof buf,
                          "{\"host\":\"%u.%u.%u.%u\",\"user\":\"%s\",\"bytes_in\":%u,\"timestamp\":\"2024-10-%02dT%02d:%02d:%02dZ\","
                          "\"method\":\"%s\",\"path\":\"%s?id=%llu\",\"status\":%d,\"bytes_out\":%u,\"seq\":%llu}\n",
                          a, b, c, d, user, in, day, hh, mm, ss, method, path,
                          static_cast<unsigned long long>(r % 100000), status, out_bytes,
                          static_cast<unsigned long long>(n));
    } else {
      len = std::snprintf(buf, sizeof buf, "%u.%u.%u.%u - %s %u [%02d/Oct/2024:%02d:%02d:%02d -0700] \"%s %s?id=%llu\" %d %u\n",
                          a, b, c, d, user, in, day, hh, mm, ss, method, path,
                          static_cast<unsigned long long>(r % 100000), status, out_bytes);
    }
    std::fwrite(buf, 1, static_cast<size_t>(len), out);
    written += static_cast<uint64_t>(len);
  }
  std::fclose(out);
  return 0;
}
