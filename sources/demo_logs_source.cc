#include "sources/demo_logs_source.h"

#include <ctime>

#include "agent/backoff.h"
#include "config/registry.h"

namespace tributary {

const config::Schema<DemoLogsSource::Config>& DemoLogsSource::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("format", &Config::format, "Shape of the generated lines.").OneOf({"apache_common", "json"});
    s.Field("count", &Config::count, "Lines to generate before the source finishes; 0 = no end.");
    s.Field("interval", &Config::interval, "Seconds between lines; 0 = as fast as the pipeline takes them, in batches.")
        .Min(0);
    s.Field("batch_size", &Config::batch_size, "Lines per batch when `interval` is 0.").Min(1).Max(100000);
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Source>> DemoLogsSource::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Source>(new DemoLogsSource(config, ctx.hostname));
}

namespace {

constexpr const char* kHosts[] = {"192.168.1.10", "10.0.0.7", "172.16.4.2", "203.0.113.9", "198.51.100.23"};
constexpr const char* kUsers[] = {"-", "alice", "bob", "carol", "dave"};
constexpr const char* kMethods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
constexpr const char* kPaths[] = {"/", "/index.html", "/api/v1/users", "/api/v1/orders/42", "/static/app.js",
                                  "/login", "/api/v1/search?q=logs"};
constexpr int kStatuses[] = {200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 503};

template <size_t N, typename T>
T Pick(const T (&arr)[N], uint64_t n, uint64_t salt) {
  uint64_t x = (n + 1) * 0x9E3779B97F4A7C15ULL ^ salt;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  return arr[x % N];
}

}  // namespace

std::string DemoLogsSource::Line(std::string_view format, uint64_t n, Timestamp now) {
  std::time_t secs = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::system_clock::duration>(now));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  const char* host = Pick(kHosts, n, 1);
  const char* user = Pick(kUsers, n, 2);
  const char* method = Pick(kMethods, n, 3);
  const char* path = Pick(kPaths, n, 4);
  int status = Pick(kStatuses, n, 5);
  unsigned bytes = static_cast<unsigned>((n * 7919) % 50000);
  char buf[512];
  int len;
  if (format == "json") {
    len = std::snprintf(buf, sizeof buf,
                        R"({"host":"%s","user":"%s","method":"%s","path":"%s","status":%d,"bytes":%u,"seq":%llu})",
                        host, user, method, path, status, bytes, static_cast<unsigned long long>(n));
  } else {
    len = std::snprintf(buf, sizeof buf, "%s - %s [%s] \"%s %s HTTP/1.1\" %d %u", host, user, when, method, path,
                        status, bytes);
  }
  return std::string(buf, static_cast<size_t>(len));
}

Status DemoLogsSource::Run(SourceContext& ctx) {
  const bool paced = config_.interval.secs > 0;
  const uint64_t per_batch = paced ? 1 : config_.batch_size;
  auto stop = ctx.stop_token();
  uint64_t n = 0;
  while (!stop.stop_requested() && (config_.count == 0 || n < config_.count)) {
    uint64_t k = per_batch;
    if (config_.count != 0) k = std::min(k, config_.count - n);
    std::vector<Event> events;
    events.reserve(k);
    size_t bytes = 0;
    Timestamp now = Now();
    for (uint64_t i = 0; i < k; ++i, ++n) {
      Event e;
      e.fields().reserve(4);
      std::string line = Line(config_.format, n, now);
      bytes += line.size();
      e.fields().append(kMessageField, std::move(line));
      e.fields().append(kTimestampField, now);
      e.fields().append(kHostField, host_);
      e.fields().append(kSourceTypeField, "demo_logs");
      events.push_back(std::move(e));
    }
    Batch batch(std::move(events));
    batch.set_bytes(bytes);
    if (!ctx.Send(std::move(batch))) break;
    if (paced && !SleepFor(config_.interval.get(), stop)) break;
  }
  return Status::Ok();
}

TRIBUTARY_REGISTER_SOURCE("demo_logs", DemoLogsSource);

}  // namespace tributary
