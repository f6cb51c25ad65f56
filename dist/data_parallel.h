// DataParallel: the ProcessGroup of an N-rank job, built from a Communicator and a
// GradientReducer. It is what core's Trainer talks to; see sharding.h for which samples each rank
// sees and gradient_reducer.h for how gradients are averaged.
#pragma once

#include "core/process_group.h"
#include "dist/communicator.h"
#include "dist/gradient_reducer.h"

namespace convoy {

class DataParallel final : public ProcessGroup {
 public:
  // `reducer` may be null when comm.size() == 1 (nothing to average).
  DataParallel(Communicator& comm, GradientReducer* reducer) : comm_(comm), reducer_(reducer) {}

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void gradients_ready(size_t layer) override;
  void finish_gradients(std::span<double> totals) override;
  void sum(std::span<float> values) override;
  void sum(std::span<double> values) override;
  void sum(std::span<int64_t> values) override;
  void select_training_samples(std::vector<int64_t>& permutation,
                               int64_t batch_size) const override;
  std::pair<int64_t, int64_t> evaluation_range(int64_t count) const override;

 private:
  Communicator& comm_;
  GradientReducer* reducer_;
};

}  // namespace convoy
