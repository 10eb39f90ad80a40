#pragma once

// Scripted failures of the Elasticsearch test server, set by command-line
// flags at startup and changed by tests at runtime (POST /_test/faults).
//
// Control-API grammar (every key optional; a key set to null or 0 turns that
// fault off; keys not given keep their current setting):
//   {
//     "reset": true,                                    // clear everything first
//     "fail_requests": {"status": 503, "count": 2}      // next 2 bulk requests
//                   | {"status": 429, "fraction": 0.5}, // every 2nd bulk request
//     "reject_items": {"first": 3} | {"every": 4} | {"fraction": 0.25},
//     "mapping": {"status": "long", "http.ok": "boolean"},   // replaces the mapping
//     "delay_ms": 200,                 // every non-control request waits first
//     "close_connections": 1,          // next bulk request: read, then close, no reply
//     "idle_timeout_ms": 100,          // close a connection that waits this long for a request
//     "down_ms": 500,                  // stop listening and drop connections, 500 ms
//     "interim_responses": 2,          // next 2 bulk replies: `100 Continue` first, unasked
//     "warning_headers": 60,           // every reply: 60 deprecation `Warning` headers
//     "response_encoding": "deflate"   // every reply body deflated, asked or not ("" or null: off)
//   }
// Fractions are deterministic: out of n consecutive candidates exactly
// floor(n * fraction) are hit, spread evenly (a Bresenham sequence), counted
// from the moment the fault is set.
//
// Faults is a plain value guarded by the owner's mutex.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tests/support/es_bulk_server/json.h"
#include "tests/support/es_bulk_server/mapping.h"

namespace es_test {

// Deterministic "hit `fraction` of the calls" counter.
struct FractionCounter {
  double fraction = 0;
  int64_t seen = 0;
  bool take();
};

struct Faults {
  // Whole-request failures of bulk requests: `status` for the next
  // `fail_count` requests, or for `fail_fraction` of them.
  int fail_status = 0;
  int64_t fail_count = 0;
  FractionCounter fail_fraction;

  // Per-item 429 es_rejected_execution_exception.
  int64_t reject_first = 0;
  int64_t reject_every = 0;
  int64_t reject_every_seen = 0;
  FractionCounter reject_fraction;

  std::shared_ptr<const Mapping> mapping = std::make_shared<Mapping>();
  int64_t delay_ms = 0;
  int64_t close_connections = 0;
  // A connection waiting this long for its next request (kept alive, or
  // new and silent) is closed, as a load balancer's or proxy's idle
  // timeout does. 0: never.
  int64_t idle_timeout_ms = 0;
  // The next N bulk replies are preceded by an interim `100 Continue` the
  // client did not ask for, as some proxies send (RFC 9110 15.2: a client
  // must read past it).
  int64_t interim_responses = 0;
  // Each reply carries this many `Warning: 299 Elasticsearch-...` headers
  // (~200 bytes each), as deprecation warnings do.
  int64_t warning_headers = 0;
  // "deflate": every reply body is zlib-deflated with `Content-Encoding:
  // deflate`, whatever the request's Accept-Encoding.
  std::string response_encoding;

  // Each take_* consumes one decision.
  bool take_request_failure(int* status);
  bool take_item_rejection();
  bool take_close_connection();
  bool take_interim_response();

  Json to_json() const;
};

// Applies a control-API patch (grammar above) to `faults`. `down_ms` gets the
// requested outage (0 if none). On error nothing changes and `error` says why.
bool apply_faults_patch(std::string_view json, Faults* faults, int64_t* down_ms, std::string* error);

}  // namespace es_test
