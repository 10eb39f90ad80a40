#include "tests/support/es_bulk_server/faults.h"

#include <simdjson.h>

#include <cmath>

namespace es_test {
namespace {

using simdjson::dom::element;

// "[key]". (Not "[" + std::string(key) + "]": GCC 12's -Wrestrict misfires on
// that at -O2.)
std::string bracketed(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 2);
  out.push_back('[');
  out.append(key);
  out.push_back(']');
  return out;
}

bool get_count(element v, std::string_view key, int64_t* out, std::string* error) {
  if (v.is_null()) {
    *out = 0;
    return true;
  }
  int64_t n;
  if (v.get_int64().get(n) != simdjson::SUCCESS || n < 0) {
    *error = bracketed(key) + " must be a non-negative integer";
    return false;
  }
  *out = n;
  return true;
}

bool get_fraction(element v, std::string_view key, double* out, std::string* error) {
  double f;
  if (v.get_double().get(f) != simdjson::SUCCESS || !(f >= 0 && f <= 1)) {
    *error = bracketed(key) + " must be a number between 0 and 1";
    return false;
  }
  *out = f;
  return true;
}

bool parse_fail_requests(element v, Faults* f, std::string* error) {
  f->fail_status = 0;
  f->fail_count = 0;
  f->fail_fraction = FractionCounter{};
  if (v.is_null()) return true;
  simdjson::dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    *error = "[fail_requests] must be an object or null";
    return false;
  }
  int64_t status = 0;
  bool has_count = false, has_fraction = false;
  for (auto kv : obj) {
    if (kv.key == "status") {
      if (!get_count(kv.value, "fail_requests.status", &status, error)) return false;
    } else if (kv.key == "count") {
      if (!get_count(kv.value, "fail_requests.count", &f->fail_count, error)) return false;
      has_count = true;
    } else if (kv.key == "fraction") {
      if (!get_fraction(kv.value, "fail_requests.fraction", &f->fail_fraction.fraction, error)) return false;
      has_fraction = true;
    } else {
      *error = "unknown key [fail_requests." + std::string(kv.key) + "]";
      return false;
    }
  }
  if (status < 300 || status > 599) {
    *error = "[fail_requests.status] must be an HTTP redirect or error status (300-599)";
    return false;
  }
  if (has_count == has_fraction) {
    *error = "[fail_requests] needs exactly one of [count] or [fraction]";
    return false;
  }
  f->fail_status = static_cast<int>(status);
  return true;
}

bool parse_reject_items(element v, Faults* f, std::string* error) {
  f->reject_first = 0;
  f->reject_every = 0;
  f->reject_every_seen = 0;
  f->reject_fraction = FractionCounter{};
  if (v.is_null()) return true;
  simdjson::dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS || obj.size() != 1) {
    *error = "[reject_items] must be null or an object with one of [first], [every], [fraction]";
    return false;
  }
  for (auto kv : obj) {
    if (kv.key == "first") return get_count(kv.value, "reject_items.first", &f->reject_first, error);
    if (kv.key == "every") return get_count(kv.value, "reject_items.every", &f->reject_every, error);
    if (kv.key == "fraction")
      return get_fraction(kv.value, "reject_items.fraction", &f->reject_fraction.fraction, error);
    *error = "unknown key [reject_items." + std::string(kv.key) + "]";
  }
  return false;
}

bool parse_mapping(element v, Faults* f, std::string* error) {
  auto mapping = std::make_shared<Mapping>();
  if (!v.is_null()) {
    simdjson::dom::object obj;
    if (v.get_object().get(obj) != simdjson::SUCCESS) {
      *error = "[mapping] must be an object of field -> type, or null";
      return false;
    }
    for (auto kv : obj) {
      std::string_view type_name;
      FieldType type;
      if (kv.value.get_string().get(type_name) != simdjson::SUCCESS || !parse_field_type(type_name, &type)) {
        *error = "[mapping." + std::string(kv.key) +
                 "] must be one of long, integer, short, byte, double, float, boolean, keyword, text, date, object";
        return false;
      }
      mapping->set(std::string(kv.key), type);
    }
  }
  f->mapping = std::move(mapping);
  return true;
}

}  // namespace

bool FractionCounter::take() {
  if (fraction <= 0) return false;
  const bool hit =
      std::floor(static_cast<double>(seen + 1) * fraction) > std::floor(static_cast<double>(seen) * fraction);
  ++seen;
  return hit;
}

