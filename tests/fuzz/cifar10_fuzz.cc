// CIFAR-10's binary test batch (label byte + 3,072 pixel bytes per record) through load_cifar10.
#include <cstdlib>

#include "core/cifar10.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convoy::fuzz::write_scratch(
      "test_batch.bin", std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string dir = path.substr(0, path.rfind('/'));
  convoy::fuzz::refused_or_accepted([&] {
    const convoy::Dataset set = convoy::load_cifar10(dir, convoy::Split::kTest);
    if (set.count() * 3073 != static_cast<int64_t>(size) ||
        set.pixels.size() != set.labels.size() * 3072) {
      std::abort();  // accepted, but not every record read
    }
    for (const int32_t label : set.labels) {
      if (label < 0 || label >= set.num_classes()) std::abort();  // the loss would index past
    }
  });
  return 0;
}
