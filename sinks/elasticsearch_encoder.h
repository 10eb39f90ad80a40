#pragma once
// The bulk protocol of the `elasticsearch` sink, without any I/O:
// BulkEncoder writes events straight into an NDJSON request body, and
// BulkResponseClassifier sorts a bulk response into delivered / retry /
// rejected per item.
//
// Request body grammar (Elasticsearch `_bulk`), one item per event:
//   body   = item+
//   item   = action "\n" source "\n"
//   action = '{"' ("index"|"create") '":{"_index":' json-string [',"_id":' json-string] '}}'
//   source = the event as one JSON object (no raw newlines: they are escaped)
// In data_stream mode the event's `timestamp` is written as `@timestamp`
// (the current time when the event has neither).
//
// Not thread-safe: both keep caches and buffers; one of each per sink thread.

#include <simdjson.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/event.h"
#include "agent/status.h"
#include "agent/template.h"
#include "sinks/elasticsearch_config.h"

namespace tributary::es {

// Where one encoded item sits in a body, and what the response rules need.
struct EncodedItem {
  uint32_t begin = 0;         // first byte of the action line
  uint32_t source_begin = 0;  // first byte of the source line
  uint32_t end = 0;           // one past the source line's '\n'
  bool has_id = false;        // the action carries an `_id`
};

// A name built from templates joined by '-' (the index, or a data stream's
// type-dataset-namespace), rendered per event. Names that depend on the
// timestamp only are cached per second; static names are rendered once.
class NameTemplate {
 public:
  static Result<NameTemplate> Create(const std::vector<std::string>& parts);
  // Appends the name for `event` to *out, JSON-escaped with its quotes.
  Status AppendQuoted(const Event& event, std::string* out);

 private:
  std::vector<Template> parts_;
  bool static_ = true;
  bool time_only_ = true;
  int64_t cached_second_ = INT64_MIN;
  std::string cached_;  // quoted
  std::string scratch_;
};

class BulkEncoder {
 public:
  static Result<BulkEncoder> Create(const ElasticsearchConfig& config);

  // Appends `event`'s item to *body and describes it in *item. On error
  // (the index cannot be rendered) *body is left as it was and the status
  // names the problem; the event cannot be sent.
  Status Encode(const Event& event, std::string* body, EncodedItem* item);

  bool create_action() const { return create_; }
  // The document `event` would be sent as (for the dead-letter file).
  void AppendSource(const Event& event, std::string* out) const;
  // Events encoded without an `_id` although `id_field` is set (missing or
  // empty field); the caller counts them.
  uint64_t TakeMissingIds() {
    uint64_t n = missing_ids_;
    missing_ids_ = 0;
    return n;
  }
  // Elasticsearch's limit on `_id`, in UTF-8 bytes: one over it fails the
  // whole bulk request (action_request_validation_exception).
  static constexpr size_t kMaxIdBytes = 512;
  // Events encoded without an `_id` because their `id_field` text is over
  // kMaxIdBytes, and the longest of them; the caller counts and logs them.
  uint64_t TakeLongIds(size_t* longest) {
    uint64_t n = long_ids_;
    *longest = longest_id_;
    long_ids_ = 0;
    longest_id_ = 0;
    return n;
  }

 private:
  BulkEncoder() = default;

  NameTemplate index_;
  bool create_ = false;
  bool data_stream_ = false;
  std::string action_prefix_;  // {"index":{"_index":
  std::string id_field_;       // empty = none
  std::string id_scratch_;
  uint64_t missing_ids_ = 0;
  uint64_t long_ids_ = 0;
  size_t longest_id_ = 0;
};

// What happens to one item.
enum class ItemOutcome : uint8_t {
  kDelivered,  // 2xx, or 409 on `create` with an `_id` (already indexed)
  kRetry,      // 429 or 5xx: send this item again
  kRejected,   // other 4xx: never retried
};

// The rule above for one item's status.
ItemOutcome ClassifyItem(int status, bool create_with_id);

// What happens to a whole request, by its HTTP status.
enum class RequestOutcome : uint8_t {
  kItems,      // 2xx: look at each item
  kRetry,      // 429, 5xx, 408: send it all again after a backoff
  kAuthRetry,  // 401, 403, 407: send it again after a backoff; the sink is unhealthy
  kTooLarge,   // 413: split it, or reject a single item
  kSplit,      // 400, 422 with Elasticsearch's error: a document refused with the whole
               // request (an `_id` too long, a line it cannot parse): split it to find
               // the document, or reject a single item
  kHold,       // any other status (a redirect, a wrong path, a proxy): no answer of the
               // bulk API, so nothing is said about the documents: send it again after a
               // backoff; the sink is unhealthy
};
RequestOutcome ClassifyRequest(int http_status);
// The type and reason of Elasticsearch's whole-request error body
// (`{"error":{"type":...,"reason":...},"status":400}`); false for any other
// body (a proxy's page, "no handler found" text).
bool ParseRequestError(std::string_view body, std::string* type, std::string* reason);

struct ItemResult {
  ItemOutcome outcome = ItemOutcome::kDelivered;
  int status = 0;
  std::string_view error_type;  // e.g. "mapper_parsing_exception"; views valid until the next Classify
  std::string_view reason;
  // error.caused_by, where Elasticsearch often puts what the document got
  // wrong (reason: "failed to parse", caused by: "... field name cannot be
  // an empty string"); empty if absent.
  std::string_view cause_type;
  std::string_view cause_reason;
};

class BulkResponseClassifier {
 public:
  struct Summary {
    size_t delivered = 0;
    size_t already_present = 0;  // of `delivered`: 409 on `create` with an `_id`
    size_t retry = 0;
    size_t rejected = 0;
    size_t missing = 0;  // items the response did not mention (retried)
  };

  // Classifies a 2xx bulk response for the `items` that were sent, in
  // order. Fills `results` (one per item) unless the response says
  // `"errors": false`, in which case every item is delivered and `results`
  // is left empty. An unparseable body or a body that is not a bulk
  // response is an error (kCorruption): the caller retries the request.
  // `body` is padded in place (its capacity may grow).
  Status Classify(std::string* body, bool create_action, std::span<const EncodedItem> items,
                  std::vector<ItemResult>* results, Summary* summary);

 private:
  simdjson::dom::parser parser_;
  simdjson::ondemand::parser ondemand_;
};

// The query string the sink sends with each bulk request: only what the
// classifier reads (errors, and per item status and error type/reason).
inline constexpr std::string_view kBulkFilterPath =
    "filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by.type,"
    "items.*.error.caused_by.reason";

}  // namespace tributary::es
