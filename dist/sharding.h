// Which samples each rank of a data-parallel job trains on and evaluates. Pure functions.
//
// Training (DistributedSampler semantics, strided): with n samples in the epoch's permutation,
// N ranks and a per-rank batch B, the epoch has floor(n / (N*B)) steps; rank r takes
// permutation[i] for every i < steps*N*B with i % N == r. Batch k of all ranks together is then
// exactly permutation[k*N*B, (k+1)*N*B): the batch one process with batch N*B would take. The
// remaining n - steps*N*B samples are skipped this epoch (the next epoch reshuffles), so every
// sample is seen at most once per epoch and every rank runs the same number of steps.
//
// Evaluation: rank r evaluates the contiguous slice [floor(r*n/N), floor((r+1)*n/N)); the slices
// cover every sample exactly once and differ in size by at most one.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace convoy {

std::vector<int64_t> shard_training_order(const std::vector<int64_t>& permutation, int rank,
                                          int size, int64_t batch_size);

std::pair<int64_t, int64_t> evaluation_slice(int64_t count, int rank, int size);

}  // namespace convoy
