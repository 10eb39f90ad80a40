#include "agent/topology.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "agent/log.h"
#include "agent/worker_pool.h"
#include "config/registry.h"

namespace tributary {

struct Topology::Node {
  std::string id;
  ComponentKind kind;
  std::string type;
  std::unique_ptr<ComponentMetrics> metrics;
  std::unique_ptr<Source> source;
  std::unique_ptr<Transform> transform;
  std::unique_ptr<Sink> sink;
  std::unique_ptr<Buffer> buffer;
  // Per output (0 = default, then named outputs): the nodes consuming it.
  std::vector<std::vector<Node*>> downstream;
  std::vector<std::string> output_names;
  // Per named output (index 0, the default output, unused: a component
  // with named outputs, i.e. a route, sends nothing there and, as in Vector,
  // has no sent_events series without an `output` label).
  std::vector<Counter*> output_sent;
  std::atomic<bool> healthy{true};
  Gauge* healthy_gauge = nullptr;  // sinks: tributary_component_healthy
  std::mutex health_mu;
  std::string health_reason;
  HealthLog health_log;  // under health_mu
  // Events refused at a stop before they reached a buffer: sinks, pushes
  // into an aborted or closed buffer; sources, batches not yet transformed
  // when the hard stop came (pool path).
  std::atomic<uint64_t> refused{0};
  // Sinks: events given up at a stop after being acknowledged ahead of
  // delivery (SinkContext::GaveUpAcknowledged): lost whatever the source.
  std::atomic<uint64_t> acknowledged_given_up{0};
  std::vector<Node*> upstream_sources;  // sinks: the sources that reach them
};

namespace {

// Hands a batch to a sink's buffer, counting it if the buffer refuses it
// (stopping).
void PushTo(Topology::Node* sink, Batch batch, WhileBlocked* while_blocked = nullptr) {
  const size_t n = batch.size();
  if (!sink->buffer->Push(std::move(batch), while_blocked)) sink->refused.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

// ---- Source side -----------------------------------------------------------

class Topology::SourceRunner final : public SourceContext {
 public:
  SourceRunner(Topology* topology, Node* node, WorkerPool* pool) : topology_(topology), node_(node) {
    // Only batches that meet a transform are worth a trip through the pool.
    bool feeds_transform = false;
    for (Node* n : node_->downstream[0]) feeds_transform |= n->kind == ComponentKind::kTransform;
    if (pool != nullptr && feeds_transform) {
      pool_ = pool;
      max_in_flight_ = 4 * (pool->size() + 1);  // the workers and this thread
    }
  }

  void Start() {
    thread_ = std::jthread([this](std::stop_token) {
      NameThread("src:" + node_->id);
      Status s = node_->source->Run(*this);
      while_blocked_ = nullptr;  // Run has returned: the source's work is over
      Flush();
      if (!s.ok()) TLOG_ERROR(node_->id, "source stopped with an error: " + s.ToString());
      else TLOG_DEBUG(node_->id, "source finished");
      WaitInFlight();
      topology_->SourceFinished(node_->id, s);
    });
  }
  void RequestStop() { stop_.request_stop(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  bool Send(Batch batch) override { return SendBatch(std::move(batch), false); }
  bool SendMore(Batch batch) override { return SendBatch(std::move(batch), true); }
  void Flush() override { (void)Release(); }
  void SetWhileBlocked(WhileBlocked* work) override { while_blocked_ = work; }
  std::stop_token stop_token() const override { return stop_.get_token(); }
  std::chrono::steady_clock::time_point stop_read_deadline() const override {
    return topology_->stop_read_until_.load();
  }
  ComponentMetrics& metrics() override { return *node_->metrics; }
  Node* node() { return node_; }
  size_t in_flight() {
    std::lock_guard lock(mu_);
    return in_flight_.size();
  }

 private:
  // What SendMore gathers before handing it on: about a sink batch, and
  // at most about a MiB of input. With a pool, 4 × (threads + 1) such jobs
  // may wait for room in the sinks' buffers: counted in events alone, that
  // was 12,000 events on 2 cores whatever their size (1.2 GB of 100 KiB
  // lines) beside a buffer bounded to a few MiB.
  static constexpr size_t kGatherEvents = 1000;
  static constexpr size_t kGatherBytes = 1 << 20;

  bool SendBatch(Batch batch, bool more) {
    if (batch.empty()) {
      batch.Finalize(BatchStatus::kDelivered);  // nothing to deliver: a position to commit
      return more || Release();
    }
    node_->metrics->received_events().Increment(static_cast<double>(batch.size()));
    node_->metrics->received_bytes().Increment(static_cast<double>(batch.bytes()));
    node_->metrics->sent_events().Increment(static_cast<double>(batch.size()));
    gathered_events_ += batch.size();
    gathered_bytes_ += batch.bytes();
    // Without a pool the transforms run here, on the source's thread, over
    // events still in this core's cache, and what they make for the sinks
    // is gathered; with one, the batches are gathered into one job.
    if (pool_ == nullptr) topology_->Dispatch(node_->downstream[0], std::move(batch), &held_);
    else gathered_.push_back(std::move(batch));
    if (more && gathered_events_ < kGatherEvents && gathered_bytes_ < kGatherBytes)
      return !topology_->hard_stop_.stop_requested();
    return Release();
  }

  // Hands on what was gathered: pushes the sink batches, or makes the
  // source batches one job, for a worker if one of the pool's is not busy
  // with this source's jobs already, else run here: this thread is one of
  // the --threads transforming, and its own events are in its cache. False
  // when stopping hard.
  bool Release() {
    gathered_events_ = 0;
    gathered_bytes_ = 0;
    if (pool_ == nullptr) {
      for (auto& [sink, b] : held_) PushTo(sink, std::move(b), while_blocked_);
      held_.clear();
      return !topology_->hard_stop_.stop_requested();
    }
    if (gathered_.empty()) return !topology_->hard_stop_.stop_requested();
    auto job = std::make_unique<Job>();
    Job* j = job.get();
    {
      std::unique_lock lock(mu_);
      while (in_flight_.size() >= max_in_flight_) {
        if (topology_->hard_stop_.stop_requested()) {
          lock.unlock();
          for (Batch& b : gathered_) {
            node_->refused.fetch_add(b.size(), std::memory_order_relaxed);
            b.Finalize(BatchStatus::kFailed);
          }
          gathered_.clear();
          return false;
        }
        if (cv_.wait_for(lock, WhileBlocked::kInterval) == std::cv_status::timeout && while_blocked_ != nullptr) {
          lock.unlock();
          while_blocked_->Work();
          lock.lock();
        }
      }
      j->inputs = std::move(gathered_);
      gathered_.clear();
      in_flight_.push_back(std::move(job));
      j->pooled = in_pool_ < 2 * pool_->size();
      in_pool_ += j->pooled;
    }
    if (j->pooled) pool_->Submit([this, j] { Run(j, nullptr); });
    else Run(j, while_blocked_);
    return !topology_->hard_stop_.stop_requested();
  }

  // Source batches on their way to the sinks, run by a worker or the
  // source's thread.
  struct Job {
    std::vector<Batch> inputs;
    SinkPushes pushes;  // filled by whoever runs it
    bool pooled = false;  // run by a worker, not the source's thread
    bool done = false;
  };

  // `while_blocked`: the source's, when this is the source's thread.
  void Run(Job* j, WhileBlocked* while_blocked) {
    for (Batch& b : j->inputs) topology_->Dispatch(node_->downstream[0], std::move(b), &j->pushes);
    j->inputs.clear();
    Finished(j, while_blocked);
  }

  // Called by the thread that ran `j`. Whoever finds the oldest job done
  // (and nobody else pushing) pushes it and every done job after it; on
  // the source's thread, a push that waits for room runs the source's
  // WhileBlocked work, never on a worker's.
  void Finished(Job* j, WhileBlocked* while_blocked) {
    std::unique_lock lock(mu_);
    j->done = true;
    in_pool_ -= j->pooled;
    if (pushing_) return;  // the pusher will get to it
    pushing_ = true;
    while (!in_flight_.empty() && in_flight_.front()->done) {
      Job* head = in_flight_.front().get();
      lock.unlock();
      for (auto& [sink, b] : head->pushes) PushTo(sink, std::move(b), while_blocked);
      head->pushes.clear();
      lock.lock();
      in_flight_.pop_front();  // only now: a blocked push keeps its slot (backpressure)
      cv_.notify_all();
    }
    pushing_ = false;
    cv_.notify_all();
  }

  void WaitInFlight() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_.empty(); });
  }

  Topology* topology_;
  Node* node_;
  std::stop_source stop_;
  std::jthread thread_;
  WorkerPool* pool_ = nullptr;
  WhileBlocked* while_blocked_ = nullptr;  // the source's thread only
  size_t max_in_flight_ = 0;
  size_t in_pool_ = 0;  // jobs of in_flight_ given to the pool and not done
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> in_flight_;  // in the order sent
  bool pushing_ = false;
  // Gathered by SendMore, not handed on yet: sink pushes without a pool,
  // source batches with one.
  SinkPushes held_;
  std::vector<Batch> gathered_;
  size_t gathered_events_ = 0;
  size_t gathered_bytes_ = 0;  // their input bytes (Batch::bytes)
};

// ---- Sink side -------------------------------------------------------------

class Topology::SinkRunner final : public SinkContext, public SinkInput {
 public:
  SinkRunner(Topology* topology, Node* node) : topology_(topology), node_(node) {}

