// Precision: the number format convolutions and dense layers compute in.
//
// kFloat32 computes everything in fp32. kBFloat16 is mixed precision as PyTorch's CPU autocast
// does it: convolutions and dense layers read bf16 inputs and weights (oneDNN runs them on AMX or
// AVX512-BF16 and accumulates in fp32), activations between layers are stored in bf16, and
// gradients flowing back between layers too; the master weights, their gradients, the all-reduce,
// the optimizer, the loss and batch norm's statistics stay fp32 (weighted_layer.h says how). Where
// oneDNN has no fast bf16 kernel, a layer works in f32 and its output is f32 (batch norm after a
// dense layer; dropout). A checkpoint holds the fp32 master weights, so checkpoints of either
// precision are the same file.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <string>

namespace convoy {

enum class Precision { kFloat32, kBFloat16 };

// "fp32" or "bf16"; anything else throws Error::invalid_input naming `where`.
Precision parse_precision(const std::string& text, const std::string& where);
const char* precision_name(Precision precision);
// The data type activations and the compute copies of weights use.
dnnl::memory::data_type compute_type(Precision precision);

// Empty when this CPU (as oneDNN is allowed to use it: ONEDNN_MAX_CPU_ISA) computes in
// `precision` natively; otherwise why not, naming the missing CPU feature. bf16 needs
// AVX512-BF16 (or AMX): oneDNN would emulate it on other AVX-512 CPUs, slower than fp32, and
// would fall back to reference code on AVX2.
std::string precision_unsupported(Precision precision);
// Throws Error::invalid_input with that reason (prefixed by `where`) when unsupported.
void require_precision(Precision precision, const std::string& where);
// The faster precision here (README, Mixed precision): bf16 where the CPU has AMX, or AVX512-BF16
// and is AMD's (measured on Zen 5; Zen 4 not measured); fp32 elsewhere. On an AMD EPYC of family 26
// fashion_cnn's step was 1.66x faster in bf16; on an Intel AVX512-BF16 CPU without AMX (measured as
// a Xeon held there by ONEDNN_MAX_CPU_ISA) oneDNN 2.6's bf16 convolutions were slower than its fp32
// ones.
Precision preferred_precision();

// The CPU's vendor string from CPUID ("GenuineIntel", "AuthenticAMD", ...).
std::string cpu_vendor();

}  // namespace convoy
