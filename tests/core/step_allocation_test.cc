// A training step allocates no memory in convoy's code: after the model is built and one warm-up
// step has run, further steps (batch loading, forward, loss, backward, SGD update) make no call to
// malloc and friends outside the runtimes. The runtimes' own small allocations are counted apart:
// oneDNN 2.6's dnnl_primitive_execute builds an argument map on every call, and libgomp allocates a
// team descriptor for every parallel region (oneDNN's and the SGD update's). The test binary
// interposes the C allocator, dnnl_primitive_execute and GOMP_parallel to tell them apart.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <oneapi/dnnl/dnnl.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "core/batch_loader.h"
#include "core/model.h"
#include "core/shuffle.h"
#include "core/trainer.h"
#include "testing/layer_harness.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<int> inside_runtime{0};  // primitive executions or parallel regions in progress
std::atomic<long> ours{0};           // allocations outside them
std::atomic<long> theirs{0};         // allocations inside them
void count() {
  if (!counting.load(std::memory_order_relaxed)) return;
  (inside_runtime.load(std::memory_order_relaxed) > 0 ? theirs : ours).fetch_add(1);
}
using Execute = dnnl_status_t (*)(const_dnnl_primitive_t, dnnl_stream_t, int,
                                  const dnnl_exec_arg_t*);
Execute real_execute = nullptr;
using Parallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
Parallel real_parallel = nullptr;
}  // namespace

extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
int posix_memalign(void** p, size_t alignment, size_t n) {
  count();
  *p = __libc_memalign(alignment, n);
  return *p == nullptr ? ENOMEM : 0;
}
void* aligned_alloc(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
void* memalign(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
dnnl_status_t dnnl_primitive_execute(const_dnnl_primitive_t primitive, dnnl_stream_t stream,
                                     int nargs, const dnnl_exec_arg_t* args) {
  inside_runtime.fetch_add(1);
  const dnnl_status_t status = real_execute(primitive, stream, nargs, args);
  inside_runtime.fetch_sub(1);
  return status;
}
void GOMP_parallel(void (*fn)(void*), void* data, unsigned threads, unsigned flags) {
  inside_runtime.fetch_add(1);
  real_parallel(fn, data, threads, flags);
  inside_runtime.fetch_sub(1);
}
}

namespace convoy {
namespace {

TEST(TrainingStep, AllocatesNothingInConvoy) {
  real_execute = reinterpret_cast<Execute>(dlsym(RTLD_NEXT, "dnnl_primitive_execute"));
  real_parallel = reinterpret_cast<Parallel>(dlsym(RTLD_NEXT, "GOMP_parallel"));
  ASSERT_NE(real_execute, nullptr);
  ASSERT_NE(real_parallel, nullptr);
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  // fashion_bn: convolutions, batch norm (running statistics), dropout (hand-written ops).
  Model model(load_model_spec("fashion_bn"), 16, engine, Model::Mode::kTrain, "fashion_bn");
  model.initialize(1);
  Optimizer optimizer(model.parameters(),
                      {.learning_rate = 0.01f, .momentum = 0.9f, .weight_decay = 1e-4f});
  Trainer trainer(model, optimizer, stream);
  Dataset data;
  data.name = "synthetic";
  data.shape = {1, {28, 28}};
  data.class_names = class_names_for("mnist");
  data.samples = testing::random_values(160 * 784, 1, 0.f, 1.f);
  for (int i = 0; i < 160; ++i) data.labels.push_back(i % 10);
  BatchLoader loader(data, 16);
  loader.start(epoch_permutation(160, 1, 0), false);
  trainer.step(*loader.next());  // warm-up: first-touch work in the libraries

  counting = true;
  for (int i = 0; i < 8; ++i) trainer.step(*loader.next());
  counting = false;
  EXPECT_EQ(ours.load(), 0) << "allocations in convoy's code during 8 training steps";
  std::printf("8 steps: %ld allocations in convoy, %ld inside oneDNN and libgomp\n", ours.load(),
              theirs.load());
  EXPECT_GT(theirs.load(), 0);  // the interposition sees the runtimes' own

  // And it sees ours: a deliberate allocation is counted.
  counting = true;
  void* p = std::malloc(64);
  counting = false;
  std::free(p);
  EXPECT_EQ(ours.load(), 1);
}

}  // namespace
}  // namespace convoy
