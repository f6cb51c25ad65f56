// Proof that the AddressSanitizer/UndefinedBehaviorSanitizer build (CONVOY_SANITIZE=
// address,undefined) reports convoy's kind of defects with the options and suppressions every
// program carries (default_options.cc): ctest runs each case and expects the sanitizer's report.
//   asan_canary overflow   writes one float past a tensor's oneDNN-allocated memory
//   asan_canary leak       loses the only pointer to a heap block (LeakSanitizer, at exit)
//   asan_canary overflow-int ARG   adds ARG to INT32_MAX (UndefinedBehaviorSanitizer)
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/tensor.h"

namespace {

void* volatile sink = nullptr;  // volatile: the compiler must keep the allocation and its loss

[[gnu::noinline]] void lose_a_block() {
  sink = std::malloc(320);
  sink = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "overflow") {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    convoy::Tensor t(
        dnnl::memory::desc({64}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a),
        engine);
    float* values = t.data();
    const int index = 64 + (argc > 2 ? std::atoi(argv[2]) : 0);
    values[index] = 1.f;
    return 0;
  }
  if (what == "leak") {
    lose_a_block();
    return 0;
  }
  if (what == "overflow-int") {
    const int add = argc > 2 ? std::atoi(argv[2]) : 1;
    const int sum = INT_MAX + add;
    return sum == 0 ? 1 : 0;
  }
  return 2;
}
