// The order in which an epoch visits the training samples: a Fisher-Yates permutation of
// [0, count) drawn from Rng(mix_seed(seed, epoch)). It depends only on (count, seed, epoch), so
// every process that asks gets the same order, and a run is reproducible from its seed.
#pragma once

#include <cstdint>
#include <vector>

namespace convoy {

std::vector<int64_t> epoch_permutation(int64_t count, uint64_t seed, int64_t epoch);

}  // namespace convoy