  void Start() {
    thread_ = std::jthread([this](std::stop_token) {
      NameThread("sink:" + node_->id);
      Status s = node_->sink->Run(*this);
      if (!s.ok()) {
        // Nothing delivers its buffer any more: the agent shuts down (exit
        // 1), counting what the sink gives up, rather than go on reading
        // into a buffer nobody empties.
        TLOG_ERROR(node_->id, "sink stopped with an error: " + s.ToString());
        SetHealthy(false, s.message());
        Abandon("stopped with an error: " + s.message());
      }
      {
        std::lock_guard lock(mu_);
        done_ = true;
      }
      cv_.notify_all();
    });
  }
  // Until the sink has returned, `deadline`, or (if `or_forced`) ForceStop.
  bool WaitDone(std::chrono::steady_clock::time_point deadline, bool or_forced = false) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return done_ || (or_forced && topology_->forced_.load()); });
    return done_;
  }
  void Wake() {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  void Detach() {
    if (thread_.joinable()) thread_.detach();
  }

  // SinkInput: the buffer's read side, counting what the sink received.
  SinkInput::Result Next(Batch* out, std::chrono::milliseconds timeout) override {
    auto r = node_->buffer->Next(out, timeout);
    if (r == SinkInput::Result::kBatch)
      node_->metrics->received_events().Increment(static_cast<double>(out->size()));
    return r;
  }

  SinkInput& input() override { return *this; }
  ComponentMetrics& metrics() override { return *node_->metrics; }
  std::stop_token hard_stop() const override { return topology_->hard_stop_.get_token(); }
  void SetHealthy(bool healthy, std::string_view reason) override {
    std::lock_guard lock(node_->health_mu);
    if (node_->healthy_gauge) node_->healthy_gauge->Set(healthy ? 1 : 0);
    if (node_->healthy.exchange(healthy) != healthy) {
      if (auto line = node_->health_log.Change(healthy, reason)) Log(line->level, node_->id, line->text);
    }
    node_->health_reason = std::string(reason);
  }
  void Abandon(std::string_view reason) override {
    std::lock_guard lock(topology_->mu_);
    if (topology_->abandoned_.empty()) topology_->abandoned_ = node_->id + ": " + std::string(reason);
  }
  void GaveUpAcknowledged(uint64_t events) override {
    node_->acknowledged_given_up.fetch_add(events, std::memory_order_relaxed);
  }
  Node* node() { return node_; }

 private:
  Topology* topology_;
  Node* node_;
  std::jthread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// ---- Build -----------------------------------------------------------------

Result<std::unique_ptr<Topology>> Topology::Build(const config::Config& config, Metrics* metrics,
                                                  const std::string& hostname, int threads) {
  std::unique_ptr<Topology> t(new Topology());
  // The source threads transform too: the pool adds the other threads - 1.
  if (threads > 1) t->pool_ = std::make_unique<WorkerPool>(static_cast<size_t>(threads - 1));
  std::map<std::string, Node*> by_id;
  for (const auto& c : config.components) {
    auto node = std::make_unique<Node>();
    node->id = c.id;
    node->kind = c.kind;
    node->type = c.type;
    node->metrics = metrics->ForComponent(c.id, c.kind, c.type, c.outputs);
    node->output_names = c.outputs;
    node->downstream.resize(1 + c.outputs.size());
    node->output_sent.resize(1 + c.outputs.size(), nullptr);
    for (size_t i = 0; i < c.outputs.size(); ++i)
      node->output_sent[i + 1] = &node->metrics->SentEventsForOutput(c.outputs[i]);
    BuildContext ctx{c.id, config.global.data_dir, hostname, node->metrics.get()};
    const auto* type = c.type_info;
    std::string where = std::string(ComponentKindName(c.kind)) + " `" + c.id + "`: ";
    switch (c.kind) {
      case ComponentKind::kSource: {
        auto r = type->build_source(c.options.get(), ctx);
        if (!r.ok()) return Status(r.status().code(), where + r.status().message());
        node->source = std::move(r).value();
        break;
      }
      case ComponentKind::kTransform: {
        auto r = type->build_transform(c.options.get(), ctx);
        if (!r.ok()) return Status(r.status().code(), where + r.status().message());
        node->transform = std::move(r).value();
        break;
      }
      case ComponentKind::kSink: {
        auto r = type->build_sink(c.options.get(), ctx);
        if (!r.ok()) return Status(r.status().code(), where + r.status().message());
        node->sink = std::move(r).value();
        auto b = MakeBuffer(c.buffer, c.id, c.type, config.global.data_dir, metrics);
        if (!b.ok()) return Status(b.status().code(), where + "buffer: " + b.status().message());
        node->buffer = std::move(b).value();
        node->healthy_gauge = &node->metrics->Healthy();
        node->healthy_gauge->Set(1);
        break;
      }
    }
    by_id[c.id] = node.get();
    t->nodes_.push_back(std::move(node));
  }
  // Wire inputs: "id" is the default output, "id.name" a named one.
  for (const auto& c : config.components) {
    Node* consumer = by_id.at(c.id);
    for (const auto& in : c.inputs) {
      auto dot = in.find('.');
      Node* producer = by_id.at(in.substr(0, dot));
      size_t output = 0;
      if (dot != std::string::npos) {
        std::string name = in.substr(dot + 1);
        for (size_t i = 0; i < producer->output_names.size(); ++i)
          if (producer->output_names[i] == name) output = i + 1;
      }
      producer->downstream[output].push_back(consumer);
    }
  }
  // Each sink's sources, for what a stop reports of the events it gave up.
  for (auto& n : t->nodes_) {
    if (n->kind != ComponentKind::kSource) continue;
    std::vector<Node*> todo{n.get()};
    std::set<Node*> seen;
    while (!todo.empty()) {
      Node* at = todo.back();
      todo.pop_back();
      if (!seen.insert(at).second) continue;
      if (at->kind == ComponentKind::kSink) at->upstream_sources.push_back(n.get());
      for (const auto& out : at->downstream) todo.insert(todo.end(), out.begin(), out.end());
    }
  }
  for (auto& n : t->nodes_) {
    if (n->kind == ComponentKind::kSource) t->source_runners_.push_back(std::make_unique<SourceRunner>(t.get(), n.get(), t->pool_.get()));
    if (n->kind == ComponentKind::kSink) t->sink_runners_.push_back(std::make_unique<SinkRunner>(t.get(), n.get()));
  }
  return t;
}

Topology::~Topology() {
  if (state_ == State::kRunning) Stop(std::chrono::milliseconds(0));
}

// ---- Data path -------------------------------------------------------------

void Topology::Dispatch(const std::vector<Node*>& targets, Batch batch, SinkPushes* pushes) {
  if (targets.empty() || batch.empty()) {
    // Filtered out entirely, or an output nobody consumes: done with.
    batch.Finalize(BatchStatus::kDelivered);
    return;
  }
  for (size_t i = 0; i + 1 < targets.size(); ++i) Deliver(targets[i], batch.ShareCopy(), pushes);
  Deliver(targets.back(), std::move(batch), pushes);
}

namespace {

// The source bytes (Batch::bytes()) that `part` of a transform's `whole`
// input events stand for: what a sink's memory buffer counts against its
// max_bytes, and reports in tributary_buffer_bytes. Without it a filter's
// output would count all of its input, and a route's outputs nothing.
size_t ShareOfBytes(size_t bytes, size_t part, size_t whole) {
  if (part == whole || whole == 0) return bytes;
  return static_cast<size_t>(static_cast<unsigned __int128>(bytes) * part / whole);
}

}  // namespace

void Topology::Deliver(Node* node, Batch batch, SinkPushes* pushes) {
  if (node->kind == ComponentKind::kSink) {
    if (pushes != nullptr) pushes->emplace_back(node, std::move(batch));
    else PushTo(node, std::move(batch));
    return;
  }
  const size_t in = batch.size();
  node->metrics->received_events().Increment(static_cast<double>(in));
  // One output batch per output, each carrying the input's finalizers, so
  // that whatever part of the batch goes where, its fate is tracked.
  const size_t n_out = node->downstream.size();
  if (n_out == 1) {
    Batch out[1];
    node->transform->Process(batch, out);
    if (out[0].finalizers().empty()) out[0].take_finalizers(batch);
    batch.Finalize(BatchStatus::kDelivered);  // any refs left: the output holds its own
    out[0].set_bytes(ShareOfBytes(batch.bytes(), out[0].size(), in));
    node->metrics->sent_events().Increment(static_cast<double>(out[0].size()));
    Dispatch(node->downstream[0], std::move(out[0]), pushes);
    return;
  }
  std::vector<Batch> outs(n_out);
  for (auto& o : outs) o = batch.EmptyWithFinalizers();
  node->transform->Process(batch, outs);
  batch.Finalize(BatchStatus::kDelivered);  // each output holds its own refs
  for (size_t i = 0; i < n_out; ++i) {
    outs[i].set_bytes(ShareOfBytes(batch.bytes(), outs[i].size(), in));
    if (i > 0) node->output_sent[i]->Increment(static_cast<double>(outs[i].size()));
    Dispatch(node->downstream[i], std::move(outs[i]), pushes);
  }
}

// ---- Lifecycle -------------------------------------------------------------

void Topology::Start() {
  state_ = State::kRunning;
  for (auto& s : sink_runners_) s->Start();
  {
    std::lock_guard lock(mu_);
    sources_running_ = source_runners_.size();
  }
  for (auto& s : source_runners_) s->Start();
}

void Topology::SourceFinished(const std::string& id, const Status& s) {
  {
    std::lock_guard lock(mu_);
    --sources_running_;
    if (!s.ok() && failed_source_.empty()) failed_source_ = id + ": " + s.ToString();
  }
  sources_cv_.notify_all();
}

bool Topology::WaitSourcesFinished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return sources_cv_.wait_for(lock, timeout, [&] { return sources_running_ == 0; });
}

