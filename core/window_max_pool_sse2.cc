// WindowMaxPool's loops in vectors of 4 floats (SSE2: every x86-64 CPU; other CPUs take plain
// loops). See core/window_max_pool_kernels.h.
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <cstring>

#include "core/window_max_pool_kernels.h"

namespace convoy::window_pool {
namespace {

// 4 channels at a time through GCC's vector extensions (also clang's), in vectors of 128 bits,
// which every x86-64 CPU has: wider ones are lowered to scalar code when the compiler targets the
// baseline (window_max_pool_avx2.cc and _avx512.cc are built for wider ones).
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

}  // namespace

#include "core/window_max_pool_kernels.inc"

}  // namespace convoy::window_pool
