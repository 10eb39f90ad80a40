#pragma once
// `elasticsearch` sink: indexes events with the `_bulk` API.
//
// Data path (all on the sink's thread): input batches are encoded straight
// into the NDJSON body of the bulk request being built (BulkEncoder); a
// request is sent when it holds `batch.max_events` documents or
// `batch.max_bytes`, or `batch.timeout_secs` after its first event. At most
// `request.concurrency` requests are live at once: in flight on the
// HttpClient's I/O thread, or waiting for their retry. Responses come back
// through a queue and are classified per item (BulkResponseClassifier):
//   delivered  2xx, or 409 on `create` with an `_id` (already indexed)
//   retry      429 / 5xx items: only those items are sent again, after an
//              exponential backoff with jitter
//   rejected   other 4xx items: counted by error type, logged (sampled),
//              appended to the dead-letter file, never retried
// Whole-request failures (429, 5xx, timeouts, connection errors, 401/403)
// retry the whole request until it succeeds or the agent stops hard; they
// never drop data. 401/403 and outages mark the sink unhealthy. A request
// the HttpClient sent again at once because its kept-alive connection
// closed unanswered counts as a retry too.
//
// Acknowledgements: a request may hold events of several input batches and
// an input batch may span several requests. Each input batch has a tracker
// counting its unsettled items; when the last one settles, the batch's
// finalizers are released with the worst outcome (delivered < rejected).
// On a hard stop everything unsettled is finalized Failed.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/backoff.h"
#include "agent/component.h"
#include "agent/log.h"
#include "config/registry.h"
#include "sinks/elasticsearch_config.h"
#include "sinks/elasticsearch_encoder.h"
#include "sinks/es_http_client.h"

namespace tributary {

class ElasticsearchSink final : public Sink {
 public:
  using Config = es::ElasticsearchConfig;
  static constexpr std::string_view kSummary =
      "Indexes events into Elasticsearch with the bulk API, retrying only the items that can succeed.";
  static Result<std::unique_ptr<Sink>> Build(const Config& config, BuildContext& ctx);
  static void CheckEnvironment(const Config& config, std::vector<config::EnvCheck>* out) {
    es::CheckEnvironment(config, out);
  }
  ~ElasticsearchSink() override;

  Status Run(SinkContext& ctx) override;

 private:
  using Clock = std::chrono::steady_clock;

  // One input batch's acknowledgement state.
  struct Tracker {
    std::vector<FinalizerRef> finalizers;
    uint32_t unsettled = 0;
    BatchStatus worst = BatchStatus::kDelivered;
  };
  struct Item {
    uint32_t tracker;
    es::EncodedItem enc;  // offsets into its request's body
  };
  // A bulk request: built, then in flight, then done or waiting for a retry.
  struct Request {
    explicit Request(std::chrono::milliseconds initial, std::chrono::milliseconds max) : backoff(initial, max) {}
    std::shared_ptr<std::string> body = std::make_shared<std::string>();  // NDJSON
    std::shared_ptr<const std::string> wire;                            // what was sent (maybe gzip)
    std::vector<Item> items;
    Backoff backoff;
    uint32_t attempts = 0;
    bool in_flight = false;
    Clock::time_point due;  // when waiting for a retry
    // Waiting because the endpoint failed the whole request (no answer,
    // HTTP 5xx, authentication): due at once when another request succeeds.
    // Not for HTTP 429 nor items Elasticsearch asked to retry: those wait.
    bool awaits_endpoint = false;
  };
  struct Completion {
    Request* request;
    es::HttpResponse response;
  };

  // `dead_letter_fd`: dead_letter.path opened for append, or -1.
  ElasticsearchSink(const Config& config, es::BulkEncoder encoder, std::unique_ptr<es::HttpClient> client,
                    int dead_letter_fd, BuildContext& ctx);

  // Input → requests.
  void TakeInput(Batch batch);
  void EncodeInput(Clock::time_point now);
  bool BuildingFull() const;
  void LaunchBuilding();
  void Launch(Request* r);
  void LaunchDue(Clock::time_point now);
  Clock::time_point NextWake(Clock::time_point now) const;

