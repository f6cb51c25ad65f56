// Shape arithmetic shared by every layer: per-sample shapes and sliding windows (convolution and
// pooling). Pure functions, tested table-driven in tests/core/shape_test.cc.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convoy {

// The shape of one sample: channels (or features) and 0 to 3 spatial extents, outermost first.
struct SampleShape {
  int64_t channels = 0;
  std::vector<int64_t> spatial;

  int64_t elements() const;
  // [batch, channels, spatial...]
  Dims batch_dims(int64_t batch) const;
  // "1x28x28"
  std::string str() const;
  bool operator==(const SampleShape&) const = default;
};

// A sliding window over `rank` spatial dimensions.
struct Window {
  std::vector<int64_t> kernel, stride, pad;

  // Output extents for `in`, which must have the window's rank; an extent may come out <= 0.
  std::vector<int64_t> output(const std::vector<int64_t>& in) const;
  // Padding after the last element that makes oneDNN produce exactly output(in) extents:
  // (out - 1) * stride + kernel - in - pad. Negative when the last rows are never covered.
  Dims right_padding(const std::vector<int64_t>& in) const;
};

// Expands a repeated size field to `rank` values: empty -> `fallback` everywhere, one value -> that
// value everywhere, `rank` values -> as given. Any other count, or a value below `min`, throws
// Error::invalid_input("<where>: <field> ...").
std::vector<int64_t> expand_dims(const google::protobuf::RepeatedField<int32_t>& values,
                                 size_t rank, int64_t fallback, int64_t min,
                                 const std::string& where, const std::string& field);

}  // namespace convoy
