// Proof that ThreadSanitizer's suppressions (default_options.cc) leave convoy's own races visible:
// two threads write the same gradient tensor without synchronization, as a reducer that read a
// bucket while backward still wrote it would. The tensor's memory comes from oneDNN (every
// Tensor's does), the library whose internals the suppressions quiet. ctest expects the race to be
// reported (built and run only with CONVOY_SANITIZE=thread).
#include <thread>

#include "core/tensor.h"

int main() {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  convoy::Tensor gradient(
      dnnl::memory::desc({64}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a), engine);
  float* values = gradient.data();
  std::thread backward([values] {
    for (int i = 0; i < 64; ++i) values[i] = 1.f;
  });
  std::thread reducer([values] {
    for (int i = 0; i < 64; ++i) values[i] *= 0.5f;
  });
  backward.join();
  reducer.join();
  return 0;
}
