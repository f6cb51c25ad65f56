// Where convoy overrides oneDNN's first choice of implementation, and why. oneDNN ranks its
// implementations by instruction set; on some CPUs a lower-ranked one is much faster. Each rule
// here is deterministic (no timing at run time), so every run and every rank picks the same code.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace convoy {

// True on CPUs whose vendor string is "AuthenticAMD".
bool cpu_is_amd();

// Max pooling for training must also write the argmax workspace. On AMD Zen, oneDNN 2.6's AVX
// and AVX2 pooling kernels do that 6 to 20 times slower than its SSE4.1 kernel (measured on an
// AMD EPYC: 64x32x28x28, 2x2 windows, 2 threads: 2.66 ms against 0.41 ms; 64x6x28x28: 1.78 ms
// against 0.09 ms), while the pooling is memory-bound and gains little from wider vectors. So on
// AMD CPUs the forward pass takes the SSE4.1 kernel when oneDNN offers it; the backward pass
// (which reads the same workspace layout) keeps oneDNN's choice. Elsewhere: oneDNN's choice.
dnnl::pooling_forward::primitive_desc max_pooling_forward_for_training(
    const dnnl::pooling_forward::desc& desc, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine);

}  // namespace convoy
