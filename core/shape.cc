#include "core/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace convoy {

int64_t SampleShape::elements() const {
  int64_t n = channels;
  for (int64_t s : spatial) n *= s;
  return n;
}

Dims SampleShape::batch_dims(int64_t batch) const {
  Dims dims{batch, channels};
  dims.insert(dims.end(), spatial.begin(), spatial.end());
  return dims;
}

std::string SampleShape::str() const {
  return spatial.empty() ? fmt::format("{}", channels)
                         : fmt::format("{}x{}", channels, fmt::join(spatial, "x"));
}

std::vector<int64_t> Window::output(const std::vector<int64_t>& in) const {
  CONVOY_CHECK(in.size() == kernel.size());
  std::vector<int64_t> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t span = in[i] + 2 * pad[i] - kernel[i];
    // Floor division that also rounds negative spans down, so a too-small input gives <= 0.
    const int64_t steps = span >= 0 ? span / stride[i] : -((-span + stride[i] - 1) / stride[i]);
    out[i] = steps + 1;
  }
  return out;
}

Dims Window::right_padding(const std::vector<int64_t>& in) const {
  const std::vector<int64_t> out = output(in);
  Dims right(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    right[i] = (out[i] - 1) * stride[i] + kernel[i] - in[i] - pad[i];
  }
  return right;
}

std::vector<int64_t> expand_dims(const google::protobuf::RepeatedField<int32_t>& values,
                                 size_t rank, int64_t fallback, int64_t min,
                                 const std::string& where, const std::string& field) {
  std::vector<int64_t> out;
  if (values.empty()) {
    out.assign(rank, fallback);
  } else if (values.size() == 1) {
    out.assign(rank, values[0]);
  } else if (static_cast<size_t>(values.size()) == rank) {
    out.assign(values.begin(), values.end());
  } else {
    throw Error::invalid_input(
        fmt::format("{}: {} has {} values, expected 1 or {} (one per spatial dimension)", where,
                    field, values.size(), rank));
  }
  for (int64_t v : out) {
    if (v < min) {
      throw Error::invalid_input(fmt::format("{}: {} must be >= {}, got {}", where, field, min, v));
    }
  }
  return out;
}

}  // namespace convoy