bool Topology::Stop(std::chrono::milliseconds timeout, const std::set<std::string>* kept_sinks, bool reload) {
  if (state_ != State::kRunning) return true;
  reload_ = reload;
  state_ = State::kStopping;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  // The end of the timeout is kept for stopping hard: sinks give up their
  // requests, sources blocked on a buffer return, a stuck sink thread is
  // waited for until the deadline and then abandoned. ForceStop ends the
  // drain at once, and leaves kMinHardStop for stopping hard.
  const auto drain_deadline = deadline - std::min<std::chrono::milliseconds>(kHardStopReserve, timeout / 2);
  // Sources that read on what their input held at the stop get the first
  // half of the drain; the sinks deliver it meanwhile and in the rest.
  const auto start = Clock::now();
  if (!forced_.load()) stop_read_until_ = start + (std::max(drain_deadline, start) - start) / 2;
  for (auto& s : source_runners_) s->RequestStop();
  // A source blocked on a full buffer returns once the buffer drains, or
  // when the hard stop aborts the buffers.
  bool clean = WaitSourcesFinishedUntil(drain_deadline, /*or_forced=*/true);
  if (clean) {
    for (auto& s : sink_runners_) {
      Buffer& b = *s->node()->buffer;
      if (kept_sinks != nullptr && kept_sinks->contains(s->node()->id)) b.CloseKeeping();
      else b.Close();
    }
    for (auto& s : sink_runners_) clean = s->WaitDone(drain_deadline, /*or_forced=*/true) && clean;
  }
  const auto hard_start = Clock::now();
  const auto hard_deadline = std::max(deadline, hard_start + kMinHardStop);
  // The deadline of the hard stop, shorter once forced.
  auto until = [&] {
    if (!forced_.load()) return hard_deadline;
    return std::min(hard_deadline, std::max(hard_start, forced_at_.load()) + kMinHardStop);
  };
  if (!clean) {
    TLOG_WARN("", std::string(forced_.load() ? "shutdown forced" : "shutdown timeout reached") +
                      ": stopping hard; events in disk buffers stay there, each sink says what else it gives up");
    stop_read_until_ = Clock::time_point::min();
    hard_stop_.request_stop();
    for (auto& s : sink_runners_) s->node()->buffer->Abort();
    if (!WaitSourcesFinishedUntil(until(), /*or_forced=*/true)) WaitSourcesFinishedUntil(until(), false);
    for (auto& s : sink_runners_) s->node()->buffer->Close();
  }
  for (auto& s : source_runners_) s->Join();
  if (pool_) pool_->Stop();  // idle by now: every source waited for its batches
  for (auto& s : sink_runners_) {
    if (s->WaitDone(until(), /*or_forced=*/true) || s->WaitDone(until())) s->Join();
    else {
      TLOG_ERROR(s->node()->id, "sink did not stop; abandoning it");
      s->Detach();
      abandoned_sinks_.push_back(s->node()->id);
    }
  }
  ReportGivenUp();
  for (auto& s : source_runners_) s->node()->source->Finish();
  state_ = State::kStopped;
  return clean;
}

