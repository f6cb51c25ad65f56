// Where convoy overrides oneDNN's first choice of implementation, and why. oneDNN ranks its
// implementations by instruction set; on some CPUs a lower-ranked one is much faster. Each rule
// here is deterministic (no timing at run time), so every run and every rank picks the same code.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace convoy {

// Max pooling for training must also write the argmax workspace. oneDNN 2.6's AVX and AVX2
// pooling kernels do that 6 to 35 times slower than its SSE4.1 kernel on the same 8-channel
// blocked layout, while the pooling is memory-bound and gains little from wider vectors. Measured
// (tests/bench/pooling_choice_bench, 2 threads, 2x2 windows, forward for training):
//   AMD EPYC (AVX2):                 64x32x28x28 2.66 ms against 0.41 ms; 64x6x28x28 1.78 / 0.09
//   Intel Xeon (AMX) held to AVX2:   64x32x28x28 3.90 ms against 0.36 ms; 64x6x28x28 2.72 / 0.08;
//                                    64x64x14x14 2.20 / 0.22
// So whenever oneDNN's first choice is its AVX or AVX2 kernel, the forward pass takes the SSE4.1
// kernel if oneDNN offers it; the backward pass (which reads the same workspace layout) keeps
// oneDNN's choice. On AVX-512 CPUs oneDNN picks its AVX-512 kernel for the 16-channel layout and
// offers no SSE4.1 one: its choice stands (0.98 ms for 64x32x28x28 on that Xeon).
dnnl::pooling_forward::primitive_desc max_pooling_forward_for_training(
    const dnnl::pooling_forward::desc& desc, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine);

}  // namespace convoy
