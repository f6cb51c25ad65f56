// BatchLoader and the epoch permutation: every sample exactly once in the requested order,
// partial batches, restarts mid-epoch.
#include "core/batch_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/shuffle.h"

namespace convoy {
namespace {

// Sample i has every pixel equal to i and label i % 10.
Dataset numbered(int64_t n) {
  Dataset d{"test", {1, {2, 2}}, class_names_for("mnist"), {}, {}};
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) d.samples.push_back(static_cast<float>(i));
    d.labels.push_back(static_cast<int32_t>(i % 10));
  }
  return d;
}

std::vector<int64_t> drain(BatchLoader& loader, int64_t batch, std::vector<int64_t>* counts) {
  std::vector<int64_t> seen;
  while (const Batch* b = loader.next()) {
    counts->push_back(b->count);
    for (int64_t i = 0; i < batch; ++i) {
      const float v = b->samples[static_cast<size_t>(i * 4)];
      if (i < b->count) {
        seen.push_back(static_cast<int64_t>(v));
        EXPECT_EQ(b->labels[static_cast<size_t>(i)], static_cast<int64_t>(v) % 10);
      } else {
        EXPECT_EQ(v, 0.f);  // padding
      }
    }
  }
  return seen;
}

TEST(Shuffle, PermutationIsDeterministicPerSeedAndEpoch) {
  const std::vector<int64_t> a = epoch_permutation(1000, 5, 0);
  EXPECT_EQ(a, epoch_permutation(1000, 5, 0));
  EXPECT_NE(a, epoch_permutation(1000, 5, 1));
  EXPECT_NE(a, epoch_permutation(1000, 6, 0));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  // Not the identity, and roughly uniform: the first element is not stuck near 0.
  EXPECT_NE(a, sorted);
}

TEST(BatchLoader, ServesTheOrderInBatchesWithPartialLast) {
  const Dataset d = numbered(23);
  BatchLoader loader(d, 5);
  const std::vector<int64_t> order = epoch_permutation(23, 1, 0);
  loader.start(order, /*keep_partial=*/true);
  EXPECT_EQ(loader.batches(), 5);
  std::vector<int64_t> counts;
  EXPECT_EQ(drain(loader, 5, &counts), order);
  EXPECT_EQ(counts, (std::vector<int64_t>{5, 5, 5, 5, 3}));
  EXPECT_EQ(loader.next(), nullptr);  // stays exhausted
}

TEST(BatchLoader, DropsPartialBatchWhenAsked) {
  const Dataset d = numbered(23);
  BatchLoader loader(d, 5);
  std::vector<int64_t> order(23);
  std::iota(order.begin(), order.end(), 0);
  loader.start(order, /*keep_partial=*/false);
  std::vector<int64_t> counts;
  const std::vector<int64_t> seen = drain(loader, 5, &counts);
  EXPECT_EQ(counts, (std::vector<int64_t>{5, 5, 5, 5}));
  EXPECT_EQ(seen, std::vector<int64_t>(order.begin(), order.begin() + 20));
}

TEST(BatchLoader, RestartMidEpochServesTheNewOrder) {
  const Dataset d = numbered(100);
  BatchLoader loader(d, 8);
  loader.start(epoch_permutation(100, 1, 0), false);
  ASSERT_NE(loader.next(), nullptr);
  ASSERT_NE(loader.next(), nullptr);
  const std::vector<int64_t> second = epoch_permutation(100, 1, 1);
  loader.start(second, false);
  std::vector<int64_t> counts;
  EXPECT_EQ(drain(loader, 8, &counts), std::vector<int64_t>(second.begin(), second.begin() + 96));
}

TEST(BatchLoader, ManyEpochsBackToBack) {
  const Dataset d = numbered(64);
  BatchLoader loader(d, 16);
  for (int epoch = 0; epoch < 50; ++epoch) {
    const std::vector<int64_t> order = epoch_permutation(64, 3, epoch);
    loader.start(order, false);
    std::vector<int64_t> counts;
    ASSERT_EQ(drain(loader, 16, &counts), order) << "epoch " << epoch;
  }
}

}  // namespace
}  // namespace convoy
