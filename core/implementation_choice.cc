#include "implementation_choice.h"

#include <cpuid.h>

#include <cstring>
#include <string_view>

namespace convoy {

bool cpu_is_amd() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return std::string_view(vendor) == "AuthenticAMD";
}

dnnl::pooling_forward::primitive_desc max_pooling_forward_for_training(
    const dnnl::pooling_forward::desc& desc, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine) {
  dnnl::pooling_forward::primitive_desc chosen(desc, attr, engine);
  const std::string_view first = chosen.impl_info_str();
  if (!cpu_is_amd() || (first != "jit:avx2" && first != "jit:avx")) return chosen;
  dnnl::pooling_forward::primitive_desc candidate(desc, attr, engine);
  do {
    if (std::string_view(candidate.impl_info_str()) == "jit:sse41") return candidate;
  } while (candidate.next_impl());
  return chosen;
}

}  // namespace convoy
