#include "sinks/elasticsearch_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/env.h"
#include "agent/json.h"
#include "agent/memory.h"

namespace tributary {

namespace {

constexpr size_t kMaxErrorTypes = 64;
constexpr std::chrono::milliseconds kIdleWait{500};
constexpr std::chrono::milliseconds kPollWhileInFlight{5};

std::string UrlEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// A short, single-line excerpt of a response body for logs.
std::string Excerpt(std::string_view body, size_t max = 300) {
  std::string s(body.substr(0, max));
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (body.size() > max) s += "...";
  return s;
}

std::string Millis(std::chrono::steady_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

Result<std::unique_ptr<Sink>> ElasticsearchSink::Build(const Config& config, BuildContext& ctx) {
  auto encoder = es::BulkEncoder::Create(config);
  if (!encoder.ok()) return encoder.status();
  es::HttpClientOptions opts;
  for (const auto& url : config.endpoints) {
    auto e = es::ParseEndpoint(url);
    if (!e.ok()) return e.status();
    opts.endpoints.push_back(std::move(e).value());
  }
  opts.timeout = config.request.timeout_secs.get();
  opts.max_idle_per_endpoint = static_cast<size_t>(config.request.concurrency);
  opts.tls = config.tls;
  opts.user_agent = std::string("tributary/") + TRIBUTARY_VERSION;
  if (config.auth.strategy == "basic") opts.authorization = es::BasicAuthorization(config.auth.user, config.auth.password);
  if (config.auth.strategy == "api_key") opts.authorization = "ApiKey " + config.auth.api_key;
  auto client = es::HttpClient::Create(std::move(opts));
  if (!client.ok()) return client.status();
  // Rejected documents kept nowhere would be lost where the user asked to
  // keep them: a dead-letter file that cannot be written stops the start
  // (out of descriptors for a moment, Run tries again).
  int dead_letter_fd = -1;
  if (config.dead_letter.path) {
    auto fd = OpenForAppend(*config.dead_letter.path, 0640);
    if (!fd.ok() && fd.status().code() != StatusCode::kResourceExhausted)
      return Status::InvalidArgument("dead_letter.path: " + fd.status().message() +
                                     ": make it writable by the user tributary runs as, or name another file");
    if (fd.ok()) dead_letter_fd = *fd;
  }
  return std::unique_ptr<Sink>(new ElasticsearchSink(config, std::move(encoder).value(), std::move(client).value(),
                                                     dead_letter_fd, ctx));
}

ElasticsearchSink::ElasticsearchSink(const Config& config, es::BulkEncoder encoder,
                                     std::unique_ptr<es::HttpClient> client, int dead_letter_fd, BuildContext& ctx)
    : id_(ctx.id),
      max_events_(config.batch.max_events),
      max_bytes_(config.batch.max_bytes.bytes),
      batch_timeout_(config.batch.timeout_secs.get()),
      concurrency_(static_cast<size_t>(config.request.concurrency)),
      backoff_initial_(config.request.retry_initial_backoff_ms.get()),
      backoff_max_(config.request.retry_max_backoff_ms.get()),
      gzip_(config.compression == "gzip"),
      id_field_(config.id_field.value_or("")),
      dead_letter_path_(config.dead_letter.path),
      encoder_(std::move(encoder)),
      client_(std::move(client)),
      metrics_(ctx.metrics),
      request_duration_(&ctx.metrics->RequestDuration()),
      retries_(&ctx.metrics->Retries()),
      already_present_(&ctx.metrics->AlreadyPresent()),
      template_failed_(&ctx.metrics->Errors("template_failed", "processing")),
      missing_id_(&ctx.metrics->Errors("id_field_missing", "processing")),
      long_id_(&ctx.metrics->Errors("id_too_long", "processing")),
      dead_letter_failed_(&ctx.metrics->Errors("dead_letter_write_failed", "sending")) {
  target_ = "/_bulk?" + std::string(es::kBulkFilterPath);
  if (config.pipeline) target_ += "&pipeline=" + UrlEncode(*config.pipeline);
  dead_letter_fd_ = dead_letter_fd;
  // The error types every deployment sees, bound now; others on first use.
  for (const char* t : {"es_rejected_execution_exception", "mapper_parsing_exception", "document_parsing_exception",
                        "illegal_argument_exception", "version_conflict_engine_exception", "connection_failed",
                        "connection_closed", "timeout", "auth_failed", "invalid_response", "http_429", "http_503"})
    errors_[t] = &ctx.metrics->Errors(t, "sending");
}

ElasticsearchSink::~ElasticsearchSink() {
  client_.reset();  // no callback after this
  if (dead_letter_fd_ >= 0) ::close(dead_letter_fd_);
}

// ---- Run loop ----------------------------------------------------------------

Status ElasticsearchSink::Run(SinkContext& ctx) {
  ctx_ = &ctx;
  if (dead_letter_path_ && dead_letter_fd_ < 0) {
    auto fd = OpenForAppend(*dead_letter_path_, 0640);
    if (fd.ok()) dead_letter_fd_ = *fd;
    else
      TLOG_ERROR(id_, "cannot open dead_letter.path: " + fd.status().message() +
                          "; rejected documents will only be counted and logged");
  }
  client_->Start();
  building_ = std::make_unique<Request>(backoff_initial_, backoff_max_);
  std::stop_callback wake(ctx.hard_stop(), [this] {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  });
  bool input_closed = false;
  while (true) {
    ProcessCompletions();
    if (ctx.hard_stop().stop_requested()) {
      FailEverything();
      break;
    }
    auto now = Clock::now();
    LaunchDue(now);
    // Move input into requests as far as the free slots allow.
    while (true) {
      if (has_input_ && !BuildingFull()) {
        EncodeInput(now);
        continue;
      }
      bool ready = !building_->items.empty() &&
                   (BuildingFull() || now >= building_deadline_ || (input_closed && !has_input_));
      if (ready && live_.size() < concurrency_) {
        LaunchBuilding();
        continue;
      }
      break;
    }
    if (input_closed && !has_input_ && building_->items.empty() && live_.empty()) break;
    const auto wake_at = NextWake(now);
    const bool can_take = !input_closed && !has_input_ && !BuildingFull();
    if (can_take) {
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - now);
      timeout = std::clamp(timeout, std::chrono::milliseconds(0), in_flight_ ? kPollWhileInFlight : kIdleWait);
      Batch batch;
      auto r = ctx.input().Next(&batch, timeout);
      if (r == SinkInput::Result::kBatch) TakeInput(std::move(batch));
      else if (r == SinkInput::Result::kClosed) input_closed = true;
      else if (live_.empty()) ReturnFreeMemoryWhenIdle();
    } else {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, std::min(wake_at, now + kIdleWait),
                     [&] { return !completions_.empty() || ctx.hard_stop().stop_requested(); });
    }
  }
  client_.reset();  // joins the I/O thread: no callback after this
  return Status::Ok();
}

ElasticsearchSink::Clock::time_point ElasticsearchSink::NextWake(Clock::time_point now) const {
  auto wake = now + kIdleWait;
  if (!building_->items.empty() && live_.size() < concurrency_) wake = std::min(wake, building_deadline_);
  for (const auto& r : live_)
    if (!r->in_flight) wake = std::min(wake, r->due);
  return wake;
}

// ---- Input → requests --------------------------------------------------------

void ElasticsearchSink::TakeInput(Batch batch) {
  input_tracker_ = NewTracker(std::move(batch.finalizers()));
  batch.finalizers().clear();
  trackers_[input_tracker_].unsettled = 1;  // held until every event is encoded
  input_ = std::move(batch);
  input_pos_ = 0;
  has_input_ = true;
}

bool ElasticsearchSink::BuildingFull() const {
  return building_->items.size() >= max_events_ || building_->body->size() >= max_bytes_;
}

void ElasticsearchSink::EncodeInput(Clock::time_point now) {
  const auto& events = input_.events();
  std::string& body = *building_->body;
  uint64_t rejected = 0;
  while (input_pos_ < events.size() && !BuildingFull()) {
    es::EncodedItem enc;
    Status s = encoder_.Encode(events[input_pos_], &body, &enc);
    ++input_pos_;
    if (!s.ok()) {
      ++rejected;
      trackers_[input_tracker_].worst = std::max(trackers_[input_tracker_].worst, BatchStatus::kRejected);
      LogLimited(reject_log_, LogLevel::kWarn, id_, "event rejected: cannot render the index name: " + s.message());
      // Kept like a document Elasticsearch rejects: no action, status 0.
      if (dead_letter_fd_ >= 0) {
        dead_letter_document_.clear();
        encoder_.AppendSource(events[input_pos_ - 1], &dead_letter_document_);
        AppendDeadLetter(0, "template_failed", s.message(), "null", dead_letter_document_);
      }
      continue;
    }
    if (building_->items.empty()) building_deadline_ = now + batch_timeout_;
    building_->items.push_back(Item{input_tracker_, enc});
    ++trackers_[input_tracker_].unsettled;
  }
  if (rejected) {
    WriteDeadLetters();
    template_failed_->Increment(static_cast<double>(rejected));
    metrics_->discarded_unintentional().Increment(static_cast<double>(rejected));
  }
  if (uint64_t missing = encoder_.TakeMissingIds()) missing_id_->Increment(static_cast<double>(missing));
  size_t longest = 0;
  if (uint64_t n = encoder_.TakeLongIds(&longest)) {
    long_id_->Increment(static_cast<double>(n));
    LogLimited(reject_log_, LogLevel::kWarn, id_,
               std::to_string(n) + " event(s) sent without an `_id`: their `" + id_field_ + "` is longer than " +
                   "Elasticsearch's limit of " + std::to_string(es::BulkEncoder::kMaxIdBytes) + " bytes (up to " +
                   std::to_string(longest) + "), which would make it refuse the whole bulk request");
  }
  if (input_pos_ >= events.size()) {
    has_input_ = false;
    input_ = Batch();
    Settle(input_tracker_, BatchStatus::kDelivered);  // the encoding hold
  }
}

void ElasticsearchSink::LaunchBuilding() {
  live_.push_back(std::move(building_));
  building_ = std::make_unique<Request>(backoff_initial_, backoff_max_);
  Launch(live_.back().get());
}

void ElasticsearchSink::Launch(Request* r) {
  if (r->attempts > 0) retries_->Increment();
  ++r->attempts;
  if (!r->wire) {
    if (gzip_) {
      auto z = std::make_shared<std::string>();
      Status s = es::GzipCompress(*r->body, 1, z.get());
      if (s.ok()) r->wire = std::move(z);
      else r->wire = r->body;  // cannot happen short of memory exhaustion; send it plain
    } else {
      r->wire = r->body;
    }
  }
  const bool gzip = r->wire != r->body;
  r->in_flight = true;
  ++in_flight_;
  client_->Post(target_, r->wire, gzip, [this, r](es::HttpResponse resp) {
    std::lock_guard lock(mu_);
    completions_.push_back(Completion{r, std::move(resp)});
    cv_.notify_all();
  });
}

void ElasticsearchSink::LaunchDue(Clock::time_point now) {
  for (size_t i = 0; i < live_.size(); ++i) {
    Request* r = live_[i].get();
    if (!r->in_flight && r->due <= now) Launch(r);
  }
}

// ---- Responses -----------------------------------------------------------------

void ElasticsearchSink::ProcessCompletions() {
  std::deque<Completion> done;
  {
    std::lock_guard lock(mu_);
    done.swap(completions_);
  }
  for (auto& c : done) {
    c.request->in_flight = false;
    --in_flight_;
    if (c.response.resent) {
      CountResend(*c.request, c.response);
    } else {
      request_duration_->Observe(std::chrono::duration<double>(c.response.duration).count());
    }
    Handle(c.request, c.response);
  }
}

void ElasticsearchSink::Handle(Request* r, es::HttpResponse& resp) {
  const std::string& url = client_->endpoint(resp.endpoint).url;
  if (!resp.error.ok()) {
    ErrorCounter(resp.timed_out ? "timeout" : resp.status ? "invalid_response" : "connection_failed").Increment();
    SetHealth(false, resp.error.message());
    std::string why = resp.error.message();
    if (resp.status >= 200 && resp.status < 300)
      why += " (the status was HTTP " + std::to_string(resp.status) +
             ": the documents are probably stored, and sending them again may store them twice)";
    return RetryRequest(r, why, true);
  }
  switch (es::ClassifyRequest(resp.status)) {
    case es::RequestOutcome::kItems:
      return HandleItems(r, resp);
    case es::RequestOutcome::kRetry:
      ErrorCounter("http_" + std::to_string(resp.status)).Increment();
      SetHealth(false, "HTTP " + std::to_string(resp.status) + " from " + url);
      return RetryRequest(r, "HTTP " + std::to_string(resp.status) + " from " + url + ": " + Excerpt(resp.body),
                          resp.status != 429);
    case es::RequestOutcome::kAuthRetry:
      ErrorCounter("auth_failed").Increment();
      return Hold(r, "authentication failed: HTTP " + std::to_string(resp.status) + " from " + url,
                  "check auth.strategy and its credentials", resp.body);
    case es::RequestOutcome::kTooLarge:
      ErrorCounter("http_413").Increment();
      return Split(r, 413, "request_too_large", "a single document is larger than the server accepts",
                   "bulk request too large for the server (HTTP 413): split into two; lower batch.max_bytes");
    case es::RequestOutcome::kSplit: {
      // Elasticsearch refuses a whole request for one document it cannot
      // take (an `_id` over 512 bytes, an action line it cannot parse):
      // rejecting every document of it lost the good ones with the bad.
      std::string type, reason;
      if (es::ParseRequestError(resp.body, &type, &reason)) {
        ErrorCounter("http_" + std::to_string(resp.status)).Increment();
        const std::string why = "bulk request refused as a whole (HTTP " + std::to_string(resp.status) + " " + type +
                                ": " + Excerpt(reason, 200) + ")";
        return Split(r, resp.status, type, reason,
                     r->items.size() > 1 ? why + ": split into two to find the document(s) it refuses" : why);
      }
      [[fallthrough]];  // not Elasticsearch's error: the endpoint's
    }
    case es::RequestOutcome::kHold: {
      ErrorCounter("http_" + std::to_string(resp.status)).Increment();
      const bool redirect = resp.status >= 300 && resp.status < 400;
      std::string advice =
          redirect ? "a redirect" + (resp.location.empty() ? std::string() : " to " + resp.location) +
                         ", which the sink does not follow: set `endpoints` to where Elasticsearch answers"
                   : "no answer of Elasticsearch's bulk API: check the endpoint's address and path, and any proxy "
                     "in front of it";
      return Hold(r, "HTTP " + std::to_string(resp.status) + " from " + url, advice, resp.body);
    }
  }
}

// The endpoint answered, but not about the documents (credentials, a
// redirect, a wrong path): every document is kept and sent again after a
// backoff, for as long as it takes, with the sink unhealthy meanwhile.
void ElasticsearchSink::Hold(Request* r, const std::string& why, std::string_view advice, std::string_view body) {
  SetHealth(false, why);
  auto delay = r->backoff.Next();
  r->due = Clock::now() + delay;
  r->awaits_endpoint = true;
  LogLimited(hold_log_, LogLevel::kError, id_,
             why + " (" + std::string(advice) + "); holding " + std::to_string(r->items.size()) +
                 " documents and retrying in " + Millis(delay) + ", nothing is dropped: " + Excerpt(body, 200));
}

void ElasticsearchSink::HandleItems(Request* r, es::HttpResponse& resp) {
  es::BulkResponseClassifier::Summary summary;
  std::vector<es::EncodedItem>& enc_list = enc_scratch_;
  enc_list.clear();
  for (const auto& it : r->items) enc_list.push_back(it.enc);
  Status s = classifier_.Classify(&resp.body, encoder_.create_action(), enc_list, &results_, &summary);
  if (!s.ok()) {
    ErrorCounter("invalid_response").Increment();
    return RetryRequest(r, s.message() + ": " + Excerpt(resp.body), true);
  }
  SetHealth(true, "");
  WakeAwaitingEndpoint();
  metrics_->sent_bytes().Increment(static_cast<double>(r->wire->size()));
  metrics_->sent_events().Increment(static_cast<double>(summary.delivered));
  if (summary.already_present) already_present_->Increment(static_cast<double>(summary.already_present));
  if (results_.empty()) {  // "errors": false
    for (const auto& it : r->items) Settle(it.tracker, BatchStatus::kDelivered);
    return Finish(r);
  }
  // Items to retry go into a new body; the others settle now (rejected
  // ones after their dead letters are written).
  auto retry_body = std::make_shared<std::string>();
  std::vector<Item> retry_items;
  std::vector<uint32_t> settle_rejected;
  std::string_view first_retry_type;
  const std::string& body = *r->body;
  for (size_t i = 0; i < r->items.size(); ++i) {
    const Item& it = r->items[i];
    const es::ItemResult& res = results_[i];
    switch (res.outcome) {
      case es::ItemOutcome::kDelivered:
        Settle(it.tracker, BatchStatus::kDelivered);
        break;
      case es::ItemOutcome::kRejected: {
        std::string reason(res.reason);
        if (!res.cause_type.empty() || !res.cause_reason.empty())
          reason += " (caused by " + std::string(res.cause_type) + ": " + std::string(res.cause_reason) + ")";
        Reject(*r, it, res.status, res.error_type, reason, &settle_rejected);
        break;
      }
      case es::ItemOutcome::kRetry: {
        ErrorCounter(res.error_type).Increment();
        if (first_retry_type.empty()) first_retry_type = res.error_type;
        Item moved = it;
        const uint32_t shift = static_cast<uint32_t>(retry_body->size()) - it.enc.begin;
        retry_body->append(body, it.enc.begin, it.enc.end - it.enc.begin);
        moved.enc.begin += shift;
        moved.enc.source_begin += shift;
        moved.enc.end += shift;
        retry_items.push_back(moved);
        break;
      }
    }
  }
  WriteDeadLetters();
  for (uint32_t t : settle_rejected) Settle(t, BatchStatus::kRejected);
  if (retry_items.empty()) return Finish(r);
  std::string why = std::to_string(retry_items.size()) + " of " + std::to_string(r->items.size()) +
                    " documents failed temporarily (" + std::string(first_retry_type) + ")";
  r->body = std::move(retry_body);
  r->wire.reset();
  r->items = std::move(retry_items);
  RetryRequest(r, why, false);
}

// The HTTP client sent the request again on a new connection because its
// kept-alive one closed without answering. The first copy may have been
// indexed, so it is a retry like any other: each attempt is a request of
// its own in the duration histogram, the closed connection is counted as
// the cause (`connection_closed`), and it is logged so that a duplicate
// can be explained.
void ElasticsearchSink::CountResend(const Request& r, const es::HttpResponse& resp) {
  using Seconds = std::chrono::duration<double>;
  request_duration_->Observe(Seconds(resp.first_attempt).count());
  request_duration_->Observe(Seconds(resp.duration - resp.first_attempt).count());
  ErrorCounter("connection_closed").Increment();
  retries_->Increment();
  LogLimited(retry_log_, LogLevel::kWarn, id_,
             "bulk request (" + std::to_string(r.items.size()) +
                 " documents) sent again at once on a new connection: " + resp.resent_after +
                 (!id_field_.empty() ? std::string("; Elasticsearch may have indexed the first copy (id_field makes a "
                                              "repeat target the same documents)")
                                : std::string("; if Elasticsearch indexed the first copy, its documents are now "
                                              "stored twice (set id_field to prevent that)")));
}

void ElasticsearchSink::RetryRequest(Request* r, std::string_view why, bool awaits_endpoint) {
  auto delay = r->backoff.Next();
  r->due = Clock::now() + delay;
  r->awaits_endpoint = awaits_endpoint;
  LogLimited(retry_log_, LogLevel::kWarn, id_,
             "bulk request will be retried in " + Millis(delay) + " (" + std::to_string(r->items.size()) +
                 " documents): " + std::string(why));
}

// Each request keeps its own backoff. After an outage the oldest ones,
// having failed most often, would wait longest (up to
// retry_max_backoff_ms) while newer requests are delivered; an
// acknowledgement moves only to the end of what is delivered without a
// gap (a file's checkpoint, a disk buffer's ledger), so it stayed behind,
// and a kill -9 then sent everything after it again. The endpoint answers
// now: they go at once. Their backoff is not reset, so an endpoint that
// fails again (one of several down) still waits longer each time.
void ElasticsearchSink::WakeAwaitingEndpoint() {
  const auto now = Clock::now();
  for (auto& w : live_) {
    if (w->in_flight || !w->awaits_endpoint) continue;
    w->awaits_endpoint = false;
    w->due = std::min(w->due, now);
  }
}

void ElasticsearchSink::Split(Request* r, int status, std::string_view type, std::string_view reason,
                              const std::string& why) {
  if (r->items.size() <= 1) {
    RejectAll(r, status, type, reason);
    return;
  }
  // Halve it: the first half stays in this request, the second becomes a
  // new live request (the only way the live count goes over concurrency).
  const size_t half = r->items.size() / 2;
  auto second = std::make_unique<Request>(backoff_initial_, backoff_max_);
  second->attempts = r->attempts;
  const std::string& body = *r->body;
  auto first_body = std::make_shared<std::string>();
  for (size_t i = 0; i < r->items.size(); ++i) {
    Item it = r->items[i];
    Request* dst = i < half ? r : second.get();
    std::string& out = i < half ? *first_body : *second->body;
    const uint32_t shift = static_cast<uint32_t>(out.size()) - it.enc.begin;
    out.append(body, it.enc.begin, it.enc.end - it.enc.begin);
    it.enc.begin += shift;
    it.enc.source_begin += shift;
    it.enc.end += shift;
    if (dst == second.get()) second->items.push_back(it);
  }
  r->items.resize(half);
  size_t off = 0;
  for (auto& it : r->items) {  // recompute offsets of the first half in its new body
    const uint32_t len = it.enc.end - it.enc.begin, src = it.enc.source_begin - it.enc.begin;
    it.enc.begin = static_cast<uint32_t>(off);
    it.enc.source_begin = it.enc.begin + src;
    it.enc.end = it.enc.begin + len;
    off += len;
  }
  r->body = std::move(first_body);
  r->wire.reset();
  r->due = Clock::now();
  second->due = Clock::now();
  LogLimited(retry_log_, LogLevel::kWarn, id_, why);
  live_.push_back(std::move(second));
}

void ElasticsearchSink::RejectAll(Request* r, int status, std::string_view type, std::string_view reason) {
  std::vector<uint32_t> settle;
  for (const auto& it : r->items) Reject(*r, it, status, type, reason, &settle);
  WriteDeadLetters();
  for (uint32_t t : settle) Settle(t, BatchStatus::kRejected);
  Finish(r);
}

void ElasticsearchSink::Reject(const Request& r, const Item& item, int status, std::string_view type,
                               std::string_view reason, std::vector<uint32_t>* settle_later) {
  ErrorCounter(type).Increment();
  metrics_->discarded_unintentional().Increment();
  const std::string& body = *r.body;
  std::string_view action(body.data() + item.enc.begin, item.enc.source_begin - item.enc.begin - 1);
  std::string_view source(body.data() + item.enc.source_begin, item.enc.end - item.enc.source_begin - 1);
  LogLimited(reject_log_, LogLevel::kError, id_,
             "document rejected by Elasticsearch (HTTP " + std::to_string(status) + " " + std::string(type) +
                 "): " + std::string(reason.substr(0, 300)) + "; action " + std::string(action.substr(0, 200)));
  AppendDeadLetter(status, type, reason, action, source);
  settle_later->push_back(item.tracker);
}

void ElasticsearchSink::AppendDeadLetter(int status, std::string_view type, std::string_view reason,
                                         std::string_view action, std::string_view document) {
  if (dead_letter_fd_ < 0) return;
  dead_letters_.append(R"({"timestamp":")");
  AppendRfc3339(Now(), &dead_letters_);
  dead_letters_.append(R"(","component_id":)");
  AppendJsonString(id_, &dead_letters_);
  dead_letters_.append(R"(,"status":)");
  dead_letters_.append(std::to_string(status));
  dead_letters_.append(R"(,"error_type":)");
  AppendJsonString(type, &dead_letters_);
  dead_letters_.append(R"(,"reason":)");
  AppendJsonString(reason, &dead_letters_);
  dead_letters_.append(R"(,"action":)");
  dead_letters_.append(action);
  dead_letters_.append(R"(,"document":)");
  dead_letters_.append(document);
  dead_letters_.append("}\n");
}

void ElasticsearchSink::WriteDeadLetters() {
  if (dead_letters_.empty()) return;
  size_t off = 0;
  while (off < dead_letters_.size()) {
    ssize_t n = ::write(dead_letter_fd_, dead_letters_.data() + off, dead_letters_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      dead_letter_failed_->Increment();
      LogLimited(reject_log_, LogLevel::kError, id_,
                 "cannot write to dead_letter.path " + *dead_letter_path_ + ": " + std::strerror(errno));
      break;
    }
    off += static_cast<size_t>(n);
  }
  dead_letters_.clear();
}

void ElasticsearchSink::Finish(Request* r) {
  for (auto it = live_.begin(); it != live_.end(); ++it) {
    if (it->get() == r) {
      live_.erase(it);
      return;
    }
  }
}

// ---- Acknowledgements ------------------------------------------------------------

uint32_t ElasticsearchSink::NewTracker(std::vector<FinalizerRef> finalizers) {
  uint32_t t;
  if (!free_trackers_.empty()) {
    t = free_trackers_.back();
    free_trackers_.pop_back();
  } else {
    t = static_cast<uint32_t>(trackers_.size());
    trackers_.emplace_back();
  }
  trackers_[t].finalizers = std::move(finalizers);
  trackers_[t].unsettled = 0;
  trackers_[t].worst = BatchStatus::kDelivered;
  return t;
}

void ElasticsearchSink::Settle(uint32_t t, BatchStatus status) {
  Tracker& tr = trackers_[t];
  tr.worst = std::max(tr.worst, status);
  if (--tr.unsettled > 0) return;
  for (auto& f : tr.finalizers) f.Release(tr.worst);
  tr.finalizers.clear();
  free_trackers_.push_back(t);
}

// What is given up is counted and logged by the topology (one line per
// sink, with its memory buffer's events).
void ElasticsearchSink::FailEverything() {
  for (auto& r : live_)
    for (const auto& it : r->items) Settle(it.tracker, BatchStatus::kFailed);
  live_.clear();
  for (const auto& it : building_->items) Settle(it.tracker, BatchStatus::kFailed);
  building_->items.clear();
  if (has_input_) {
    has_input_ = false;
    input_ = Batch();
    Settle(input_tracker_, BatchStatus::kFailed);
  }
}

// ---- Helpers ---------------------------------------------------------------------

Counter& ElasticsearchSink::ErrorCounter(std::string_view type) {
  auto it = errors_.find(type);
  if (it != errors_.end()) return *it->second;
  std::string key(type.empty() ? "unknown_error" : type);
  if (errors_.size() >= kMaxErrorTypes) key = "other";
  auto [pos, inserted] = errors_.try_emplace(key, nullptr);
  if (inserted) pos->second = &metrics_->Errors(key, "sending");
  return *pos->second;
}

void ElasticsearchSink::SetHealth(bool healthy, const std::string& reason) {
  if (healthy == healthy_) return;
  healthy_ = healthy;
  ctx_->SetHealthy(healthy, reason);
}

TRIBUTARY_REGISTER_SINK("elasticsearch", ElasticsearchSink);

}  // namespace tributary
