#include "agent/event_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>

namespace tributary {
namespace {

// A random value of any kind, nesting up to `depth` more levels.
Value RandomValue(std::mt19937_64& rng, int depth) {
  int kind = static_cast<int>(rng() % (depth > 0 ? 8 : 6));
  switch (kind) {
    case 0: return Value();
    case 1: return Value(rng() % 2 == 0);
    case 2: {
      static const int64_t kEdges[] = {0, 1, -1, std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int64_t>::max(), 127, 128, -64, -65};
      if (rng() % 3 == 0) return Value(kEdges[rng() % std::size(kEdges)]);
      return Value(static_cast<int64_t>(rng()));
    }
    case 3: {
      double d;
      do {
        uint64_t bits = rng();
        std::memcpy(&d, &bits, sizeof d);
      } while (d != d);  // NaN never equals itself; covered separately
      return Value(d);
    }
    case 4: {
      std::string s(rng() % 40, '\0');
      for (auto& c : s) c = static_cast<char>(rng());  // any bytes, not only UTF-8
      return Value(std::move(s));
    }
    case 5: return Value(Timestamp(std::chrono::nanoseconds(static_cast<int64_t>(rng()))));
    case 6: {
      Array a;
      for (size_t i = rng() % 5; i > 0; --i) a.push_back(RandomValue(rng, depth - 1));
      return Value(std::move(a));
    }
    default: {
      Fields f;
      for (size_t i = rng() % 5; i > 0; --i) f.set("k" + std::to_string(rng() % 1000), RandomValue(rng, depth - 1));
      return Value(std::move(f));
    }
  }
}

TEST(EventCodecTest, RoundTripsEveryKindExactly) {
  Event e;
  e.fields().set("message", "hello\n\0world");
  e.fields().set("timestamp", Timestamp(std::chrono::nanoseconds(1714564800123456789LL)));
  e.fields().set("before_epoch", Timestamp(std::chrono::nanoseconds(-1)));
  e.fields().set("n", int64_t{-42});
  e.fields().set("big", std::numeric_limits<int64_t>::min());
  e.fields().set("pi", 3.141592653589793);
  e.fields().set("neg_zero", -0.0);
  e.fields().set("inf", std::numeric_limits<double>::infinity());
  e.fields().set("yes", true);
  e.fields().set("nothing", nullptr);
  Fields inner;
  inner.set("z", 1);
  inner.set("a", Array{Value(1), Value("two"), Value(Array{}), Value(Fields{})});
  e.fields().set("nested", std::move(inner));
  std::vector<Event> in{e, Event(), e};
  std::string buf;
  EncodeEvents(in, &buf);
  std::vector<Event> out;
  ASSERT_TRUE(DecodeEvents(buf, &out).ok());
  ASSERT_EQ(out, in);
  // Field order is kept.
  EXPECT_EQ(out[0].fields().key(0), "message");
  EXPECT_EQ(out[0].fields().key(10), "nested");
  EXPECT_EQ(out[0].fields().find("nested")->as_map().key(0), "z");
  // -0.0 == 0.0, so check the sign bit survived.
  EXPECT_TRUE(std::signbit(out[0].fields().find("neg_zero")->as_double()));
}

TEST(EventCodecTest, NaNKeepsItsBits) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Event e;
  e.fields().set("x", nan);
  std::string buf;
  EncodeEvents({e}, &buf);
  std::vector<Event> out;
  ASSERT_TRUE(DecodeEvents(buf, &out).ok());
  double got = out[0].fields().find("x")->as_double();
  EXPECT_EQ(std::memcmp(&got, &nan, sizeof got), 0);
}

TEST(EventCodecTest, RandomEventsRoundTrip) {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<Event> in(rng() % 8);
    for (auto& e : in)
      for (size_t i = rng() % 10; i > 0; --i) e.fields().set("f" + std::to_string(rng() % 50), RandomValue(rng, 4));
    std::string buf;
    EncodeEvents(in, &buf);
    std::vector<Event> out;
    ASSERT_TRUE(DecodeEvents(buf, &out).ok()) << "iteration " << iter;
    ASSERT_EQ(out, in) << "iteration " << iter;
  }
}

TEST(EventCodecTest, GarbageIsAnErrorNeverACrash) {
  std::mt19937_64 rng(7);
  std::vector<Event> in(3);
  for (auto& e : in)
    for (int i = 0; i < 6; ++i) e.fields().set("f" + std::to_string(i), RandomValue(rng, 3));
  std::string good;
  EncodeEvents(in, &good);
  std::vector<Event> out;
  // Every truncation fails cleanly.
  for (size_t n = 0; n < good.size(); ++n) EXPECT_FALSE(DecodeEvents(good.substr(0, n), &out).ok()) << n;
  // Random flips either fail or decode to something; they never crash.
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bad = good;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    (void)DecodeEvents(bad, &out);
  }
  // Deep nesting is refused.
  std::string deep;
  PutVarint64(&deep, 1);
  PutVarint64(&deep, 1);
  PutVarint64(&deep, 1);
  deep += "k";
  for (int i = 0; i < 100000; ++i) deep += '\x07', deep += '\x01';
  EXPECT_FALSE(DecodeEvents(deep, &out).ok());
}

TEST(EventCodecTest, Varints) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, ~0ull}) {
    std::string b;
    PutVarint64(&b, v);
    std::string_view in = b;
    uint64_t got;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(got, v);
    EXPECT_TRUE(in.empty());
  }
  std::string_view bad = "\xff\xff";
  uint64_t got;
  EXPECT_FALSE(GetVarint64(&bad, &got));
}

}  // namespace
}  // namespace tributary
