// Tensor: a dnnl::memory together with its logical shape.
//
// The logical shape is what the user thinks of ([N, C, H, W] for a batch of images, [O, I, KH, KW]
// for convolution weights); the memory layout is whatever the primitive that produces the tensor
// chose (for example nChw16c), and may include block padding. plain_desc() is the row-major layout
// of the same shape, the one used for host buffers, checkpoints and exports.
//
// Copies to and from host buffers build a reorder on the spot: they are for setup, checkpoints and
// tests, not for the training step (the step runs only primitives built in advance, see op.h).
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <vector>

namespace convoy {

using Dims = dnnl::memory::dims;

// Row-major format tag for a tensor of `rank` dimensions (1 to 6).
dnnl::memory::format_tag plain_tag(size_t rank);
// Row-major desc for `dims` (f32 unless `type` says otherwise).
dnnl::memory::desc plain_desc(const Dims& dims,
                              dnnl::memory::data_type type = dnnl::memory::data_type::f32);
// Desc for `dims` that lets a primitive choose the layout (format_tag::any).
dnnl::memory::desc any_desc(const Dims& dims,
                            dnnl::memory::data_type type = dnnl::memory::data_type::f32);
// The same layout (dims, blocking, strides) holding elements of `type` instead.
dnnl::memory::desc with_type(const dnnl::memory::desc& desc, dnnl::memory::data_type type);
// Number of elements of a shape (product of dims).
int64_t element_count(const Dims& dims);

class Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled buffer of `desc`'s size (block padding included).
  Tensor(const dnnl::memory::desc& desc, const dnnl::engine& engine);
  // Wraps an existing memory object (shares its buffer).
  explicit Tensor(dnnl::memory memory) : memory_(std::move(memory)) {}

  bool empty() const { return !memory_; }
  Dims shape() const { return desc().dims(); }
  dnnl::memory::desc desc() const { return memory_.get_desc(); }
  dnnl::memory::desc plain_desc() const { return convoy::plain_desc(shape()); }
  bool is_plain() const { return desc() == plain_desc(); }
  // Logical element count, and the buffer's size in bytes in its actual layout.
  int64_t size() const;
  size_t bytes() const { return desc().get_size(); }

  dnnl::memory& memory() { return memory_; }
  const dnnl::memory& memory() const { return memory_; }
  // The raw buffer in desc()'s layout (CPU engine), for f32 tensors.
  float* data() const { return static_cast<float*>(memory_.get_data_handle()); }

  // Sets every byte of the buffer (padding included) to zero.
  void zero();
  // Copies `values` (row-major, exactly size() elements) into the tensor, converting the layout.
  void copy_from_plain(std::span<const float> values);
  // Returns the tensor's values in row-major order.
  std::vector<float> to_plain() const;

 private:
  dnnl::memory memory_;
};

}  // namespace convoy
