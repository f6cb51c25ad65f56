#include "dist/sharding.h"

#include "core/error.h"

namespace convoy {

std::vector<int64_t> shard_training_order(const std::vector<int64_t>& permutation, int rank,
                                          int size, int64_t batch_size) {
  CONVOY_CHECK(size > 0 && rank >= 0 && rank < size && batch_size > 0);
  const int64_t global_batch = batch_size * size;
  const int64_t used = static_cast<int64_t>(permutation.size()) / global_batch * global_batch;
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(used / size));
  for (int64_t i = rank; i < used; i += size) mine.push_back(permutation[static_cast<size_t>(i)]);
  return mine;
}

std::pair<int64_t, int64_t> evaluation_slice(int64_t count, int rank, int size) {
  CONVOY_CHECK(size > 0 && rank >= 0 && rank < size && count >= 0);
  return {count * rank / size, count * (rank + 1) / size};
}

}  // namespace convoy
