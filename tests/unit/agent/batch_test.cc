#include "agent/batch.h"

#include <gtest/gtest.h>

namespace tributary {
namespace {

TEST(FinalizerTest, FiresOnceAfterEveryHolderReleased) {
  int calls = 0;
  BatchStatus got = BatchStatus::kFailed;
  Batch b;
  b.mutable_events().emplace_back();
  b.add_finalizer(Finalizer::Create([&](BatchStatus s) {
    ++calls;
    got = s;
  }));
  Batch copy1 = b.ShareCopy();
  Batch copy2 = b.ShareCopy();
  b.Finalize(BatchStatus::kDelivered);
  copy1.Finalize(BatchStatus::kDelivered);
  EXPECT_EQ(calls, 0) << "acked before every destination acked";
  copy2.Finalize(BatchStatus::kDelivered);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got, BatchStatus::kDelivered);
}

TEST(FinalizerTest, WorstStatusWins) {
  BatchStatus got = BatchStatus::kDelivered;
  {
    Batch b;
    b.add_finalizer(Finalizer::Create([&](BatchStatus s) { got = s; }));
    Batch c = b.ShareCopy();
    Batch d = b.ShareCopy();
    c.Finalize(BatchStatus::kRejected);
    d.Finalize(BatchStatus::kFailed);
    b.Finalize(BatchStatus::kDelivered);
  }
  EXPECT_EQ(got, BatchStatus::kFailed);
}

// A batch dropped without a status is not delivered: its source must not
// commit past it (a duplicate after restart beats a silent loss).
TEST(FinalizerTest, DroppingABatchWithoutAStatusCountsAsFailed) {
  bool fired = false;
  BatchStatus got = BatchStatus::kDelivered;
  {
    Batch b;
    b.add_finalizer(Finalizer::Create([&](BatchStatus s) {
      fired = true;
      got = s;
    }));
  }
  EXPECT_TRUE(fired);
  EXPECT_EQ(got, BatchStatus::kFailed);
}

TEST(BatchTest, SharedEventsCopyOnWrite) {
  Batch a;
  a.mutable_events().emplace_back();
  a.mutable_events()[0].set("k", 1);
  Batch b = a.ShareCopy();
  EXPECT_EQ(&a.events(), &b.events()) << "fan-out copied the events";
  b.mutable_events()[0].set("k", 2);
  EXPECT_EQ(a.events()[0].get("k")->as_int(), 1);
  EXPECT_EQ(b.events()[0].get("k")->as_int(), 2);
}

}  // namespace
}  // namespace tributary
