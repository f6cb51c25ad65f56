#include "core/precision.h"

#include <fmt/format.h>

#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "core/error.h"

namespace convoy {

Precision parse_precision(const std::string& text, const std::string& where) {
  if (text == "fp32") return Precision::kFloat32;
  if (text == "bf16") return Precision::kBFloat16;
  throw Error::invalid_input(
      fmt::format("{}: precision must be fp32 or bf16, got '{}'", where, text));
}

const char* precision_name(Precision precision) {
  return precision == Precision::kBFloat16 ? "bf16" : "fp32";
}

dnnl::memory::data_type compute_type(Precision precision) {
  return precision == Precision::kBFloat16 ? dnnl::memory::data_type::bf16
                                           : dnnl::memory::data_type::f32;
}

namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "SSE4.1";
    case dnnl::cpu_isa::avx:
      return "AVX";
    case dnnl::cpu_isa::avx2:
      return "AVX2";
    case dnnl::cpu_isa::avx512_core:
      return "AVX-512";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "AVX-512 with VNNI";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "AVX-512 with AVX512-BF16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "AMX";
    default:
      return "an instruction set without AVX-512";
  }
}

}  // namespace

std::string precision_unsupported(Precision precision) {
  if (precision == Precision::kFloat32) return {};
  // oneDNN's ISA values are sets of feature bits: bf16 support is a subset test.
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto needed = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  if ((effective & needed) == needed) return {};
  return fmt::format(
      "bf16 needs a CPU with AVX512-BF16 or AMX; this one runs oneDNN at {} (see "
      "ONEDNN_MAX_CPU_ISA)",
      isa_name(dnnl::get_effective_cpu_isa()));
}

std::string cpu_vendor() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned max_leaf = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &max_leaf, &ebx, &ecx, &edx) == 0) return {};
  char vendor[12];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return std::string(vendor, sizeof vendor);
#else
  return {};
#endif
}

Precision preferred_precision() {
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto amx = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
  if ((effective & amx) == amx) return Precision::kBFloat16;
  if (precision_unsupported(Precision::kBFloat16).empty() && cpu_vendor() == "AuthenticAMD") {
    return Precision::kBFloat16;
  }
  return Precision::kFloat32;
}

void require_precision(Precision precision, const std::string& where) {
  const std::string reason = precision_unsupported(precision);
  if (!reason.empty()) throw Error::invalid_input(fmt::format("{}: {}", where, reason));
}

}  // namespace convoy
