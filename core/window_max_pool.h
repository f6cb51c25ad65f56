// WindowMaxPool: max pooling over non-overlapping 2-D windows (stride = kernel, no padding: the
// `pool { kernel: 2 }` of most CNNs), optionally with the ReLU that follows it applied in the same
// pass, on the channel-innermost layouts convolutions produce (nChw16c, nChw8c, nhwc), in f32 or
// bf16 (which it compares as the floats they are: the maximum of bf16 values is one of them, so
// bf16 needs no rounding anywhere).
//
// Hand-written because oneDNN 2.6 has no faster way to do this: its max pooling backward first
// zero-fills the whole input gradient and then scatters into it, where non-overlapping windows
// let each element be written once; its AVX-512 forward kernel is 2.7x slower than its own SSE4.1
// one on this shape (core/implementation_choice.h); and it cannot apply a ReLU as part of the
// pooling. Measured with `convoy bench --per-layer` (README, Performance).
//
// Results are bitwise oneDNN's: the first maximum of a window in row-major order wins, ties
// included, a NaN is never the maximum, and the gradient goes to that element only (a -0 comes
// back as +0). One difference, on purpose: where the fused ReLU cut its input, a NaN or infinite
// incoming gradient becomes 0 (as PyTorch's ReLU does; oneDNN's ReLU backward multiplies it by 0,
// giving NaN). The argmax is kept as one byte per output element
// (its position in the window; kClipped where the fused ReLU cut the output to 0, so no gradient
// flows back through that window).
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>

#include "core/shape.h"
#include "core/tensor.h"

namespace convoy {

class WindowMaxPool {
 public:
  static constexpr uint8_t kClipped = 0xff;

  // The kernel for `src` and `window`, or nothing when it does not apply (other layouts, data
  // types than f32 and bf16, other ranks, overlapping or padded windows, a window of over 64
  // elements).
  static std::optional<WindowMaxPool> create(const dnnl::memory::desc& src, const Window& window);

  // The output's desc: the source's layout at the pooled size.
  const dnnl::memory::desc& dst_desc() const { return dst_desc_; }
  // Bytes of argmax the forward pass writes for the backward pass.
  size_t argmax_bytes() const { return dst_desc_.get_size() / (bf16_ ? 2 : 4); }

  // dst = max over each window (then max(., 0) when `relu`); records each argmax. Buffers hold
  // elements of dst_desc()'s data type (the gradients too).
  void forward(const void* src, void* dst, uint8_t* argmax, bool relu) const;
  // diff_src = diff_dst at each window's argmax, 0 elsewhere (every element written).
  void backward(const void* diff_dst, const uint8_t* argmax, void* diff_src) const;

 private:
  // Element offsets of a channel-innermost layout: (image, channel group, row, column), then
  // `lanes` consecutive channels.
  struct Layout {
    int64_t image, group, row, column;
  };
  // T: float, or uint16_t holding bf16's bits.
  template <typename T, int kLanes>
  void forward_lanes(const T* src, T* dst, uint8_t* argmax, bool relu) const;
  template <typename T, int kLanes>
  void backward_lanes(const T* diff_dst, const uint8_t* argmax, T* diff_src) const;

  dnnl::memory::desc dst_desc_;
  bool bf16_ = false;
  int lanes_ = 16;  // channels processed together (8 or 16)
  int64_t images_ = 0, groups_ = 0;
  int64_t kernel_h_ = 0, kernel_w_ = 0, in_h_ = 0, in_w_ = 0, out_h_ = 0, out_w_ = 0;
  Layout in_{}, out_{};
};

}  // namespace convoy
