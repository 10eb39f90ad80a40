#pragma once
// The running pipeline: built from a validated Config, it owns every
// component, the sink buffers and the threads.
//
// Data path: a source thread calls SourceContext::Send(batch); the batch is
// run through the transforms downstream of that source on the same thread
// and pushed into each destination sink's buffer (blocking while full, which
// is how backpressure reaches the source). Fan-out shares the event vector
// (copy-on-write). Each sink runs on its own thread, reading its buffer.
// With --threads N above 1 a pool of N - 1 workers helps: a source hands a
// batch to a worker not yet busy with one of its batches, and transforms
// the next itself meanwhile (its own events are in its core's cache); the
// batches reach the sinks in the order sent. SendMore gathers small batches, a sink batch's worth at most, into
// fewer sink pushes (or one pool job), so that a source can send batches
// small enough to stay in the CPU cache without waking the sinks for each.
//
// Shutdown (Stop): sources are asked to stop and joined (a source may read
// on, for the first half of the drain at most, what its input held when the
// stop began: SourceContext::stop_read_deadline); buffers are closed so
// sinks drain and return; if that takes longer than the drain's part of
// the timeout, the topology stops hard: buffers abort (what they hold is
// finalized Failed, so sources will not checkpoint it) and sinks give up. A
// sink thread still busy when the timeout is over is abandoned. Then every
// source's Finish() writes its final checkpoint. The whole stop takes at
// most the timeout (at least kMinHardStop for stopping hard).
//
// Thread-safety: Start/Stop/Wait are called from the main thread only;
// the status accessors from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "agent/buffer.h"
#include "agent/component.h"
#include "agent/metrics.h"
#include "config/config.h"

namespace tributary {

class Topology {
 public:
  enum class State { kBuilt, kRunning, kStopping, kStopped };

  // Builds every component; errors name the component. Opens nothing that
  // can wait (sockets, files are opened in Run).
  // `threads` > 1 adds a pool of threads - 1 workers to the source threads
  // for transforms.
  static Result<std::unique_ptr<Topology>> Build(const config::Config& config, Metrics* metrics,
                                                 const std::string& hostname, int threads = 1);
  ~Topology();

  void Start();
  // Blocks until every source has finished by itself (finite inputs such as
  // demo_logs with a count or stdin at EOF), or until `timeout`.
  bool WaitSourcesFinished(std::chrono::milliseconds timeout);
  // Graceful stop, then hard, all within `timeout`: the drain may take all
  // but the last min(kHardStopReserve, timeout / 2), which is left for
  // stopping hard (at least kMinHardStop, so the stop of a zero timeout
  // takes that long at most). Returns true if it drained completely. A sink
  // thread that has not returned when the time is up (stuck in I/O that
  // ignores the hard stop) is abandoned. `kept_sinks`: the sinks that read
  // their buffers on after the stop (all of them at a restart; those a
  // reload keeps): their disk buffers keep what the sink has not taken
  // (Buffer::CloseKeeping) instead of being emptied first. Null: every
  // buffer is emptied (the sources have finished by themselves).
  // `reload`: a new pipeline takes over (for what the stop's report says).
  bool Stop(std::chrono::milliseconds timeout, const std::set<std::string>* kept_sinks = nullptr, bool reload = false);
  static constexpr std::chrono::milliseconds kHardStopReserve{2000};
  static constexpr std::chrono::milliseconds kMinHardStop{500};
  // From any thread, before or during Stop (a second shutdown signal): the
  // drain ends now and the hard stop gets kMinHardStop, after which a sink
  // thread that has not returned is abandoned.
  void ForceStop();
  // After Stop: whether a sink thread was abandoned, still running.
  bool HasAbandonedThreads() const { return !abandoned_sinks_.empty(); }
  // After Stop: the ids of the sinks whose threads were abandoned (they may
  // still update their metrics).
  const std::vector<std::string>& AbandonedSinks() const { return abandoned_sinks_; }
  // After Stop: events it gave up that their sources cannot read again
  // (stdin, demo_logs): lost. Every event a stop gives up (a memory
  // buffer's, a sink's requests, pushes refused while stopping) is counted
  // in the sink's discarded_events_total{intentional="false"} and in one
  // log line per sink, which says whether the sources read them again.
  uint64_t EventsLost() const { return events_lost_; }

  // Ends a stopped topology. Normally it is destroyed: every file and lock
  // it holds (disk buffers' directories) is released. If a sink thread was
  // abandoned, the memory it may still touch cannot be freed: the sink
  // buffers give back their files and locks (Buffer::Release), the
  // sources, transforms and other sinks are destroyed, and the abandoned
  // sinks' runners and nodes are kept for the life of the process. Either way a new topology can
  // open the same disk buffers afterwards (a reload).
  static void Dispose(std::unique_ptr<Topology> topology);

  State state() const { return state_.load(); }
  // Sinks that reported themselves unhealthy, with their reasons.
  std::vector<std::pair<std::string, std::string>> UnhealthySinks() const;
  // "sink id: reason" of the first sink that can never deliver again
  // (SinkContext::Abandon), or "": the agent should stop.
  std::string AbandonedSink();
  // "source id: error" of the first source that stopped with an error, or
  // "": when every source has finished, the agent exits non-zero for it.
  std::string FailedSource();

  struct Node;

 private:
  Topology() = default;
  class SourceRunner;
  class SinkRunner;

  // Batches bound for sink buffers, in the order they are to be pushed.
  using SinkPushes = std::vector<std::pair<Node*, Batch>>;
  // Runs `batch` into `targets`: transforms now; sink pushes now, or
  // appended to *pushes when it is given (the ordered pool path).
  void Deliver(Node* node, Batch batch, SinkPushes* pushes);
  void Dispatch(const std::vector<Node*>& targets, Batch batch, SinkPushes* pushes = nullptr);
  void SourceFinished(const std::string& id, const Status& s);
  // Until every source has finished, `deadline`, or (if `or_forced`)
  // ForceStop; whether every source has finished.
  bool WaitSourcesFinishedUntil(std::chrono::steady_clock::time_point deadline, bool or_forced);
  void ReportGivenUp();

  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<SourceRunner>> source_runners_;
  std::vector<std::unique_ptr<SinkRunner>> sink_runners_;
  std::stop_source hard_stop_;
  std::unique_ptr<class WorkerPool> pool_;  // null: transforms run on the source threads
  bool reload_ = false;  // the stop is a reload's
  std::atomic<State> state_{State::kBuilt};
  std::atomic<bool> forced_{false};  // ForceStop; set under mu_ for sources_cv_
  std::atomic<std::chrono::steady_clock::time_point> forced_at_{};
  // SourceContext::stop_read_deadline: set by Stop, brought forward by
  // ForceStop and the hard stop.
  std::atomic<std::chrono::steady_clock::time_point> stop_read_until_{std::chrono::steady_clock::time_point::min()};
  std::vector<std::string> abandoned_sinks_;  // whose threads Stop detached
  uint64_t events_lost_ = 0;  // EventsLost()

  std::mutex mu_;
  std::condition_variable sources_cv_;
  size_t sources_running_ = 0;
  std::string abandoned_;  // AbandonedSink(), under mu_
  std::string failed_source_;  // FailedSource(), under mu_
};

}  // namespace tributary
