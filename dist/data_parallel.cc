#include "dist/data_parallel.h"

#include "dist/sharding.h"

namespace convoy {

void DataParallel::gradients_ready(size_t layer) {
  if (reducer_ != nullptr) reducer_->layer_ready(layer);
}

void DataParallel::finish_gradients(std::span<double> totals) {
  if (reducer_ != nullptr) {
    reducer_->finish(totals);
  } else if (comm_.size() > 1) {
    comm_.allreduce_sum(totals);
  }
}

void DataParallel::sum(std::span<float> values) {
  if (comm_.size() > 1) comm_.allreduce_sum(values);
}

void DataParallel::sum(std::span<double> values) {
  if (comm_.size() > 1) comm_.allreduce_sum(values);
}

void DataParallel::sum(std::span<int64_t> values) {
  if (comm_.size() > 1) comm_.allreduce_sum(values);
}

void DataParallel::select_training_samples(std::vector<int64_t>& permutation,
                                           int64_t batch_size) const {
  permutation = shard_training_order(permutation, comm_.rank(), comm_.size(), batch_size);
}

std::pair<int64_t, int64_t> DataParallel::evaluation_range(int64_t count) const {
  return evaluation_slice(count, comm_.rank(), comm_.size());
}

}  // namespace convoy
