// CI runs the suite twice: as this CPU allows, and with ONEDNN_MAX_CPU_ISA set one level lower
// (.ci/run). This test proves that the second run really ran oneDNN at the lower level, and logs
// the level each run used.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

namespace convoy {
namespace {

const std::map<std::string, dnnl::cpu_isa> kLevels = {
    {"SSE41", dnnl::cpu_isa::sse41},
    {"AVX", dnnl::cpu_isa::avx},
    {"AVX2", dnnl::cpu_isa::avx2},
    {"AVX512_CORE", dnnl::cpu_isa::avx512_core},
    {"AVX512_CORE_VNNI", dnnl::cpu_isa::avx512_core_vnni},
    {"AVX512_CORE_BF16", dnnl::cpu_isa::avx512_core_bf16},
    {"AVX512_CORE_AMX", dnnl::cpu_isa::avx512_core_amx},
};

// The implementation oneDNN picks for a 3x3 convolution with 32 channels.
std::string convolution_implementation() {
  using tag = dnnl::memory::format_tag;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const auto any = [](dnnl::memory::dims d) {
    return dnnl::memory::desc(d, dnnl::memory::data_type::f32, tag::any);
  };
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any({64, 32, 14, 14}),
      any({32, 32, 3, 3}), any({32}), any({64, 32, 14, 14}), {1, 1}, {1, 1}, {1, 1});
  return dnnl::convolution_forward::primitive_desc(desc, engine).impl_info_str();
}

TEST(CpuIsa, OneDnnRunsAtTheRequestedLevel) {
  const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const std::string implementation = convolution_implementation();
  std::string name = "(unnamed)";
  for (const auto& [n, isa] : kLevels) {
    if (static_cast<unsigned>(isa) == effective) name = n;
  }
  RecordProperty("effective_isa", name);
  RecordProperty("convolution_implementation", implementation);
  std::printf("oneDNN effective ISA: %s; a 3x3 convolution runs on %s\n", name.c_str(),
              implementation.c_str());

  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (cap == nullptr || *cap == '\0' || std::string(cap) == "ALL") {
    GTEST_SKIP() << "ONEDNN_MAX_CPU_ISA is not set: oneDNN uses all of this CPU (" << name << ")";
  }
  const auto level = kLevels.find(cap);
  ASSERT_NE(level, kLevels.end()) << "ONEDNN_MAX_CPU_ISA=" << cap
                                  << " is not a level this test knows";
  // oneDNN's ISA values are sets of feature bits: the effective set must lie within the cap.
  EXPECT_EQ(effective & ~static_cast<unsigned>(level->second), 0u)
      << "ONEDNN_MAX_CPU_ISA=" << cap << " but oneDNN runs at " << name;
  if (level->second == dnnl::cpu_isa::avx2 || level->second == dnnl::cpu_isa::sse41 ||
      level->second == dnnl::cpu_isa::avx) {
    EXPECT_EQ(implementation.find("avx512"), std::string::npos) << implementation;
  }
}

}  // namespace
}  // namespace convoy
