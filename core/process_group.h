// ProcessGroup: what the training loop needs from the other processes of a data-parallel job.
//
// core/ trains one replica of a model; dist/ implements this interface over MPI so that N
// replicas stay identical. The default, SingleProcess, is a job of one: every call is a no-op.
//
// Contract: every process of the group makes the same calls in the same order (they may be
// collective). Calls come from the training thread only.
//
// Names: in PyTorch's c10d a "ProcessGroup" is the collective backend (NCCL, Gloo, MPI) and the
// DDP reducer sits above it. Here the two are the other way round: ProcessGroup is what the
// trainer sees (gradients ready, sums, its share of the data), and the collective backend below it
// is a Communicator (dist/communicator.h). DataParallel (dist/data_parallel.h) joins them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace convoy {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // During backward: layer `layer` has finished, its parameter gradients are final.
  virtual void gradients_ready(size_t layer) = 0;
  // After backward: returns once every parameter gradient holds the sum over all processes (the
  // trainer scales each process's loss gradient by 1/size, so the sum is the global mean), and
  // each of `totals` (at most kMaxTotals step metrics) holds its sum over all processes too. The
  // totals ride along with the gradients, in single precision.
  static constexpr size_t kMaxTotals = 4;
  virtual void finish_gradients(std::span<double> totals) = 0;

  // Sums `values` element-wise over all processes, in place (metrics, confusion matrices).
  virtual void sum(std::span<float> values) = 0;
  virtual void sum(std::span<double> values) = 0;
  virtual void sum(std::span<int64_t> values) = 0;

  // The samples this process trains on in an epoch, given the epoch's permutation of the whole
  // training set and the per-process batch size. Every process must get the same number of full
  // batches; together, batch k of all processes is one global batch.
  virtual void select_training_samples(std::vector<int64_t>& permutation,
                                       int64_t batch_size) const = 0;
  // The contiguous slice [begin, end) of `count` evaluation samples this process evaluates; the
  // slices of all processes cover every sample exactly once.
  virtual std::pair<int64_t, int64_t> evaluation_range(int64_t count) const = 0;
};

class SingleProcess final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void gradients_ready(size_t) override {}
  void finish_gradients(std::span<double>) override {}
  void sum(std::span<float>) override {}
  void sum(std::span<double>) override {}
  void sum(std::span<int64_t>) override {}
  void select_training_samples(std::vector<int64_t>&, int64_t) const override {}
  std::pair<int64_t, int64_t> evaluation_range(int64_t count) const override { return {0, count}; }
};

}  // namespace convoy
