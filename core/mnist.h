// MNIST and Fashion-MNIST from a directory of IDX files, as distributed (gzip) or unpacked:
//   train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
//   t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]
// Pixels are scaled to [0, 1]; samples have shape 1 x rows x cols.
#pragma once

#include <string>

#include "core/dataset.h"

namespace convoy {

// `dataset` is "fashion-mnist" or "mnist" (it decides the class names). Throws Error naming
// the directory or file: missing directory or file, wrong magic, truncated file or gzip stream,
// image and label counts that differ, a label >= 10.
Dataset load_mnist(const std::string& dir, const std::string& dataset, Split split);

}  // namespace convoy
