// CIFAR-10 in its binary version (the "CIFAR-10 binary version (suitable for C programs)"):
// data_batch_1.bin ... data_batch_5.bin for training, test_batch.bin for testing; each record is
// one label byte and 3,072 pixel bytes, channel-planar 32x32 RGB (1,024 red, then green, blue).
// Pixels are scaled to [0, 1] and normalized per channel with the training set's published mean
// and standard deviation, the same for both splits: x = (p / 255 - mean[c]) / std[c].
#pragma once

#include <array>
#include <string>

#include "core/dataset.h"

namespace convoy {

inline constexpr std::array<float, 3> kCifar10Mean{0.4914f, 0.4822f, 0.4465f};
inline constexpr std::array<float, 3> kCifar10Std{0.2470f, 0.2435f, 0.2616f};

// Throws Error naming the directory or file: a missing file, a size that is not a whole
// number of records, a label >= 10.
Dataset load_cifar10(const std::string& dir, Split split);

}  // namespace convoy