  // Responses → outcomes.
  void ProcessCompletions();
  void Handle(Request* r, es::HttpResponse& resp);
  void HandleItems(Request* r, es::HttpResponse& resp);
  // `awaits_endpoint`: see Request.
  void RetryRequest(Request* r, std::string_view why, bool awaits_endpoint);
  // A request succeeded: those waiting out their backoff for the endpoint
  // go now, oldest first, so the oldest batch is not left behind.
  void WakeAwaitingEndpoint();
  void CountResend(const Request& r, const es::HttpResponse& resp);
  void RejectAll(Request* r, int status, std::string_view type, std::string_view reason);
  // Halves a request the server refused as a whole (413, or 400 for one
  // document in it), both halves sent at once; a single document is
  // rejected with `status`, `type` and `reason`. `why` is logged.
  void Split(Request* r, int status, std::string_view type, std::string_view reason, const std::string& why);
  // Keeps the request for a retry after its backoff: the endpoint answered,
  // but not about the documents. Logs `why (advice)`, marks the sink unhealthy.
  void Hold(Request* r, const std::string& why, std::string_view advice, std::string_view body);
  void Finish(Request* r);
  void Reject(const Request& r, const Item& item, int status, std::string_view type, std::string_view reason,
              std::vector<uint32_t>* settle_later);
  // One dead-letter record (written by WriteDeadLetters); `action` is JSON.
  void AppendDeadLetter(int status, std::string_view type, std::string_view reason, std::string_view action,
                        std::string_view document);
  void WriteDeadLetters();

  // Acknowledgements.
  uint32_t NewTracker(std::vector<FinalizerRef> finalizers);
  void Settle(uint32_t tracker, BatchStatus status);
  void FailEverything();

  Counter& ErrorCounter(std::string_view type);
  void SetHealth(bool healthy, const std::string& reason);

  // Configuration.
  const std::string id_;
  const uint64_t max_events_;
  const uint64_t max_bytes_;
  const std::chrono::milliseconds batch_timeout_;
  const size_t concurrency_;
  const std::chrono::milliseconds backoff_initial_, backoff_max_;
  const bool gzip_;
  const std::string id_field_;  // empty: none
  const std::optional<std::string> dead_letter_path_;
  std::string target_;  // /_bulk?filter_path=...

  es::BulkEncoder encoder_;
  es::BulkResponseClassifier classifier_;
  std::unique_ptr<es::HttpClient> client_;

  // Metrics, bound at build.
  ComponentMetrics* metrics_;
  Histogram* request_duration_;
  Counter* retries_;
  Counter* already_present_;  // 409 on `create`: delivered, already indexed
  Counter* template_failed_;
  Counter* missing_id_;
  Counter* long_id_;  // id_field text over Elasticsearch's 512 bytes: sent without `_id`
  Counter* dead_letter_failed_;
  std::map<std::string, Counter*, std::less<>> errors_;  // by error type; created on first use, capped

  // State of the sink thread.
  SinkContext* ctx_ = nullptr;
  std::vector<Tracker> trackers_;
  std::vector<uint32_t> free_trackers_;
  Batch input_;
  size_t input_pos_ = 0;
  uint32_t input_tracker_ = 0;
  bool has_input_ = false;
  std::unique_ptr<Request> building_;
  Clock::time_point building_deadline_;
  std::vector<std::unique_ptr<Request>> live_;
  size_t in_flight_ = 0;
  std::vector<es::ItemResult> results_;
  std::vector<es::EncodedItem> enc_scratch_;
  std::string dead_letters_;
  std::string dead_letter_document_;  // scratch: an event that could not be encoded
  int dead_letter_fd_ = -1;
  bool healthy_ = true;
  RateLimiter reject_log_{5, std::chrono::seconds(10)};
  RateLimiter retry_log_{5, std::chrono::seconds(10)};
  RateLimiter hold_log_{3, std::chrono::seconds(10)};

  // Completions, pushed by the I/O thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Completion> completions_;
};

}  // namespace tributary