namespace {

// What each source that reads undelivered events again cannot read again
// after all (Source::UndeliveredGone): how many, and where they were.
struct Gone {
  uint64_t events = 0;
  std::string where;
};

// "the file source `app` reads them again at the next start", "they are
// lost: the stdin source `in` cannot read them again", or both; for a
// source in `gone`, the part it cannot read again.
std::string FateOf(const std::vector<Topology::Node*>& sources, const std::map<const Topology::Node*, Gone>& gone,
                   std::string_view when, bool* lost);

}  // namespace

void Topology::ReportGivenUp() {
  // Asked once per source, after every sink has stopped: a source's lost
  // events are counted once, whatever number of sinks gave them up.
  std::map<const Node*, Gone> gone;
  for (auto& s : source_runners_) {
    Node* n = s->node();
    if (!n->source->ReadsUndeliveredAgain()) continue;
    Gone g;
    g.events = n->source->UndeliveredGone(&g.where);
    if (g.events == 0) continue;
    events_lost_ += g.events;
    gone.emplace(n, std::move(g));
  }
  std::set<const Node*> told;  // sources in `gone` some line named
  // `again_or_not`: events whose fate is their sources' (read again, or
  // lost); `acknowledged`: events acknowledged ahead of delivery, lost.
  auto report = [&](Node* n, uint64_t again_or_not, uint64_t acknowledged, const std::string& detail,
                    const std::vector<Node*>& sources) {
    const uint64_t total = again_or_not + acknowledged;
    if (total == 0) return;
    n->metrics->discarded_unintentional().Increment(static_cast<double>(total));
    bool lost = false;
    std::string fate;
    if (again_or_not > 0) {
      bool cannot_reread = false;  // a source that cannot read again at all (stdin)
      fate = FateOf(sources, gone, reload_ ? "when the new pipeline starts" : "at the next start",
                    &cannot_reread);
      if (cannot_reread) events_lost_ += again_or_not;
      lost = cannot_reread;
      for (Node* src : sources) {
        if (!gone.count(src)) continue;
        told.insert(src);
        lost = true;
      }
    }
    if (acknowledged > 0) {
      events_lost_ += acknowledged;
      lost = true;
      fate += std::string(fate.empty() ? "they are lost" : "; the " + std::to_string(acknowledged) +
                                                               " acknowledged before delivery are lost") +
              ": the sink acknowledged them to their sources when it queued them (acknowledgements: false), "
              "so no source reads them again";
    }
    Log(lost ? LogLevel::kError : LogLevel::kWarn, n->id,
        "gave up " + std::to_string(total) + " events at the stop" + detail + ": " + fate);
  };
  for (auto& s : sink_runners_) {
    Node* n = s->node();
    const Buffer::GivenUp b = n->buffer->given_up();
    const uint64_t refused = n->refused.load();
    const uint64_t acknowledged = n->acknowledged_given_up.load();
    std::string detail = " (";
    if (b.held) detail += std::to_string(b.held) + " in its memory buffer, ";
    if (refused) detail += std::to_string(refused) + " refused by its stopped buffer, ";
    detail += std::to_string(b.taken) + " taken for delivery";
    if (acknowledged) detail += ", " + std::to_string(acknowledged) + " acknowledged before delivery";
    if (std::find(abandoned_sinks_.begin(), abandoned_sinks_.end(), n->id) != abandoned_sinks_.end())
      detail += ", not counting the batch it was writing when it was abandoned";
    detail += ")";
    report(n, b.held + b.taken + refused, acknowledged, detail, n->upstream_sources);
  }
  for (auto& s : source_runners_) {
    Node* n = s->node();
    report(n, n->refused.load(), 0, " before they reached a sink", {n});
  }
  // Batches failed before the stop (a disk buffer's fsync error), which
  // no sink's line counts.
  for (const auto& [n, g] : gone)
    if (!told.count(n))
      Log(LogLevel::kError, n->id,
          std::to_string(g.events) + " events not delivered cannot be read again: their files were "
          "deleted, truncated or rewritten since they were read: " + g.where);
}

