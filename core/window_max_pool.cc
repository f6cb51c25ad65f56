#include "core/window_max_pool.h"

#ifdef __SSE2__
#include <emmintrin.h>  // part of every x86-64 CPU; other CPUs take the plain loops
#endif

#include <algorithm>
#include <cstring>
#include <limits>

namespace convoy {

namespace {

using tag = dnnl::memory::format_tag;

}  // namespace

std::optional<WindowMaxPool> WindowMaxPool::create(const dnnl::memory::desc& src,
                                                   const Window& window) {
  const Dims dims = src.dims();
  const dnnl::memory::data_type type = src.data_type();
  if (dims.size() != 4 ||
      (type != dnnl::memory::data_type::f32 && type != dnnl::memory::data_type::bf16)) {
    return std::nullopt;
  }
  if (window.kernel.size() != 2 || window.stride != window.kernel) return std::nullopt;
  if (std::any_of(window.pad.begin(), window.pad.end(), [](int64_t p) { return p != 0; })) {
    return std::nullopt;
  }
  const int64_t n = dims[0], c = dims[1], h = dims[2], w = dims[3];
  const int64_t kh = window.kernel[0], kw = window.kernel[1];
  if (kh * kw > 64 || kh > h || kw > w) return std::nullopt;
  const Dims out_dims{n, c, h / kh, w / kw};

  WindowMaxPool pool;
  pool.bf16_ = type == dnnl::memory::data_type::bf16;
  pool.images_ = n;
  pool.kernel_h_ = kh;
  pool.kernel_w_ = kw;
  pool.in_h_ = h;
  pool.in_w_ = w;
  pool.out_h_ = h / kh;
  pool.out_w_ = w / kw;
  // Channel-innermost layouts only: a group of `lanes` channels is contiguous at every pixel.
  for (const tag t : {tag::nChw16c, tag::nChw8c, tag::nhwc}) {
    if (src != dnnl::memory::desc(dims, type, t)) continue;
    pool.dst_desc_ = dnnl::memory::desc(out_dims, type, t);
    if (t == tag::nhwc) {
      if (c % 8 != 0) return std::nullopt;
      pool.lanes_ = c % 16 == 0 ? 16 : 8;
      pool.groups_ = c / pool.lanes_;
      pool.in_ = {h * w * c, pool.lanes_, w * c, c};
      pool.out_ = {pool.out_h_ * pool.out_w_ * c, pool.lanes_, pool.out_w_ * c, c};
    } else {
      const int64_t block = t == tag::nChw16c ? 16 : 8;
      pool.lanes_ = static_cast<int>(block);
      pool.groups_ = (c + block - 1) / block;  // padded channels are zeros: pooled like any
      pool.in_ = {pool.groups_ * h * w * block, h * w * block, w * block, block};
      pool.out_ = {pool.groups_ * pool.out_h_ * pool.out_w_ * block,
                   pool.out_h_ * pool.out_w_ * block, pool.out_w_ * block, block};
    }
    return pool;
  }
  return std::nullopt;
}

void WindowMaxPool::forward(const void* src, void* dst, uint8_t* argmax, bool relu) const {
  const auto run = [&]<typename T>(T*) {
    const auto* in = static_cast<const T*>(src);
    auto* out = static_cast<T*>(dst);
    if (lanes_ == 16) {
      forward_lanes<T, 16>(in, out, argmax, relu);
    } else {
      forward_lanes<T, 8>(in, out, argmax, relu);
    }
  };
  bf16_ ? run(static_cast<uint16_t*>(nullptr)) : run(static_cast<float*>(nullptr));
}

void WindowMaxPool::backward(const void* diff_dst, const uint8_t* argmax, void* diff_src) const {
  const auto run = [&]<typename T>(T*) {
    const auto* in = static_cast<const T*>(diff_dst);
    auto* out = static_cast<T*>(diff_src);
    if (lanes_ == 16) {
      backward_lanes<T, 16>(in, argmax, out);
    } else {
      backward_lanes<T, 8>(in, argmax, out);
    }
  };
  bf16_ ? run(static_cast<uint16_t*>(nullptr)) : run(static_cast<float*>(nullptr));
}

// The kernels work on 4 channels at a time through GCC's vector extensions (also clang's), in
// vectors of 128 bits, which every x86-64 CPU has: wider ones are lowered to scalar code when the
// compiler targets the baseline. There are no branches on the data: comparisons give lanes of all
// ones or zeros, used as bit masks, and a C-style cast between vector types of one size
// reinterprets the bits. (No helper takes a vector by value, so the ABI does not matter.)
typedef float Floats __attribute__((vector_size(16)));
typedef int32_t Ints __attribute__((vector_size(16)));
constexpr int kWidth = 4;

// Positions travel as int32 lanes and are stored as bytes. The compiler's generic conversion
// (__builtin_convertvector) goes one lane at a time here; SSE2's saturating packs do 16 at once
// (positions are below 64, or kClipped: both survive the packs).
template <int kChunks>
void store_bytes(const Ints (&lanes)[kChunks], uint8_t* out) {
  static_assert(kChunks == 2 || kChunks == 4);
#ifndef __SSE2__
  for (int q = 0; q < kChunks; ++q) {
    for (int l = 0; l < kWidth; ++l) out[q * kWidth + l] = static_cast<uint8_t>(lanes[q][l]);
  }
#else
  const __m128i low = _mm_packs_epi32((__m128i)lanes[0], (__m128i)lanes[1]);
  if constexpr (kChunks == 4) {
    const __m128i high = _mm_packs_epi32((__m128i)lanes[2], (__m128i)lanes[3]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(low, high));
  } else {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(low, low));
  }
#endif
}

