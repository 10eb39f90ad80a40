// Writes N deterministic log lines: `apache` (the regex_parser scenario's
// format) or `json` (flat and nested JSON objects, ~250 bytes).
//   gen_logs apache|json N > file
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  bool json = std::strcmp(argv[1], "json") == 0;
  long n = std::atol(argv[2]);
  const char* methods[] = {"GET", "POST", "PUT", "DELETE"};
  const char* paths[] = {"/api/v1/users", "/index.html", "/api/v2/orders/12345?expand=items", "/static/app.js"};
  const char* users[] = {"alice", "bob", "carol", "dave"};
  const int statuses[] = {200, 200, 200, 201, 304, 404, 500, 503};
  unsigned x = 12345;
  for (long i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    unsigned r = x >> 8;
    int status = statuses[r % 8];
    if (json) {
      std::printf("{\"timestamp\":\"2024-05-01T12:%02ld:%02ld.%03ldZ\",\"level\":\"%s\",\"message\":\"%s %s done\","
                  "\"status\":%d,\"latency_ms\":%u.%u,\"user\":{\"name\":\"%s\",\"id\":%u},\"tags\":[\"web\",\"edge\"],"
                  "\"request_id\":\"%08x-%04x\"}\n",
                  (i / 60) % 60, i % 60, i % 1000, status >= 500 ? "error" : "info", methods[r % 4], paths[(r >> 3) % 4],
                  status, r % 500, r % 10, users[(r >> 5) % 4], r % 100000, x, r & 0xffff);
    } else {
      std::printf("%u.%u.%u.%u - %s %u [10/Oct/2000:13:%02ld:%02ld -0700] \"%s %s\" %d %u\n", r % 256, (r >> 4) % 256,
                  (r >> 8) % 256, (r >> 12) % 256, users[(r >> 5) % 4], r % 4096, (i / 60) % 60, i % 60, methods[r % 4],
                  paths[(r >> 3) % 4], status, r % 100000);
    }
  }
  return 0;
}
