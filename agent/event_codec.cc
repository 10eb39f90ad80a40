#include "agent/event_codec.h"

#include <cstring>

namespace tributary {

namespace {

enum Tag : uint8_t {
  kNull = 0,
  kFalse = 1,
  kTrue = 2,
  kInt = 3,
  kDouble = 4,
  kString = 5,
  kTimestamp = 6,
  kArray = 7,
  kMap = 8,
};

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

// Most varints here (lengths, counts, small ints) fit in one byte: that
// case is an inlined push_back instead of a call that appends a buffer.
inline void PutVarint(std::string* out, uint64_t v) {
  if (v < 0x80) {
    out->push_back(static_cast<char>(v));
    return;
  }
  PutVarint64(out, v);
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

void EncodeFields(const Fields& f, std::string* out);

void EncodeValue(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kNull: out->push_back(static_cast<char>(kNull)); break;
    case Value::Kind::kBool: out->push_back(static_cast<char>(v.as_bool() ? kTrue : kFalse)); break;
    case Value::Kind::kInt:
      out->push_back(static_cast<char>(kInt));
      PutVarint(out, ZigZag(v.as_int()));
      break;
    case Value::Kind::kDouble: {
      out->push_back(static_cast<char>(kDouble));
      double d = v.as_double();
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      PutFixed64(out, bits);
      break;
    }
    case Value::Kind::kString:
      out->push_back(static_cast<char>(kString));
      PutString(out, v.as_string());
      break;
    case Value::Kind::kTimestamp:
      out->push_back(static_cast<char>(kTimestamp));
      PutVarint(out, ZigZag(v.as_timestamp().time_since_epoch().count()));
      break;
    case Value::Kind::kArray: {
      out->push_back(static_cast<char>(kArray));
      const Array& a = v.as_array();
      PutVarint(out, a.size());
      for (const Value& x : a) EncodeValue(x, out);
      break;
    }
    case Value::Kind::kMap:
      out->push_back(static_cast<char>(kMap));
      EncodeFields(v.as_map(), out);
      break;
  }
}

void EncodeFields(const Fields& f, std::string* out) {
  PutVarint(out, f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    PutString(out, f.key(i));
    EncodeValue(f.value(i), out);
  }
}

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool Fields(tributary::Fields* f, int depth) {
    uint64_t n;
    if (!GetVarint64(&in_, &n) || n > in_.size()) return Fail("bad field count");
    f->reserve(static_cast<size_t>(n));
    std::string_view key;
    for (uint64_t i = 0; i < n; ++i) {
      if (!String(&key)) return false;
      Value v;
      if (!ValueOf(&v, depth)) return false;
      f->append(key, std::move(v));  // encoded from a Fields: keys are distinct
    }
    return true;
  }

  bool String(std::string_view* s) {
    uint64_t len;
    if (!GetVarint64(&in_, &len) || len > in_.size()) return Fail("truncated string");
    *s = in_.substr(0, static_cast<size_t>(len));
    in_.remove_prefix(static_cast<size_t>(len));
    return true;
  }

  bool ValueOf(Value* v, int depth) {
    if (depth > kEventCodecMaxDepth) return Fail("nested too deeply");
    if (in_.empty()) return Fail("truncated value");
    uint8_t tag = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    uint64_t u;
    switch (tag) {
      case kNull: *v = Value(); return true;
      case kFalse: *v = Value(false); return true;
      case kTrue: *v = Value(true); return true;
      case kInt:
        if (!GetVarint64(&in_, &u)) return Fail("truncated int");
        *v = Value(UnZigZag(u));
        return true;
      case kDouble: {
        if (in_.size() < 8) return Fail("truncated double");
        uint64_t bits = DecodeFixed64(in_.data());
        in_.remove_prefix(8);
        double d;
        std::memcpy(&d, &bits, sizeof d);
        *v = Value(d);
        return true;
      }
      case kString: {
        std::string_view s;
        if (!String(&s)) return false;
        *v = Value(s);
        return true;
      }
      case kTimestamp:
        if (!GetVarint64(&in_, &u)) return Fail("truncated timestamp");
        *v = Value(Timestamp(std::chrono::nanoseconds(UnZigZag(u))));
        return true;
      case kArray: {
        if (!GetVarint64(&in_, &u) || u > in_.size()) return Fail("bad array length");
        Array a;
        a.reserve(static_cast<size_t>(u));
        for (uint64_t i = 0; i < u; ++i) {
          a.emplace_back();
          if (!ValueOf(&a.back(), depth + 1)) return false;
        }
        *v = Value(std::move(a));
        return true;
      }
      case kMap: {
        tributary::Fields f;
        if (!Fields(&f, depth + 1)) return false;
        *v = Value(std::move(f));
        return true;
      }
      default: return Fail("unknown value tag " + std::to_string(tag));
    }
  }

  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  std::string_view rest() const { return in_; }
  const std::string& error() const { return error_; }

 private:
  std::string_view in_;
  std::string error_;
};

}  // namespace

void PutVarint64(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, static_cast<size_t>(n));
}

bool GetVarint64(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; shift <= 63 && i < static_cast<int>(in->size()); shift += 7, ++i) {
    uint64_t byte = static_cast<uint8_t>((*in)[static_cast<size_t>(i)]);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      in->remove_prefix(static_cast<size_t>(i) + 1);
      return true;
    }
  }
  return false;
}

void PutFixed64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out->append(buf, 8);
}

void PutFixed32(std::string* out, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out->append(buf, 4);
}

uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

void EncodeEvent(const Event& event, std::string* out) { EncodeFields(event.fields(), out); }

void EncodeEvents(const std::vector<Event>& events, std::string* out) {
  PutVarint(out, events.size());
  for (const Event& e : events) EncodeFields(e.fields(), out);
}

Status DecodeEvents(std::string_view in, std::vector<Event>* out) {
  std::string_view rest = in;
  uint64_t n;
  if (!GetVarint64(&rest, &n) || n > rest.size()) return Status::Corruption("bad event count");
  Decoder body(rest);
  out->clear();
  out->reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    Event e;
    if (!body.Fields(&e.fields(), 0)) return Status::Corruption("event " + std::to_string(i) + ": " + body.error());
    out->push_back(std::move(e));
  }
  if (!body.rest().empty()) return Status::Corruption("trailing bytes after the last event");
  return Status::Ok();
}

}  // namespace tributary
