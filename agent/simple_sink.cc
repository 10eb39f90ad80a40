#include "agent/backoff.h"
#include "agent/component.h"
#include "agent/log.h"
#include "agent/memory.h"

namespace tributary {

Status SimpleSink::Run(SinkContext& ctx) {
  Backoff backoff(std::chrono::milliseconds(100), std::chrono::milliseconds(30000));
  Counter& rejected = ctx.metrics().Errors("rejected", "sending");
  Counter& failed = ctx.metrics().Errors("write_failed", "sending");
  Counter& retries = ctx.metrics().Retries();
  RateLimiter limiter;
  Batch batch;
  while (true) {
    auto r = ctx.input().Next(&batch, std::chrono::milliseconds(500));
    if (r == SinkInput::Result::kTimeout) {
      Status f = Flush();
      if (!f.ok()) LogLimited(limiter, LogLevel::kWarn, ctx.metrics().id(), "flush failed: " + f.ToString());
      ReturnFreeMemoryWhenIdle();
      continue;
    }
    if (r == SinkInput::Result::kClosed) break;
    while (true) {
      Status s = Write(batch);
      if (s.ok()) {
        ctx.metrics().sent_events().Increment(static_cast<double>(batch.size() - DiscardedByLastWrite()));
        batch.Finalize(BatchStatus::kDelivered);
        ctx.SetHealthy(true, "");
        backoff.Reset();
        break;
      }
      if (s.code() == StatusCode::kCancelled) {
        failed.Increment();
        TLOG_ERROR(ctx.metrics().id(), "cannot deliver any more: " + s.message());
        ctx.SetHealthy(false, s.message());
        ctx.Abandon(s.message());
        // Fail what comes until the agent has stopped, so that no source
        // waits on this sink's buffer.
        do batch.Finalize(BatchStatus::kFailed);
        while (ctx.input().Next(&batch, std::chrono::milliseconds(500)) != SinkInput::Result::kClosed);
        return Status::Ok();
      }
      if (s.code() == StatusCode::kInvalidArgument) {
        rejected.Increment(static_cast<double>(batch.size()));
        LogLimited(limiter, LogLevel::kError, ctx.metrics().id(), "events rejected: " + s.ToString());
        batch.Finalize(BatchStatus::kRejected);
        break;
      }
      failed.Increment();
      retries.Increment();
      ctx.SetHealthy(false, s.ToString());
      LogLimited(limiter, LogLevel::kWarn, ctx.metrics().id(), "write failed, will retry: " + s.ToString());
      if (!SleepFor(backoff.Next(), ctx.hard_stop())) {
        batch.Finalize(BatchStatus::kFailed);
        (void)Flush();
        return Status::Ok();
      }
    }
  }
  return Flush();
}

}  // namespace tributary
