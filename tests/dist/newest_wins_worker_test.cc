// NewestWinsWorker: one value in progress, at most one waiting, the newest wins; retries; flush;
// what the destructor does with a waiting value.
#include "dist/newest_wins_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace convoy {
namespace {

TEST(NewestWinsWorker, ASlowConsumerSeesTheNewestValueAndNothingStale) {
  std::mutex mutex;
  std::vector<int> seen;
  std::atomic<bool> release{false};
  NewestWinsWorker<int> worker(
      [&](int& v) -> std::optional<double> {
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::lock_guard lock(mutex);
        seen.push_back(v);
        return std::nullopt;
      },
      /*drain=*/true);
  for (int v = 1; v <= 100; ++v) worker.submit(v);
  release = true;
  ASSERT_TRUE(worker.flush(10));
  std::lock_guard lock(mutex);
  ASSERT_FALSE(seen.empty());
  EXPECT_LE(seen.size(), 2u) << "one in progress, one waiting: the 98 in between are replaced";
  EXPECT_EQ(seen.back(), 100);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
}

TEST(NewestWinsWorker, RetriesUntilDoneAndFlushWaitsThroughTheRetries) {
  std::atomic<int> attempts{0};
  NewestWinsWorker<int> worker(
      [&](int&) -> std::optional<double> {
        return ++attempts < 3 ? std::optional(30.0) : std::nullopt;  // a long backoff...
      },
      /*drain=*/false);
  worker.submit(7);
  // ...which a flush cuts short: three attempts within a few 0.25 s pauses.
  EXPECT_TRUE(worker.flush(10));
  EXPECT_EQ(attempts, 3);
}

TEST(NewestWinsWorker, FlushGivesUpAfterItsTime) {
  NewestWinsWorker<int> worker([](int&) -> std::optional<double> { return 0.01; },
                               /*drain=*/false);
  worker.submit(1);
  EXPECT_FALSE(worker.flush(0.3));
}  // the destructor stops the retries

TEST(NewestWinsWorker, DrainingDestructorProcessesTheWaitingValue) {
  std::vector<int> seen;
  {
    std::atomic<bool> started{false}, release{false};
    NewestWinsWorker<int> worker(
        [&](int& v) -> std::optional<double> {
          started = true;
          while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          seen.push_back(v);
          return std::nullopt;
        },
        /*drain=*/true);
    worker.submit(1);
    while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // 1 in progress
    worker.submit(2);                                                            // 2 waits
    release = true;
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace convoy
