// NumPy .npy files through read_npy, as float data and as integer labels.
#include <cstdlib>

#include "core/npy_reader.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convoy::fuzz::write_scratch(
      "input.npy", std::string_view(reinterpret_cast<const char*>(data), size));
  for (const convoy::NpyKind kind : {convoy::NpyKind::kFloat, convoy::NpyKind::kInteger}) {
    convoy::fuzz::refused_or_accepted([&] {
      const convoy::NpyArray array = convoy::read_npy(path, kind);
      const size_t held =
          kind == convoy::NpyKind::kFloat ? array.values.size() : array.integers.size();
      if (static_cast<int64_t>(held) != array.count()) std::abort();  // shape and data disagree
    });
  }
  return 0;
}
