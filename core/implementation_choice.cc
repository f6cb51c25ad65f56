#include "core/implementation_choice.h"

#include <string_view>

namespace convoy {

dnnl::pooling_forward::primitive_desc max_pooling_forward_for_training(
    const dnnl::pooling_forward::desc& desc, const dnnl::primitive_attr& attr,
    const dnnl::engine& engine) {
  dnnl::pooling_forward::primitive_desc chosen(desc, attr, engine);
  const std::string_view first = chosen.impl_info_str();
  if (first != "jit:avx2" && first != "jit:avx") return chosen;
  dnnl::pooling_forward::primitive_desc candidate(desc, attr, engine);
  do {
    if (std::string_view(candidate.impl_info_str()) == "jit:sse41") return candidate;
  } while (candidate.next_impl());
  return chosen;
}

}  // namespace convoy