namespace {

std::string FateOf(const std::vector<Topology::Node*>& sources, const std::map<const Topology::Node*, Gone>& lost_by,
                   std::string_view when, bool* lost) {
  std::vector<std::string> again, gone;
  for (const Topology::Node* src : sources) {
    std::string name = "the " + src->type + " source `" + src->id + "`";
    if (auto it = lost_by.find(src); it != lost_by.end())
      name += " (except " + std::to_string(it->second.events) +
              " events of files deleted, truncated or rewritten since it read them, which are lost: " +
              it->second.where + ")";
    (src->source->ReadsUndeliveredAgain() ? again : gone).push_back(std::move(name));
  }
  auto join = [](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    return out;
  };
  *lost = !gone.empty();
  if (gone.empty()) return join(again) + (again.size() == 1 ? " reads" : " read") + " them again " + std::string(when);
  if (again.empty()) return "they are lost: " + join(gone) + " cannot read them again";
  return join(again) + (again.size() == 1 ? " reads its" : " read theirs") + " again " + std::string(when) +
         "; those of " + join(gone) + " are lost";
}

}  // namespace

void Topology::ForceStop() {
  if (forced_.load()) return;
  forced_at_ = std::chrono::steady_clock::now();
  stop_read_until_ = std::chrono::steady_clock::time_point::min();
  {
    std::lock_guard lock(mu_);
    forced_ = true;
  }
  sources_cv_.notify_all();
  for (auto& s : sink_runners_) s->Wake();
}

