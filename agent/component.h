#pragma once
// The component contract: config → build → run.
//
// Each source, transform and sink type declares a Config struct with a
// static schema() (config/schema.h), a static Build() that turns a validated
// Config into a runnable object, and registers itself with one line (see
// config/registry.h). Build compiles regexes, binds metric handles and opens
// nothing that can wait; Run does the I/O.
//
// Threads: each source runs on its own thread; transforms are called on the
// threads of the sources upstream of them (possibly several at once, on
// different batches) so Process() must not mutate shared state without
// synchronisation; each sink runs on its own thread.

#include <chrono>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/batch.h"
#include "agent/metrics.h"
#include "agent/status.h"

namespace tributary {

class Logger;

// What Build() gets besides its Config.
struct BuildContext {
  std::string id;            // the component id from the config
  std::string data_dir;      // the agent's data_dir (global)
  std::string hostname;      // this host's name
  ComponentMetrics* metrics; // handles for this component; outlives it
};

// ---- Sources ---------------------------------------------------------------

// Work a source does while a Send, SendMore or Flush of its waits for room
// in a full buffer (`when_full: block`), such as keeping hold of new input
// that would be gone by the time the buffer has room (a file source opens
// the files created meanwhile). See SourceContext::SetWhileBlocked.
class WhileBlocked {
 public:
  // About how often Work is called while a send waits.
  static constexpr std::chrono::milliseconds kInterval{100};
  virtual ~WhileBlocked() = default;
  // Called on the source's own thread, from inside the waiting Send,
  // SendMore or Flush, with no lock of the agent's held. It must not send
  // (no Send, SendMore or Flush) and should return within a few tens of
  // milliseconds: a stop, or room in the buffer, is seen once it returns.
  virtual void Work() = 0;
};

class SourceContext {
 public:
  virtual ~SourceContext() = default;
  // Sends a batch downstream: runs the transforms and pushes into every
  // destination sink's buffer, blocking while a buffer is full
  // (backpressure). Returns false only when the agent is shutting down hard
  // and the batch could not be handed on; its finalizers then report Failed.
  virtual bool Send(Batch batch) = 0;
  // Send for a source with more to send at once (a file read in chunks):
  // what the batch becomes for the sinks may be held back until about a
  // sink batch's worth has gathered, or until the next Send or Flush, so
  // that small batches, which keep a source's events in the CPU's cache
  // between the source and its transforms, do not each wake every sink. A
  // source using it calls Send or Flush before it waits for input.
  virtual bool SendMore(Batch batch) { return Send(std::move(batch)); }
  // Pushes whatever SendMore held back.
  virtual void Flush() {}
  // While a Send, SendMore or Flush of this source waits for room in a
  // buffer, `work->Work()` is called on this thread about every
  // WhileBlocked::kInterval (nullptr: nothing is). The batches keep their
  // order. `work` must outlive Run().
  virtual void SetWhileBlocked(WhileBlocked* work) { (void)work; }
  // Requested when the source should stop reading and return from Run().
  virtual std::stop_token stop_token() const = 0;
  // Once the stop is requested: until when a source may go on reading the
  // input that was already there when the stop began (the file source's
  // read_to_end_on_stop) before it returns from Run(), so that the sinks
  // still have the rest of the drain to deliver it. Half of the drain's
  // part of shutdown_timeout_secs; in the past once the stop is forced or
  // hard. Before a stop, and by default, in the past.
  virtual std::chrono::steady_clock::time_point stop_read_deadline() const {
    return std::chrono::steady_clock::time_point::min();
  }
  virtual ComponentMetrics& metrics() = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  // Reads until stop is requested or the input ends. Attaches a finalizer
  // to each batch if it checkpoints (see batch.h).
  virtual Status Run(SourceContext& ctx) = 0;
  // Called once after every sink has stopped (all acknowledgements that
  // will ever arrive have arrived): write final checkpoints here.
  virtual void Finish() {}
  // Whether what this source handed on and a stop gave up is read again at
  // the next start (it commits positions only past delivered batches: file,
  // journald, kafka). Otherwise (stdin, demo_logs) it is lost.
  virtual bool ReadsUndeliveredAgain() const { return false; }
  // For a source that reads undelivered events again: how many of those it
  // cannot read again after all, because their input is gone since it read
  // them (a file deleted, or truncated or rewritten in place), with a short
  // "where" (the files, for the log). Called once after every sink has
  // stopped, before Finish.
  virtual uint64_t UndeliveredGone(std::string* where) {
    (void)where;
    return 0;
  }
};

// ---- Transforms ------------------------------------------------------------

class Transform {
 public:
  virtual ~Transform() = default;
  // Processes one batch. `outputs` holds one empty batch per output of
  // this transform (index 0 = default; named outputs in the order of
  // Outputs() in the registry). Moving `in` into outputs[0] is the cheap
  // path for in-place transforms. Events left out of every output are
  // dropped: count them in discarded_events_total.
  virtual void Process(Batch& in, std::span<Batch> outputs) = 0;
};

// A transform with one output that edits the event vector in place.
class SimpleTransform : public Transform {
 public:
  virtual void Apply(std::vector<Event>& events) = 0;
  void Process(Batch& in, std::span<Batch> outputs) final {
    Apply(in.mutable_events());
    outputs[0] = std::move(in);
  }
};

// ---- Sinks -----------------------------------------------------------------

// The read side of a sink's buffer.
class SinkInput {
 public:
  enum class Result { kBatch, kTimeout, kClosed };
  virtual ~SinkInput() = default;
  // Waits up to `timeout` for the next batch. kClosed: drained and closed,
  // or the agent is stopping hard; the sink should flush and return.
  virtual Result Next(Batch* out, std::chrono::milliseconds timeout) = 0;
};

class SinkContext {
 public:
  virtual ~SinkContext() = default;
  virtual SinkInput& input() = 0;
  virtual ComponentMetrics& metrics() = 0;
  // Requested when the agent stops hard (shutdown timeout passed): give up
  // retries, Finalize(kFailed) what is held, return.
  virtual std::stop_token hard_stop() const = 0;
  // Health as shown by /ready and tributary_component_healthy.
  virtual void SetHealthy(bool healthy, std::string_view reason) = 0;
  // The sink can never deliver again (its output is gone for good, such as
  // a stdout whose reader has exited): the agent shuts down, and what the
  // sink has not delivered is failed, to be read again where the source
  // allows.
  virtual void Abandon(std::string_view reason) { (void)reason; }
  // At a stop: the sink gave up `events` it had already acknowledged to
  // their sources ahead of delivery (the kafka sink's `acknowledgements:
  // false` finalizes a batch Delivered once it is queued). No source reads
  // them again: the stop's report counts them with the rest it gave up,
  // as lost. Called once, from the sink's thread, before Run returns.
  virtual void GaveUpAcknowledged(uint64_t events) { (void)events; }
};

class Sink {
 public:
  virtual ~Sink() = default;
  // Delivers batches until the input is closed and drained (or a hard
  // stop). Every batch taken must be finalized: delivered, rejected, or
  // failed when given up.
  virtual Status Run(SinkContext& ctx) = 0;
};

// A sink that writes one batch at a time synchronously. The runtime-side
// loop retries Write with backoff while it returns a retriable error, and
// calls Flush when idle and before returning.
class SimpleSink : public Sink {
 public:
  // Writes the batch. OK = delivered; kInvalidArgument = rejected (not
  // retried); kCancelled = the output is gone for good (the batch and every
  // later one fail, and the sink abandons: SinkContext::Abandon); other
  // errors are retried with backoff.
  virtual Status Write(const Batch& batch) = 0;
  virtual Status Flush() { return Status::Ok(); }
  // Events the last successful Write discarded on purpose of its own (and
  // counted once): they are not counted as sent.
  virtual size_t DiscardedByLastWrite() const { return 0; }
  Status Run(SinkContext& ctx) final;
};

}  // namespace tributary
