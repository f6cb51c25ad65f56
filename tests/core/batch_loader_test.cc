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
  Dataset d;
  d.name = "test";
  d.shape = {1, {2, 2}};
  d.class_names = class_names_for("mnist");
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

// Image bytes stay bytes in memory; each batch gets every byte's value from its channel's table.
TEST(BatchLoader, ConvertsImageBytesPerChannelIntoTheBatch) {
  Dataset d;
  d.name = "bytes";
  d.shape = {2, {1, 3}};
  d.class_names = class_names_for("mnist");
  std::array<float, 256> red{}, green{};
  for (size_t v = 0; v < 256; ++v) {
    red[v] = static_cast<float>(v) / 255.f;
    green[v] = -static_cast<float>(v);
  }
  d.set_pixels({0, 1, 255, 7, 8, 9, /*sample 1:*/ 10, 20, 30, 40, 50, 60}, {red, green});
  d.labels = {4, 5};
  EXPECT_EQ(d.sample(1), (std::vector<float>{10 / 255.f, 20 / 255.f, 30 / 255.f, -40, -50, -60}));
  BatchLoader loader(d, 2);
  loader.start({1, 0}, /*keep_partial=*/true);
  const Batch* b = loader.next();
  ASSERT_NE(b, nullptr);
  const std::vector<float> got(b->samples.data(), b->samples.data() + 12);
  EXPECT_EQ(got, (std::vector<float>{10 / 255.f, 20 / 255.f, 30 / 255.f, -40, -50, -60, 0.f,
                                     1 / 255.f, 1.f, -7, -8, -9}));
  EXPECT_EQ(b->labels[0], 5);
  EXPECT_EQ(d.head(1).pixels.size(), 6u);
  EXPECT_EQ(d.head(1).sample(0), d.sample(0));
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
