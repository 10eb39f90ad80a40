#include "agent/batch_builder.h"

#include <gtest/gtest.h>

#include <string>

namespace tributary {
namespace {

void Fill(BatchBuilder& b, const std::string& message) {
  Event& e = b.Next();
  e.fields().clear();
  e.fields().append("message", std::string_view(message));
}

std::string Message(const Event& e) { return e.get("message")->as_string(); }

// A vector comes back only when every holder has released its batch, and
// the builder then hands out its old events to overwrite.
TEST(BatchBuilderTest, ReusesEventsOnlyAfterEveryHolderReleasedThem) {
  BatchBuilder builder(8);
  Fill(builder, "a");
  Fill(builder, "b");
  Fill(builder, "c");
  EXPECT_EQ(builder.size(), 3u);
  Batch first = builder.Take(0);
  EXPECT_TRUE(builder.empty());
  Batch copy = first.ShareCopy();  // fan-out to a second sink

  Fill(builder, "d");
  Batch second = builder.Take(0);  // nothing released yet: new events
  first = Batch();
  Fill(builder, "e");
  Batch third = builder.Take(0);  // `copy` still holds the first vector
  ASSERT_EQ(copy.size(), 3u);
  EXPECT_EQ(Message(copy.events()[0]), "a");
  EXPECT_EQ(Message(copy.events()[2]), "c");
  EXPECT_EQ(Message(second.events()[0]), "d");
  EXPECT_EQ(Message(third.events()[0]), "e");

  copy = Batch();  // the last holder lets go
  Fill(builder, "f");
  Batch fourth = builder.Take(0);  // the first vector comes back now
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_EQ(Message(fourth.events()[0]), "f");
  // The next batch is filled into the recycled events "a", "b", "c".
  Event& recycled = builder.Next();
  EXPECT_EQ(Message(recycled), "a");
  EXPECT_EQ(Message(builder.Next()), "b");
  EXPECT_EQ(builder.size(), 2u);
  // Events left over from the recycled vector are not sent.
  Batch fifth = builder.Take(0);
  EXPECT_EQ(fifth.size(), 2u);
}

// A batch whose events were copied on write (a transform changed a shared
// batch) gives the original back only when the sharer lets go.
TEST(BatchBuilderTest, CopyOnWriteLeavesTheSharedVectorWithItsHolder) {
  BatchBuilder builder(4);
  Fill(builder, "x");
  Batch a = builder.Take(0);
  Batch b = a.ShareCopy();
  b.mutable_events()[0].set("message", "changed");  // b now has its own copy
  EXPECT_EQ(Message(a.events()[0]), "x");
  EXPECT_EQ(Message(b.events()[0]), "changed");
  b = Batch();  // the copy is not the builder's: nothing comes back
  Fill(builder, "y");
  Batch c = builder.Take(0);
  EXPECT_EQ(Message(a.events()[0]), "x");  // still held, untouched
  a = Batch();
  Fill(builder, "z");
  Batch d = builder.Take(0);
  EXPECT_EQ(Message(builder.Next()), "x");  // a's vector came back
}

// Released vectors are kept up to about 4,096 events in all: enough for a
// source's small batches in flight, little for an idle source to hold.
TEST(BatchBuilderTest, KeepsAboutFourThousandReleasedEvents) {
  BatchBuilder builder(8);
  auto batch_of = [&](const std::string& message, size_t n) {
    for (size_t i = 0; i < n; ++i) Fill(builder, message);
    return builder.Take(0);
  };
  Batch a = batch_of("a", 3000);
  Batch b = batch_of("b", 3000);
  a = Batch();  // kept: 3,000 events
  b = Batch();  // 6,000 would be too many: freed
  Batch c = batch_of("c", 1);  // the builder takes a's vector back for the next batch
  Event& recycled = builder.Next();
  EXPECT_EQ(Message(recycled), "a");
  Batch d = builder.Take(0);
  EXPECT_TRUE(builder.Next().fields().empty());  // nothing else was kept: a new event
}

// Long lines are not kept once delivered: an event keeps its strings'
// capacity, and a source idle after an outage of 100 KiB lines held every
// one of them (R3 of the resource probe). The 4,096 events stay for short
// lines.
TEST(BatchBuilderTest, DoesNotKeepEventsOfLongLines) {
  BatchBuilder builder(64);
  const std::string long_line(100 * 1024, 'x');
  for (int i = 0; i < 64; ++i) Fill(builder, long_line);
  Batch big = builder.Take(64 * long_line.size());
  EXPECT_EQ(big.bytes(), 64 * long_line.size());
  big = Batch();  // delivered
  EXPECT_EQ(builder.kept_events(), 0u);
  Fill(builder, "short");
  Batch next = builder.Take(5);
  EXPECT_TRUE(builder.Next().fields().empty());  // a new event, not one holding 100 KiB
  Batch rest = builder.Take(0);

  // 4,000 lines of 1 KiB are still kept, in two batches.
  const std::string line(1024, 'y');
  Batch a, b;
  for (Batch* x : {&a, &b}) {
    for (int i = 0; i < 2000; ++i) Fill(builder, line);
    *x = builder.Take(2000 * (line.size() + 1));
  }
  a = Batch();
  b = Batch();
  EXPECT_EQ(builder.kept_events(), 4000u);
}

}  // namespace
}  // namespace tributary
