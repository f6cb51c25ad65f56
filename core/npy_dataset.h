// A data set from NumPy files, for any 1-D, 2-D or 3-D data: a directory holding
//   train_x.npy  train_y.npy  test_x.npy  test_y.npy
// where *_x is N x C x L, N x C x H x W or N x C x D x H x W, uint8 (scaled to [0, 1]) or float32
// (used as is), and *_y holds N integer labels in [0, classes). Class names are "0", "1", ...
#pragma once

#include <string>

#include "core/dataset.h"

namespace convoy {

// Throws Error naming the file: anything read_npy refuses, inputs of another rank,
// labels that are not one-dimensional, counts that differ, a label outside [0, classes).
Dataset load_npy_dataset(const std::string& dir, Split split, int classes);

}  // namespace convoy
