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
// pooling. Measured with `convoy bench --per-layer` (README, Performance). Its loops run at the
// widest vectors the CPU has: 4, 8 or 16 floats (core/window_max_pool_kernels.h).
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
#include "core/window_max_pool_kernels.h"

namespace convoy {

class WindowMaxPool {
 public:
  static constexpr uint8_t kClipped = window_pool::kClipped;

  // The kernel for `src` and `window`, or nothing when it does not apply (other layouts, data
  // types than f32 and bf16, other ranks, overlapping or padded windows, a window of over 64
  // elements).
  // `max_width` caps the vector width (floats: 4, 8 or 16) below the widest this CPU runs, for
  // tests of every width.
  static std::optional<WindowMaxPool> create(const dnnl::memory::desc& src, const Window& window,
                                             int max_width = 16);
  // The widest vectors the kernels use here: 16 floats with AVX-512 (F, BW, DQ, VL), 8 with
  // AVX2, else 4; no wider than ONEDNN_MAX_CPU_ISA lets oneDNN run.
  static int widest_width();
  // The width this kernel runs at.
  int width() const { return width_; }

  // The output's desc: the source's layout at the pooled size.
  const dnnl::memory::desc& dst_desc() const { return dst_desc_; }
  // Bytes of argmax the forward pass writes for the backward pass.
  size_t argmax_bytes() const { return dst_desc_.get_size() / (geometry_.bf16 ? 2 : 4); }

  // dst = max over each window (then max(., 0) when `relu`); records each argmax. Buffers hold
  // elements of dst_desc()'s data type (the gradients too).
  void forward(const void* src, void* dst, uint8_t* argmax, bool relu) const;
  // diff_src = diff_dst at each window's argmax, 0 elsewhere (every element written).
  void backward(const void* diff_dst, const uint8_t* argmax, void* diff_src) const;

 private:
  dnnl::memory::desc dst_desc_;
  window_pool::Geometry geometry_;
  int width_ = 4;
};

}  // namespace convoy
