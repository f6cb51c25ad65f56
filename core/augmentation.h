// Augmentation of training samples: a random crop with zero padding (the sample shifted by up to
// `crop_padding` positions along every spatial dimension, zeros shifted in, as torchvision's
// RandomCrop(size, padding) does) and a horizontal flip (the last spatial dimension reversed,
// with probability 1/2). Training only; evaluation sees samples unchanged.
//
// Every draw is a pure function of the sample's key (the seed, the epoch and the sample's index in
// the data set; see trainer.cc), so runs are reproducible and a sample is augmented the same way
// whichever process trains it.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/shape.h"
#include "proto/model.pb.h"

namespace convoy {

struct Augmentation {
  int64_t crop_padding = 0;
  bool flip = false;

  bool enabled() const { return crop_padding > 0 || flip; }
  // "crop 4 + flip", "none".
  std::string str() const;
  // The model's `augment { ... }`; throws Error naming `source` for a negative padding.
  static Augmentation from_spec(const pb::ModelSpec& spec, const std::string& source);

  // Augments `sample` (plain layout, `shape`) in place; `scratch` holds at least one sample.
  void apply(std::span<float> sample, const SampleShape& shape, uint64_t key,
             std::span<float> scratch) const;
};

// Reverses every run of `width` consecutive values of `values` in place: for samples in plain
// layout whose last dimension has `width` elements, the reversal `flip` applies, to every sample.
void mirror_last_dimension(std::span<float> values, int64_t width);

}  // namespace convoy
