// WindowMaxPool's loops in vectors of 16 floats, built with AVX-512 (F, BW, DQ, VL) and run only
// where the CPU has it (core/window_max_pool.cc checks). See core/window_max_pool_kernels.h.
#include <immintrin.h>

#include <cstring>

#include "core/window_max_pool_kernels.h"

#ifndef __AVX512F__
#error "window_max_pool_avx512.cc is built with -mavx512f"
#endif

namespace convoy::window_pool {
namespace {

typedef float Floats __attribute__((vector_size(64)));
typedef int32_t Ints __attribute__((vector_size(64)));
constexpr int kWidth = 16;

// Positions (below 64, or kClipped = 255) travel as int32 lanes and are stored as bytes: the
// truncating conversion keeps them.
template <int kChunks>
void store_bytes(const Ints (&lanes)[kChunks], uint8_t* out) {
  static_assert(kChunks == 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8((__m512i)lanes[0]));
}

template <int kChunks>
void load_bytes(const uint8_t* in, Ints (&lanes)[kChunks]) {
  static_assert(kChunks == 1);
  lanes[0] = (Ints)_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
}

// kWidth elements as floats: f32 as they are, bf16 widened (its bits are a float's upper half).
void load_floats(const float* p, Floats& v) {
  std::memcpy(&v, p, sizeof v);
}
void load_floats(const uint16_t* p, Floats& v) {
  const __m256i halves = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  v = (Floats)_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16);
}
// And back. The floats stored here are bf16 values, so dropping the lower half is exact.
void store_floats(float* p, const Floats& v) {
  std::memcpy(p, &v, sizeof v);
}
void store_floats(uint16_t* p, const Floats& v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtepi32_epi16(_mm512_srli_epi32((__m512i)v, 16)));
}

}  // namespace

#include "core/window_max_pool_kernels.inc"

}  // namespace convoy::window_pool
