#include "sinks/elasticsearch_encoder.h"

#include <algorithm>

#include "agent/json.h"

namespace tributary::es {

// ---- Names -----------------------------------------------------------------

Result<NameTemplate> NameTemplate::Create(const std::vector<std::string>& parts) {
  NameTemplate n;
  for (const auto& p : parts) {
    auto t = Template::Parse(p);
    if (!t.ok()) return t.status();
    if (!t->is_static()) n.static_ = false;
    if (p.find("{{") != std::string::npos) n.time_only_ = false;
    n.parts_.push_back(std::move(t).value());
  }
  if (n.static_) {
    Event empty;
    for (size_t i = 0; i < n.parts_.size(); ++i) {
      if (i) n.scratch_.push_back('-');
      (void)n.parts_[i].Render(empty, &n.scratch_);
    }
    AppendJsonString(n.scratch_, &n.cached_);
  }
  return n;
}

Status NameTemplate::AppendQuoted(const Event& event, std::string* out) {
  if (static_) {
    out->append(cached_);
    return Status::Ok();
  }
  int64_t second = INT64_MIN;
  if (time_only_) {
    const Value* ts = event.get(kTimestampField);
    Timestamp t = ts != nullptr && ts->is_timestamp() ? ts->as_timestamp() : Now();
    second = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
    if (second == cached_second_) {
      out->append(cached_);
      return Status::Ok();
    }
  }
  scratch_.clear();
  for (size_t i = 0; i < parts_.size(); ++i) {
    if (i) scratch_.push_back('-');
    Status s = parts_[i].Render(event, &scratch_);
    if (!s.ok()) return s;
  }
  if (time_only_) {
    cached_.clear();
    AppendJsonString(scratch_, &cached_);
    cached_second_ = second;
    out->append(cached_);
  } else {
    AppendJsonString(scratch_, out);
  }
  return Status::Ok();
}

// ---- Encoder ---------------------------------------------------------------

Result<BulkEncoder> BulkEncoder::Create(const ElasticsearchConfig& config) {
  BulkEncoder e;
  e.data_stream_ = config.data_stream_mode();
  auto name = e.data_stream_ ? NameTemplate::Create({config.data_stream.type, config.data_stream.dataset,
                                                     config.data_stream.namespace_})
                             : NameTemplate::Create({config.bulk.index});
  if (!name.ok()) return name.status();
  e.index_ = std::move(name).value();
  e.create_ = config.action() == "create";
  e.action_prefix_ = e.create_ ? R"({"create":{"_index":)" : R"({"index":{"_index":)";
  if (config.id_field) e.id_field_ = *config.id_field;
  return e;
}

Status BulkEncoder::Encode(const Event& event, std::string* body, EncodedItem* item) {
  const size_t begin = body->size();
  item->begin = static_cast<uint32_t>(begin);
  body->append(action_prefix_);
  Status s = index_.AppendQuoted(event, body);
  if (!s.ok()) {
    body->resize(begin);
    return s;
  }
  item->has_id = false;
  if (!id_field_.empty()) {
    const Value* v = event.get(id_field_);
    id_scratch_.clear();
    if (v != nullptr && !v->is_null()) v->append_text(&id_scratch_);
    if (id_scratch_.empty()) {
      ++missing_ids_;
    } else if (id_scratch_.size() > kMaxIdBytes) {
      // Sent, without an `_id` (as an event without the field is): with
      // it, Elasticsearch would refuse the whole request.
      ++long_ids_;
      longest_id_ = std::max(longest_id_, id_scratch_.size());
    } else {
      body->append(R"(,"_id":)");
      AppendJsonString(id_scratch_, body);
      item->has_id = true;
    }
  }
  body->append("}}\n");
  item->source_begin = static_cast<uint32_t>(body->size());
  AppendSource(event, body);
  body->push_back('\n');
  item->end = static_cast<uint32_t>(body->size());
  return Status::Ok();
}

void BulkEncoder::AppendSource(const Event& event, std::string* out) const {
  if (!data_stream_) {
    AppendJson(event, out);
    return;
  }
  // Data streams need `@timestamp`: the event's `timestamp` is written
  // under that name, unless the event has its own `@timestamp`.
  const Fields& f = event.fields();
  bool has_at = f.find("@timestamp") != nullptr;
  bool has_ts = f.find(kTimestampField) != nullptr;
  out->push_back('{');
  bool first = true;
  if (!has_at && !has_ts) {
    out->append(R"("@timestamp":")");
    AppendRfc3339(Now(), out);
    out->push_back('"');
    first = false;
  }
  for (size_t i = 0; i < f.size(); ++i) {
    if (!first) out->push_back(',');
    first = false;
    if (!has_at && f.key(i) == kTimestampField) out->append(R"("@timestamp")");
    else AppendJsonString(f.key(i), out);
    out->push_back(':');
    AppendJson(f.value(i), out);
  }
  out->push_back('}');
}

// ---- Responses -------------------------------------------------------------

ItemOutcome ClassifyItem(int status, bool create_with_id) {
  if (status >= 200 && status < 300) return ItemOutcome::kDelivered;
  if (status == 409 && create_with_id) return ItemOutcome::kDelivered;
  // 401/403 on an item: the credentials may not write its index (a
  // `security_exception`), which says nothing against the document: kept
  // and retried, as a whole request answered so is.
  if (status == 429 || status >= 500 || status == 401 || status == 403) return ItemOutcome::kRetry;
  return ItemOutcome::kRejected;
}

RequestOutcome ClassifyRequest(int http_status) {
  if (http_status >= 200 && http_status < 300) return RequestOutcome::kItems;
  if (http_status == 401 || http_status == 403 || http_status == 407) return RequestOutcome::kAuthRetry;
  if (http_status == 413) return RequestOutcome::kTooLarge;
  if (http_status == 429 || http_status == 408 || (http_status >= 500 && http_status < 600))
    return RequestOutcome::kRetry;
  if (http_status == 400 || http_status == 422) return RequestOutcome::kSplit;
  return RequestOutcome::kHold;
}

bool ParseRequestError(std::string_view body, std::string* type, std::string* reason) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(simdjson::padded_string(body)).get(root)) return false;
  simdjson::dom::object error;
  std::string_view t, r;
  if (root["error"].get_object().get(error) || error["type"].get_string().get(t) || t.empty()) return false;
  if (error["reason"].get_string().get(r)) r = {};
  *type = std::string(t);
  *reason = std::string(r);
  return true;
}

