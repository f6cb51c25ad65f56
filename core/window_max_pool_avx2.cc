// WindowMaxPool's loops in vectors of 8 floats, built with AVX2 and run only where the CPU has it
// (core/window_max_pool.cc checks). See core/window_max_pool_kernels.h.
#include <immintrin.h>

#include <cstring>

#include "core/window_max_pool_kernels.h"

#ifndef __AVX2__
#error "window_max_pool_avx2.cc is built with -mavx2"
#endif

namespace convoy::window_pool {
namespace {

typedef float Floats __attribute__((vector_size(32)));
typedef int32_t Ints __attribute__((vector_size(32)));
constexpr int kWidth = 8;

// Positions (below 64, or kClipped) travel as int32 lanes and are stored as bytes: the saturating
// packs keep them, working on the two 128-bit halves.
template <int kChunks>
void store_bytes(const Ints (&lanes)[kChunks], uint8_t* out) {
  for (int q = 0; q < kChunks; ++q) {
    const __m256i v = (__m256i)lanes[q];
    const __m128i words =
        _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + q * kWidth), _mm_packus_epi16(words, words));
  }
}

template <int kChunks>
void load_bytes(const uint8_t* in, Ints (&lanes)[kChunks]) {
  for (int q = 0; q < kChunks; ++q) {
    lanes[q] = (Ints)_mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + q * kWidth)));
  }
}

// kWidth elements as floats: f32 as they are, bf16 widened (its bits are a float's upper half).
void load_floats(const float* p, Floats& v) {
  std::memcpy(&v, p, sizeof v);
}
void load_floats(const uint16_t* p, Floats& v) {
  const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  v = (Floats)_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16);
}
// And back. The floats stored here are bf16 values, so dropping the lower half is exact; the
// arithmetic shift keeps each upper half as a signed 16-bit value, which the pack passes.
void store_floats(float* p, const Floats& v) {
  std::memcpy(p, &v, sizeof v);
}
void store_floats(uint16_t* p, const Floats& v) {
  const __m256i upper = _mm256_srai_epi32((__m256i)v, 16);
  _mm_storeu_si128(
      reinterpret_cast<__m128i*>(p),
      _mm_packs_epi32(_mm256_castsi256_si128(upper), _mm256_extracti128_si256(upper, 1)));
}

}  // namespace

#include "core/window_max_pool_kernels.inc"

}  // namespace convoy::window_pool
