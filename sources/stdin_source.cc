#include "sources/stdin_source.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "agent/batch_builder.h"
#include "agent/log.h"
#include "config/registry.h"
#include "sources/line_splitter.h"

namespace tributary {

const config::Schema<StdinSource::Config>& StdinSource::Config::schema() {
  static const config::Schema<Config> s = [] {
    config::Schema<Config> s;
    s.Field("max_line_bytes", &Config::max_line_bytes, "Longest line kept; longer ones follow `oversize_policy` and are counted.")
        .Min(1);
    s.Field("oversize_policy", &Config::oversize_policy, "What to do with a line over `max_line_bytes`.")
        .OneOf({"truncate", "discard"});
    s.Field("line_delimiter", &Config::line_delimiter, "The byte sequence that ends a line.")
        .Check<std::string>([](const std::string& d) { return d.empty() ? std::string("must not be empty") : ""; });
    s.Field("max_batch_events", &Config::max_batch_events, "Most lines per batch.").Min(1);
    return s;
  }();
  return s;
}

Result<std::unique_ptr<Source>> StdinSource::Build(const Config& config, BuildContext& ctx) {
  return std::unique_ptr<Source>(new StdinSource(config, ctx));
}

StdinSource::StdinSource(const Config& config, BuildContext& ctx)
    : config_(config),
      id_(ctx.id),
      host_(ctx.hostname),
      oversize_(&ctx.metrics->Errors("line_too_long", "receiving")),
      discarded_(&ctx.metrics->discarded_intentional()),
      read_errors_(&ctx.metrics->Errors("read_failed", "receiving")) {}

Status StdinSource::Run(SourceContext& ctx) {
  LineSplitter splitter(config_.line_delimiter, config_.max_line_bytes.bytes,
                        config_.oversize_policy == "discard");
  std::vector<char> buf(256 * 1024);
  BatchBuilder events(config_.max_batch_events);
  size_t bytes = 0;
  uint64_t oversize_seen = 0, discarded_seen = 0;
  auto stop = ctx.stop_token();
  Timestamp read_time = Now();  // one clock read per chunk, not per line
  auto send = [&]() {
    uint64_t over = splitter.truncated() + splitter.discarded();
    if (over > oversize_seen) {
      oversize_->Increment(static_cast<double>(over - oversize_seen));
      // Logged as the file source does, at a limited rate: a counter alone
      // is easy to miss when lines are lost or cut.
      LogLimited(log_limiter_, LogLevel::kWarn, id_,
                 std::to_string(over - oversize_seen) + " line(s) over max_line_bytes (" +
                     std::to_string(config_.max_line_bytes.bytes) + ") on stdin: " +
                     (config_.oversize_policy == "discard" ? "discarded" : "truncated"));
      oversize_seen = over;
    }
    // `oversize_policy: discard`, chosen by the user: discarded on purpose.
    if (splitter.discarded() > discarded_seen) {
      discarded_->Increment(static_cast<double>(splitter.discarded() - discarded_seen));
      discarded_seen = splitter.discarded();
    }
    if (events.empty()) return true;
    Batch b = events.Take(bytes);
    bytes = 0;
    return ctx.Send(std::move(b));
  };
  bool stopped = false;  // the topology refused a batch: it is stopping
  // Flattened: the string and vector code it calls is inlined. A batch
  // never holds more than max_batch_events, even from one big read.
  auto emit = [&](std::string_view line, uint64_t) __attribute__((flatten)) {
    // A recycled event is cleared and written again, reusing its buffers
    // (event.h); the message comes last, so dropping it moves nothing.
    Fields& f = events.Next().fields();
    f.clear();
    f.reserve(4);
    f.append(kTimestampField, read_time);
    f.append(kHostField, std::string_view(host_));
    f.append(kSourceTypeField, "stdin");
    f.append(kMessageField, line);
    bytes += line.size() + 1;
    if (events.size() >= config_.max_batch_events && !stopped && !send()) stopped = true;
  };
  while (!stop.stop_requested()) {
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    int pr = ::poll(&pfd, 1, events.empty() ? 200 : 0);
    if (pr < 0 && errno != EINTR) return Status::FromErrno("poll stdin", errno);
    if (pr <= 0) {
      if (!send()) return Status::Ok();
      continue;
    }
    ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      read_errors_->Increment();
      return Status::FromErrno("read stdin", errno);
    }
    if (n == 0) {
      splitter.TakePartial(emit);
      send();
      return Status::Ok();
    }
    read_time = Now();
    splitter.Feed(std::string_view(buf.data(), static_cast<size_t>(n)), emit);
    if (stopped) return Status::Ok();
  }
  send();
  return Status::Ok();
}

TRIBUTARY_REGISTER_SOURCE("stdin", StdinSource);

}  // namespace tributary
