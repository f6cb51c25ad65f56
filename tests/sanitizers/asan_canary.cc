// Proof that the AddressSanitizer/UndefinedBehaviorSanitizer build (CONVOY_SANITIZE=
// address,undefined) reports convoy's kind of defects, with the options and suppressions every
// program carries (default_options.cc), and that a report ends the program with a failure
// (check_canary.cmake runs each case and checks both):
//   asan_canary heap-overflow     writes one float past a tensor's oneDNN-allocated memory
//   asan_canary leak              loses the only pointer to a 320-byte heap block (reported at
//                                 exit by LeakSanitizer)
//   asan_canary signed-overflow   adds 1 to INT_MAX
// After the overflows the program prints "canary survived" and exits 0: that must never be seen.
// The leak is reported at exit, which must then fail.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/tensor.h"

namespace {

void* volatile sink = nullptr;  // volatile: the compiler must keep the allocation and its loss

[[gnu::noinline]] void lose_a_block() {
  sink = std::malloc(320);
  sink = nullptr;
}

// From outside the program, so that the compiler cannot see the defects coming.
volatile int one = 1;

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "heap-overflow") {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    convoy::Tensor t(
        dnnl::memory::desc({64}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a),
        engine);
    float* values = t.data();
    values[63 + one] = 1.f;
  } else if (what == "leak") {
    lose_a_block();
    return 0;
  } else if (what == "signed-overflow") {
    const int sum = INT_MAX + one;
    std::printf("%d\n", sum);
  } else {
    std::fprintf(stderr, "usage: asan_canary heap-overflow|leak|signed-overflow\n");
    return 2;
  }
  std::printf("canary survived\n");
  return 0;
}
