// Sharding: table-driven cases, and the property that makes N ranks equal one process with the
// global batch: batch k of all ranks together is the k-th chunk of the permutation.
#include "dist/sharding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/shuffle.h"

namespace convoy {
namespace {

TEST(Sharding, StridedWithRemainderDropped) {
  std::vector<int64_t> perm(10);
  std::iota(perm.begin(), perm.end(), 100);
  // 3 ranks x batch 1: 3 steps use 9 samples, sample 109 is skipped.
  EXPECT_EQ(shard_training_order(perm, 0, 3, 1), (std::vector<int64_t>{100, 103, 106}));
  EXPECT_EQ(shard_training_order(perm, 1, 3, 1), (std::vector<int64_t>{101, 104, 107}));
  EXPECT_EQ(shard_training_order(perm, 2, 3, 1), (std::vector<int64_t>{102, 105, 108}));
  // 2 ranks x batch 2: 2 steps use 8 samples.
  EXPECT_EQ(shard_training_order(perm, 1, 2, 2), (std::vector<int64_t>{101, 103, 105, 107}));
  // Fewer samples than one global batch: nothing.
  EXPECT_TRUE(shard_training_order(perm, 0, 3, 4).empty());
  // One rank keeps whole batches only.
  EXPECT_EQ(shard_training_order(perm, 0, 1, 4).size(), 8u);
}

TEST(Sharding, GlobalBatchIsAContiguousChunkOfThePermutation) {
  const std::vector<int64_t> perm = epoch_permutation(1000, 7, 3);
  for (int size : {1, 2, 3, 5}) {
    for (int64_t batch : {1, 16, 33}) {
      std::vector<std::vector<int64_t>> shards;
      for (int r = 0; r < size; ++r) shards.push_back(shard_training_order(perm, r, size, batch));
      const int64_t steps = 1000 / (batch * size);
      for (const auto& s : shards) ASSERT_EQ(static_cast<int64_t>(s.size()), steps * batch);
      for (int64_t k = 0; k < steps; ++k) {
        std::multiset<int64_t> global, chunk;
        for (const auto& s : shards)
          global.insert(s.begin() + k * batch, s.begin() + (k + 1) * batch);
        chunk.insert(perm.begin() + k * batch * size, perm.begin() + (k + 1) * batch * size);
        ASSERT_EQ(global, chunk) << "size " << size << " batch " << batch << " step " << k;
      }
    }
  }
}

TEST(Sharding, EvaluationSlicesCoverEverySampleOnce) {
  EXPECT_EQ(evaluation_slice(10000, 0, 3), (std::pair<int64_t, int64_t>{0, 3333}));
  EXPECT_EQ(evaluation_slice(10000, 1, 3), (std::pair<int64_t, int64_t>{3333, 6666}));
  EXPECT_EQ(evaluation_slice(10000, 2, 3), (std::pair<int64_t, int64_t>{6666, 10000}));
  EXPECT_EQ(evaluation_slice(2, 2, 3), (std::pair<int64_t, int64_t>{1, 2}));
  for (int64_t count : {0, 1, 2, 7, 100, 10001}) {
    for (int size : {1, 2, 3, 4, 8}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const auto [begin, end] = evaluation_slice(count, r, size);
        EXPECT_EQ(begin, next);
        EXPECT_LE(end - begin, count / size + 1);
        next = end;
      }
      EXPECT_EQ(next, count);
    }
  }
}

}  // namespace
}  // namespace convoy
