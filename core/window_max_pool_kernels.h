// The loops of WindowMaxPool (core/window_max_pool.h), compiled once per vector width: 4 floats
// (core/window_max_pool_sse2.cc, every x86-64 CPU), 8 (window_max_pool_avx2.cc, built with AVX2)
// and 16 (window_max_pool_avx512.cc, built with AVX-512). The three differ only in their vector
// types and the few intrinsics that convert bf16 and argmax bytes; the loops themselves are one
// text (window_max_pool_kernels.inc) and compute lane by lane, so every width gives the same bits.
// WindowMaxPool runs the widest the CPU has.
//
// The wider files are built with flags this CPU may lack, so they include nothing but this header
// and the compiler's own (an inline function they emitted could be the copy the linker keeps for
// the whole program).
#pragma once

#include <cstdint>
#include <limits>

namespace convoy::window_pool {

// The argmax of a window whose output the fused ReLU cut to 0: no gradient flows back.
inline constexpr uint8_t kClipped = 0xff;
// Where a window's maximum starts (as oneDNN's: a NaN is never the maximum, and a window of -inf
// gives -FLT_MAX).
inline constexpr float kLowestFinite = -std::numeric_limits<float>::max();

// Element offsets of a channel-innermost layout: (image, channel group, row, column), then
// `lanes` consecutive channels.
struct Layout {
  int64_t image, group, row, column;
};

struct Geometry {
  bool bf16 = false;  // elements are bf16 (uint16_t bits), else f32
  int lanes = 16;     // channels processed together (8 or 16)
  int64_t images = 0, groups = 0;
  int64_t kernel_h = 0, kernel_w = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  Layout in{}, out{};
};

// kWidth: floats per vector, 4, 8 or 16, at most `lanes`. Defined (specialized) only for the
// widths that were built, each in its own file.
template <int kWidth>
struct Kernels {
  static void forward(const Geometry& g, const void* src, void* dst, uint8_t* argmax, bool relu);
  static void backward(const Geometry& g, const void* diff_dst, const uint8_t* argmax,
                       void* diff_src);
};

#define CONVOY_WINDOW_POOL_WIDTH(W)                                                         \
  template <>                                                                               \
  void Kernels<W>::forward(const Geometry& g, const void* src, void* dst, uint8_t* argmax,  \
                           bool relu);                                                      \
  template <>                                                                               \
  void Kernels<W>::backward(const Geometry& g, const void* diff_dst, const uint8_t* argmax, \
                            void* diff_src);
CONVOY_WINDOW_POOL_WIDTH(4)
CONVOY_WINDOW_POOL_WIDTH(8)
CONVOY_WINDOW_POOL_WIDTH(16)
#undef CONVOY_WINDOW_POOL_WIDTH

}  // namespace convoy::window_pool