template <int kChunks>
void load_bytes(const uint8_t* in, Ints (&lanes)[kChunks]) {
  static_assert(kChunks == 2 || kChunks == 4);
#ifndef __SSE2__
  for (int q = 0; q < kChunks; ++q) {
    for (int l = 0; l < kWidth; ++l) lanes[q][l] = in[q * kWidth + l];
  }
#else
  const __m128i zero = _mm_setzero_si128();
  const __m128i bytes = kChunks == 4 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(in))
                                     : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in));
  const __m128i low = _mm_unpacklo_epi8(bytes, zero);
  lanes[0] = (Ints)_mm_unpacklo_epi16(low, zero);
  lanes[1] = (Ints)_mm_unpackhi_epi16(low, zero);
  if constexpr (kChunks == 4) {
    const __m128i high = _mm_unpackhi_epi8(bytes, zero);
    lanes[2] = (Ints)_mm_unpacklo_epi16(high, zero);
    lanes[3] = (Ints)_mm_unpackhi_epi16(high, zero);
  }
#endif
}

// kWidth elements as floats: f32 as they are, bf16 widened (its bits are a float's upper half).
void load_floats(const float* p, Floats& v) {
  std::memcpy(&v, p, sizeof v);
}
void load_floats(const uint16_t* p, Floats& v) {
#ifndef __SSE2__
  Ints bits;
  for (int l = 0; l < kWidth; ++l) bits[l] = int32_t{p[l]} << 16;
  v = (Floats)bits;
#else
  const __m128i halves = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  v = (Floats)_mm_unpacklo_epi16(_mm_setzero_si128(), halves);
#endif
}
// And back. The floats stored here are bf16 values (a maximum of bf16 inputs, 0, or a copy of a
// bf16 gradient), so dropping the lower half is exact.
void store_floats(float* p, const Floats& v) {
  std::memcpy(p, &v, sizeof v);
}
void store_floats(uint16_t* p, const Floats& v) {
#ifndef __SSE2__
  for (int l = 0; l < kWidth; ++l) p[l] = static_cast<uint16_t>(((Ints)v)[l] >> 16);
#else
  // The arithmetic shift keeps each upper half as a signed 16-bit value, which the saturating
  // pack passes unchanged.
  const __m128i upper = _mm_srai_epi32((__m128i)v, 16);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packs_epi32(upper, upper));
#endif
}

