// Deterministic random numbers. The standard library's engines are fully specified, but its
// distributions are not (libstdc++ and libc++ give different normal_distribution values), so the
// distributions convoy needs for reproducible runs are defined here.
#pragma once

#include <cstdint>
#include <random>

namespace convoy {

// Combines a seed with a stream index (a parameter index, an epoch) into an independent seed
// (SplitMix64 finalizer over both words).
uint64_t mix_seed(uint64_t seed, uint64_t stream);

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  uint64_t next() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0, without modulo bias.
  uint64_t below(uint64_t n);
  // Standard normal (Box-Muller; one value per pair of uniforms).
  double normal();

 private:
  std::mt19937_64 engine_;
};

}  // namespace convoy