bool Faults::take_request_failure(int* status) {
  if (fail_status == 0) return false;
  bool hit = false;
  if (fail_count > 0) {
    --fail_count;
    hit = true;
  } else {
    hit = fail_fraction.take();
  }
  if (hit) *status = fail_status;
  return hit;
}

bool Faults::take_item_rejection() {
  if (reject_first > 0) {
    --reject_first;
    return true;
  }
  if (reject_every > 0) return ++reject_every_seen % reject_every == 0;
  return reject_fraction.take();
}

bool Faults::take_close_connection() {
  if (close_connections <= 0) return false;
  --close_connections;
  return true;
}

bool Faults::take_interim_response() {
  if (interim_responses <= 0) return false;
  --interim_responses;
  return true;
}

Json Faults::to_json() const {
  Json out = Json::object();
  if (fail_status != 0) {
    Json fr = Json::object().add("status", fail_status);
    if (fail_fraction.fraction > 0) {
      fr.add("fraction", fail_fraction.fraction);
    } else {
      fr.add("count", fail_count);
    }
    out.add("fail_requests", std::move(fr));
  } else {
    out.add("fail_requests", nullptr);
  }
  if (reject_first > 0) {
    out.add("reject_items", Json::object().add("first", reject_first));
  } else if (reject_every > 0) {
    out.add("reject_items", Json::object().add("every", reject_every));
  } else if (reject_fraction.fraction > 0) {
    out.add("reject_items", Json::object().add("fraction", reject_fraction.fraction));
  } else {
    out.add("reject_items", nullptr);
  }
  Json mapping = Json::object();
  for (const auto& [field, type] : this->mapping->fields()) mapping.add(field, field_type_name(type));
  out.add("mapping", std::move(mapping));
  out.add("delay_ms", delay_ms);
  out.add("close_connections", close_connections);
  out.add("idle_timeout_ms", idle_timeout_ms);
  out.add("interim_responses", interim_responses);
  out.add("warning_headers", warning_headers);
  out.add("response_encoding", response_encoding);
  return out;
}

bool apply_faults_patch(std::string_view json, Faults* faults, int64_t* down_ms, std::string* error) {
  *down_ms = 0;
  simdjson::dom::parser parser;
  element root;
  if (auto ec = parser.parse(json.data(), json.size(), true).get(root); ec != simdjson::SUCCESS) {
    *error = std::string("faults body is not valid JSON: ") + simdjson::error_message(ec);
    return false;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    *error = "faults body must be a JSON object";
    return false;
  }
  Faults next = *faults;
  bool reset = false;
  if (element r; obj.at_key("reset").get(r) == simdjson::SUCCESS && r.get_bool().get(reset) != simdjson::SUCCESS) {
    *error = "[reset] must be a boolean";
    return false;
  }
  if (reset) next = Faults{};
  for (auto kv : obj) {
    const std::string_view key = kv.key;
    bool ok = true;
    if (key == "reset") {
      continue;
    } else if (key == "fail_requests") {
      ok = parse_fail_requests(kv.value, &next, error);
    } else if (key == "reject_items") {
      ok = parse_reject_items(kv.value, &next, error);
    } else if (key == "mapping") {
      ok = parse_mapping(kv.value, &next, error);
    } else if (key == "delay_ms") {
      ok = get_count(kv.value, key, &next.delay_ms, error);
    } else if (key == "close_connections") {
      ok = get_count(kv.value, key, &next.close_connections, error);
    } else if (key == "idle_timeout_ms") {
      ok = get_count(kv.value, key, &next.idle_timeout_ms, error);
    } else if (key == "down_ms") {
      ok = get_count(kv.value, key, down_ms, error);
    } else if (key == "interim_responses") {
      ok = get_count(kv.value, key, &next.interim_responses, error);
    } else if (key == "warning_headers") {
      ok = get_count(kv.value, key, &next.warning_headers, error);
    } else if (key == "response_encoding") {
      std::string_view v;
      if (kv.value.is_null()) {
        next.response_encoding.clear();
      } else if (kv.value.get_string().get(v) != simdjson::SUCCESS || (v != "deflate" && !v.empty())) {
        *error = "[response_encoding] must be \"deflate\", \"\" or null";
        ok = false;
      } else {
        next.response_encoding = std::string(v);
      }
    } else {
      *error = "unknown key [" + std::string(key) +
               "]; expected reset, fail_requests, reject_items, mapping, delay_ms, close_connections, "
               "idle_timeout_ms, down_ms, interim_responses, warning_headers, response_encoding";
      ok = false;
    }
    if (!ok) {
      *down_ms = 0;
      return false;
    }
  }
  *faults = std::move(next);
  return true;
}

}  // namespace es_test
