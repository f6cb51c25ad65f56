// The rule in core/implementation_choice.h, checked on whatever CPU (and ONEDNN_MAX_CPU_ISA) the
// suite runs on: the SSE4.1 max-pooling kernel replaces oneDNN's AVX/AVX2 first choice when it is
// offered, and oneDNN's choice stands otherwise. (CI's second run, held to an older instruction
// set, is where the rule fires on AVX-512 machines; the layer tests then check its results.)
#include "core/implementation_choice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace convoy {
namespace {

TEST(ImplementationChoice, MaxPoolingForTrainingTakesSse41OverAvx2) {
  using tag = dnnl::memory::format_tag;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  for (const tag layout : {tag::aBcd8b, tag::aBcd16b, tag::nchw}) {
    const dnnl::memory::desc src({8, 32, 12, 12}, dnnl::memory::data_type::f32, layout);
    const dnnl::memory::desc dst({8, 32, 6, 6}, dnnl::memory::data_type::f32, tag::any);
    const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_training,
                                           dnnl::algorithm::pooling_max, src, dst, {2, 2}, {2, 2},
                                           {0, 0}, {0, 0});
    dnnl::pooling_forward::primitive_desc all(desc, engine);
    const std::string first = all.impl_info_str();
    std::vector<std::string> offered;
    do offered.push_back(all.impl_info_str());
    while (all.next_impl());
    const bool sse41_offered =
        std::find(offered.begin(), offered.end(), "jit:sse41") != offered.end();
    const std::string expected =
        (first == "jit:avx2" || first == "jit:avx") && sse41_offered ? "jit:sse41" : first;
    EXPECT_EQ(max_pooling_forward_for_training(desc, {}, engine).impl_info_str(), expected)
        << "layout " << static_cast<int>(layout) << ", oneDNN's first choice " << first;
  }
}

}  // namespace
}  // namespace convoy