template <typename T, int kLanes>
void WindowMaxPool::forward_lanes(const T* src, T* dst, uint8_t* argmax, bool relu) const {
  constexpr int kChunks = kLanes / kWidth;
  const int64_t work = images_ * groups_ * out_h_;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < work; ++item) {
    const int64_t oh = item % out_h_, group = item / out_h_ % groups_, n = item / out_h_ / groups_;
    const T* in_row = src + n * in_.image + group * in_.group + oh * kernel_h_ * in_.row;
    const int64_t out_offset = n * out_.image + group * out_.group + oh * out_.row;
    for (int64_t ow = 0; ow < out_w_; ++ow) {
      const T* window = in_row + ow * kernel_w_ * in_.column;
      Floats best[kChunks];
      Ints where[kChunks];
      // As oneDNN: from the lowest finite float, so a NaN is never the maximum and a window of
      // -inf gives -FLT_MAX.
      for (int q = 0; q < kChunks; ++q) {
        best[q] = Floats{} - std::numeric_limits<float>::max();
        where[q] = Ints{};
      }
      for (int64_t i = 0; i < kernel_h_; ++i) {
        for (int64_t j = 0; j < kernel_w_; ++j) {
          const T* p = window + i * in_.row + j * in_.column;
          const auto position = static_cast<int32_t>(i * kernel_w_ + j);
          for (int q = 0; q < kChunks; ++q) {
            Floats value;
            load_floats(p + q * kWidth, value);
            const Ints larger = value > best[q];  // strictly: the first maximum wins
            best[q] = (Floats)((larger & (Ints)value) | (~larger & (Ints)best[q]));
            where[q] = (larger & position) | (~larger & where[q]);
          }
        }
      }
      const int64_t out = out_offset + ow * out_.column;
      for (int q = 0; q < kChunks; ++q) {
        if (relu) {
          // ReLU's gradient is 0 where its input is not positive (oneDNN's and PyTorch's rule).
          const Ints kept = best[q] > 0.f;
          best[q] = (Floats)(kept & (Ints)best[q]);
          where[q] = (kept & where[q]) | (~kept & int32_t{kClipped});
        }
        store_floats(dst + out + q * kWidth, best[q]);
      }
      store_bytes(where, argmax + out);
    }
  }
}

template <typename T, int kLanes>
void WindowMaxPool::backward_lanes(const T* diff_dst, const uint8_t* argmax, T* diff_src) const {
  constexpr int kChunks = kLanes / kWidth;
  const int64_t work = images_ * groups_ * out_h_;
  const int64_t covered_w = out_w_ * kernel_w_;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < work; ++item) {
    const int64_t oh = item % out_h_, group = item / out_h_ % groups_, n = item / out_h_ / groups_;
    T* in_row = diff_src + n * in_.image + group * in_.group + oh * kernel_h_ * in_.row;
    const int64_t out_offset = n * out_.image + group * out_.group + oh * out_.row;
    for (int64_t ow = 0; ow < out_w_; ++ow) {
      const int64_t out = out_offset + ow * out_.column;
      Ints grad[kChunks], arg[kChunks];
      for (int q = 0; q < kChunks; ++q) {
        Floats g;
        load_floats(diff_dst + out + q * kWidth, g);
        grad[q] = (Ints)g;
      }
      load_bytes(argmax + out, arg);
      T* window = in_row + ow * kernel_w_ * in_.column;
      for (int64_t i = 0; i < kernel_h_; ++i) {
        for (int64_t j = 0; j < kernel_w_; ++j) {
          T* p = window + i * in_.row + j * in_.column;
          const auto position = static_cast<int32_t>(i * kernel_w_ + j);
          for (int q = 0; q < kChunks; ++q) {
            // + 0: oneDNN adds into a zeroed gradient, which turns -0 into +0.
            const Floats value = (Floats)((arg[q] == position) & grad[q]) + 0.f;
            store_floats(p + q * kWidth, value);
          }
        }
      }
    }
    // Columns right of the last window (when the width is not a multiple of the kernel).
    for (int64_t i = 0; i < kernel_h_; ++i) {
      for (int64_t x = covered_w; x < in_w_; ++x) {
        std::memset(in_row + i * in_.row + x * in_.column, 0, kLanes * sizeof(T));
      }
    }
    // Rows below the last window, once per image and group.
    if (oh + 1 == out_h_) {
      for (int64_t y = out_h_ * kernel_h_; y < in_h_; ++y) {
        T* row = diff_src + n * in_.image + group * in_.group + y * in_.row;
        for (int64_t x = 0; x < in_w_; ++x) {
          std::memset(row + x * in_.column, 0, kLanes * sizeof(T));
        }
      }
    }
  }
}

}  // namespace convoy