Status BulkResponseClassifier::Classify(std::string* body, bool create_action, std::span<const EncodedItem> items,
                                        std::vector<ItemResult>* results, Summary* summary) {
  results->clear();
  *summary = Summary{};
  const size_t len = body->size();
  body->reserve(len + simdjson::SIMDJSON_PADDING);
  // Most responses say `"errors": false` (first, with our filter_path)
  // over a thousand `{"index":{"status":201}}` items that nothing reads:
  // the flag alone is read with simdjson's On Demand API, which skips
  // building the whole document. Any other answer (errors true, no flag,
  // not JSON) is read in full below, which reports what is wrong.
  {
    simdjson::ondemand::document doc;
    simdjson::ondemand::object top;
    bool flag = true;
    if (!ondemand_.iterate(body->data(), len, body->capacity()).get(doc) && !doc.get_object().get(top) &&
        !top.find_field_unordered("errors").get_bool().get(flag) && !flag) {
      summary->delivered = items.size();
      return Status::Ok();
    }
  }
  simdjson::dom::element root;
  auto err = parser_.parse(body->data(), len, false).get(root);
  if (err) return Status::Corruption(std::string("bulk response is not JSON: ") + simdjson::error_message(err));
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return Status::Corruption("bulk response is not a JSON object");
  bool errors = true;
  simdjson::dom::element errors_el;
  if (obj["errors"].get(errors_el) || errors_el.get_bool().get(errors))
    return Status::Corruption("bulk response has no `errors` flag");
  if (!errors) {
    summary->delivered = items.size();
    return Status::Ok();
  }
  simdjson::dom::array arr;
  if (obj["items"].get_array().get(arr)) return Status::Corruption("bulk response has `errors: true` but no `items`");
  results->resize(items.size());
  size_t i = 0;
  for (simdjson::dom::element el : arr) {
    if (i >= items.size()) break;  // more results than items: ignore the surplus
    ItemResult& r = (*results)[i];
    simdjson::dom::object wrapper;
    simdjson::dom::object inner;
    bool found = false;
    int64_t status = 0;
    if (!el.get_object().get(wrapper)) {
      for (auto kv : wrapper) {  // {"index": {...}}: one key, the action
        if (kv.value.get_object().get(inner)) continue;
        found = true;
        break;
      }
    }
    if (!found || inner["status"].get_int64().get(status)) {
      // An item without a status: treat like a missing one.
      r.outcome = ItemOutcome::kRetry;
      r.status = 0;
      r.error_type = "invalid_item";
      ++summary->missing;
      ++summary->retry;
      ++i;
      continue;
    }
    r.status = static_cast<int>(status);
    r.outcome = ClassifyItem(r.status, create_action && items[i].has_id);
    simdjson::dom::object error;
    if (r.outcome != ItemOutcome::kDelivered && !inner["error"].get_object().get(error)) {
      std::string_view v;
      if (!error["type"].get_string().get(v)) r.error_type = v;
      if (!error["reason"].get_string().get(v)) r.reason = v;
      simdjson::dom::object cause;
      if (!error["caused_by"].get_object().get(cause)) {
        if (!cause["type"].get_string().get(v)) r.cause_type = v;
        if (!cause["reason"].get_string().get(v)) r.cause_reason = v;
      }
    }
    if (r.error_type.empty() && r.outcome != ItemOutcome::kDelivered) r.error_type = "unknown_error";
    switch (r.outcome) {
      case ItemOutcome::kDelivered:
        ++summary->delivered;
        if (r.status == 409) ++summary->already_present;
        break;
      case ItemOutcome::kRetry: ++summary->retry; break;
      case ItemOutcome::kRejected: ++summary->rejected; break;
    }
    ++i;
  }
  for (; i < items.size(); ++i) {
    ItemResult& r = (*results)[i];
    r.outcome = ItemOutcome::kRetry;
    r.status = 0;
    r.error_type = "missing_item";
    ++summary->missing;
    ++summary->retry;
  }
  return Status::Ok();
}

}  // namespace tributary::es
