#pragma once

// Document checks the Elasticsearch test server applies to each `_source`:
// the parts of Elasticsearch's document parser that a log shipper can trip
// over (document shape, duplicate keys, field names, explicit field types
// with Elasticsearch's default coercion, the data stream `@timestamp`).
// Everything here is immutable after setup and safe to share across threads.

#include <simdjson.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "tests/support/es_bulk_server/json.h"

namespace es_test {

enum class FieldType { kLong, kInteger, kShort, kByte, kDouble, kFloat, kBoolean, kKeyword, kText, kDate, kObject };

bool parse_field_type(std::string_view name, FieldType* out);
std::string_view field_type_name(FieldType type);

// An explicit mapping shared by every index: dotted field path → type.
// Unmapped fields are accepted (dynamic mapping is not modelled).
class Mapping {
 public:
  void set(const std::string& path, FieldType type);
  bool empty() const { return fields_.empty(); }
  const FieldType* find(std::string_view path) const;
  // True when `path` has mapped sub-fields, so it must hold an object.
  bool is_parent(std::string_view path) const { return parents_.count(path) > 0; }
  const std::map<std::string, FieldType, std::less<>>& fields() const { return fields_; }

 private:
  std::map<std::string, FieldType, std::less<>> fields_;
  std::set<std::string, std::less<>> parents_;
};

// Checks a parsed `_source` like Elasticsearch's document parser: the root
// must be an object, keys must be unique and well-formed, mapped fields must
// hold values of their type, and in a data stream `@timestamp` must be
// present and a date. Returns the item's error (a `mapper_parsing_exception`
// cause) or nullopt when the document would be indexed.
std::optional<Json> check_document(simdjson::dom::element root, const Mapping& mapping, bool data_stream,
                                   std::string_view id);

// Elasticsearch's `strict_date_optional_time`:
//   yyyy[-MM[-dd]][THH[:mm[:ss[(.|,)f{1,9}]]][Z|(+|-)HH[[:]mm]]]
// with calendar-valid fields.
bool is_strict_date_optional_time(std::string_view s);

}  // namespace es_test