bool Topology::WaitSourcesFinishedUntil(std::chrono::steady_clock::time_point deadline, bool or_forced) {
  std::unique_lock lock(mu_);
  sources_cv_.wait_until(lock, deadline, [&] { return sources_running_ == 0 || (or_forced && forced_.load()); });
  return sources_running_ == 0;
}

void Topology::Dispose(std::unique_ptr<Topology> topology) {
  if (!topology) return;
  if (topology->state_ == State::kRunning) topology->Stop(std::chrono::milliseconds(0));
  if (topology->abandoned_sinks_.empty()) return;  // destroyed here
  for (auto& s : topology->sink_runners_) s->node()->buffer->Release();
  // An abandoned sink thread uses its runner and its own node (sink,
  // buffer, metrics), and of the topology only forced_, hard_stop_, mu_ and
  // abandoned_. The rest goes now: the sources with the files, watches and
  // descriptors they hold (a rotated log's space stays pinned while it is
  // open), the transforms, the other sinks' buffers with what they gave
  // up. Kept for every reload that abandons a sink, it grew without bound
  // (3.5 MB and 3 descriptors a reload in the probe).
  Topology& t = *topology;
  auto abandoned = [&t](const Node* n) {
    return std::find(t.abandoned_sinks_.begin(), t.abandoned_sinks_.end(), n->id) != t.abandoned_sinks_.end();
  };
  t.source_runners_.clear();  // joined by Stop
  t.pool_.reset();
  std::erase_if(t.sink_runners_, [&](const auto& r) { return !abandoned(r->node()); });  // joined by Stop
  std::erase_if(t.nodes_, [&](const auto& n) { return n->kind != ComponentKind::kSink || !abandoned(n.get()); });
  for (auto& n : t.nodes_) n->upstream_sources.clear();  // freed above
  // Reachable, not leaked: an abandoned sink thread may still use what is left.
  static auto* graveyard = new std::vector<std::unique_ptr<Topology>>();
  graveyard->push_back(std::move(topology));
}

std::string Topology::FailedSource() {
  std::lock_guard lock(mu_);
  return failed_source_;
}

std::string Topology::AbandonedSink() {
  std::lock_guard lock(mu_);
  return abandoned_;
}

std::vector<std::pair<std::string, std::string>> Topology::UnhealthySinks() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : sink_runners_) {
    Node* n = s->node();
    if (!n->healthy.load()) {
      std::lock_guard lock(n->health_mu);
      out.emplace_back(n->id, n->health_reason);
    }
  }
  return out;
}

}  // namespace tributary
