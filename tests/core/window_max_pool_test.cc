// WindowMaxPool against oneDNN's own max pooling (and, for the fused ReLU, oneDNN's pooling
// followed by its ReLU): outputs and input gradients must be bitwise equal, in every layout the
// kernel takes, with ties (values drawn from a few levels), sizes that leave rows and columns
// uncovered, padded channel blocks, and windows other than 2x2; in f32 and in bf16. The bf16
// kernel is held to oneDNN's f32 pooling of the same values (every value drawn is exact in bf16,
// and a maximum is one of them), which every CPU has: oneDNN pools bf16 only on AVX-512 ones.
#include "core/window_max_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "core/aligned_buffer.h"
#include "core/random.h"
#include "core/tensor.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using tag = dnnl::memory::format_tag;

struct Case {
  Dims dims;  // N, C, H, W
  tag layout;
  int64_t kernel;
  bool relu;
  dnnl::memory::data_type type = dnnl::memory::data_type::f32;
};

// Values from a handful of levels around 0 (all exact in bf16), so windows have ties and
// all-negative maxima, and now and then -0, or (with `nonfinite`) NaN or an infinity. (Gradients
// stay finite: where the ReLU cut its input, oneDNN's ReLU backward multiplies by 0 and so passes a
// NaN or infinite gradient on as NaN, while the kernel passes 0, as PyTorch's ReLU does.)
std::vector<float> levels(int64_t n, uint64_t seed, bool nonfinite) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float special[] = {-0.f, std::numeric_limits<float>::quiet_NaN(), kInf, -kInf};
  for (float& x : v) {
    x = static_cast<float>(static_cast<int>(rng.below(7)) - 3) * 0.5f;
    if (rng.below(50) == 0) x = special[nonfinite ? rng.below(4) : 0];
  }
  return v;
}

// Bitwise equality (NaN equals NaN, -0 differs from +0).
::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& want,
                                     const char* what) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << what << " " << i << ": " << got[i] << " where oneDNN has " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

class WindowMaxPoolTest : public ::testing::TestWithParam<Case> {};

TEST_P(WindowMaxPoolTest, EqualsOneDnnBitwise) {
  const Case& c = GetParam();
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc src_desc(c.dims, c.type, c.layout);
  const Window window{{c.kernel, c.kernel}, {c.kernel, c.kernel}, {0, 0}};
  const std::optional<WindowMaxPool> pool = WindowMaxPool::create(src_desc, window);
  ASSERT_TRUE(pool.has_value());
  const Dims out_dims{c.dims[0], c.dims[1], c.dims[2] / c.kernel, c.dims[3] / c.kernel};
  ASSERT_EQ(pool->dst_desc(), dnnl::memory::desc(out_dims, c.type, c.layout));

  const std::vector<float> x = levels(element_count(c.dims), 7, /*nonfinite=*/true);
  const std::vector<float> dy = levels(element_count(out_dims), 8, /*nonfinite=*/false);
  Tensor src_t(src_desc, engine), diff_dst_t(pool->dst_desc(), engine);
  src_t.copy_from_plain(x);
  diff_dst_t.copy_from_plain(dy);

  // oneDNN in f32: pooling (then ReLU) forward; (ReLU backward on the pooled values, then)
  // pooling backward.
  const Dims padding_r = window.right_padding({c.dims[2], c.dims[3]});
  const dnnl::memory::desc ref_desc(c.dims, dnnl::memory::data_type::f32, c.layout);
  Tensor ref_src_t(ref_desc, engine),
      ref_diff_dst_t({out_dims, ref_desc.data_type(), c.layout}, engine);
  ref_src_t.copy_from_plain(x);
  ref_diff_dst_t.copy_from_plain(dy);
  const dnnl::memory ref_src = ref_src_t.memory(), ref_diff_dst = ref_diff_dst_t.memory();
  dnnl::pooling_forward::desc fd(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                 ref_desc, ref_diff_dst.get_desc(), window.stride, window.kernel,
                                 window.pad, padding_r);
  dnnl::pooling_forward::primitive_desc fpd(fd, engine);
  dnnl::memory ref_pooled(fpd.dst_desc(), engine), workspace(fpd.workspace_desc(), engine);
  dnnl::pooling_forward(fpd).execute(
      stream,
      {{DNNL_ARG_SRC, ref_src}, {DNNL_ARG_DST, ref_pooled}, {DNNL_ARG_WORKSPACE, workspace}});
  dnnl::memory ref_dst = ref_pooled, ref_diff_pooled = ref_diff_dst;
  if (c.relu) {
    dnnl::eltwise_forward::desc rd(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu,
                                   fpd.dst_desc(), 0.f);
    dnnl::eltwise_forward::primitive_desc rpd(rd, engine);
    ref_dst = dnnl::memory(fpd.dst_desc(), engine);
    dnnl::eltwise_forward(rpd).execute(stream,
                                       {{DNNL_ARG_SRC, ref_pooled}, {DNNL_ARG_DST, ref_dst}});
    dnnl::eltwise_backward::desc rb(dnnl::algorithm::eltwise_relu, fpd.dst_desc(), fpd.dst_desc(),
                                    0.f);
    dnnl::eltwise_backward::primitive_desc rbpd(rb, engine, rpd);
    ref_diff_pooled = dnnl::memory(fpd.dst_desc(), engine);
    dnnl::eltwise_backward(rbpd).execute(stream, {{DNNL_ARG_SRC, ref_pooled},
                                                  {DNNL_ARG_DIFF_DST, ref_diff_dst},
                                                  {DNNL_ARG_DIFF_SRC, ref_diff_pooled}});
  }
  dnnl::pooling_backward::desc bd(dnnl::algorithm::pooling_max, ref_desc, fpd.dst_desc(),
                                  window.stride, window.kernel, window.pad, padding_r);
  dnnl::pooling_backward::primitive_desc bpd(bd, engine, fpd);
  dnnl::memory ref_diff_src(bpd.diff_src_desc(), engine);
  dnnl::pooling_backward(bpd).execute(stream, {{DNNL_ARG_DIFF_DST, ref_diff_pooled},
                                               {DNNL_ARG_DIFF_SRC, ref_diff_src},
                                               {DNNL_ARG_WORKSPACE, workspace}});
  stream.wait();

  // The kernel, at every vector width this CPU runs (up to the channels it takes at once).
  // Channels taken at once: the layout's block, or in nhwc 16 where they divide the channels.
  const int lanes = c.layout == tag::nChw16c  ? 16
                    : c.layout == tag::nChw8c ? 8
                    : c.dims[1] % 16 == 0     ? 16
                                              : 8;
  EXPECT_EQ(pool->width(), std::min(WindowMaxPool::widest_width(), lanes));
  for (int width = 4; width <= std::min(WindowMaxPool::widest_width(), lanes); width *= 2) {
    SCOPED_TRACE(::testing::Message() << "width " << width);
    const std::optional<WindowMaxPool> at = WindowMaxPool::create(src_desc, window, width);
    ASSERT_TRUE(at.has_value());
    ASSERT_EQ(at->width(), width);
    Tensor dst(at->dst_desc(), engine), diff_src(src_desc, engine);
    std::memset(diff_src.memory().get_data_handle(), 0x7f, diff_src.bytes());  // all written?
    AlignedBuffer<uint8_t> argmax(at->argmax_bytes());
    at->forward(src_t.memory().get_data_handle(), dst.memory().get_data_handle(), argmax.data(),
                c.relu);
    at->backward(diff_dst_t.memory().get_data_handle(), argmax.data(),
                 diff_src.memory().get_data_handle());
    EXPECT_TRUE(same_bits(dst.to_plain(), Tensor(ref_dst).to_plain(), "output"));
    EXPECT_TRUE(same_bits(diff_src.to_plain(), Tensor(ref_diff_src).to_plain(), "input gradient"));
  }
}

// The widest kernels run where the CPU has their instructions (the witness: the kernel's view of
// the CPU, /proc/cpuinfo), and no wider than ONEDNN_MAX_CPU_ISA holds oneDNN.
TEST(WindowMaxPool, RunsTheWidestVectorsTheCpuHas) {
  const std::string cpuinfo = testing::read_file("/proc/cpuinfo");
  const auto has = [&](const std::string& flag) {
    return cpuinfo.find(" " + flag + " ") != std::string::npos ||
           cpuinfo.find(" " + flag + "\n") != std::string::npos;
  };
  const int expected = has("avx512f") && has("avx512bw") && has("avx512dq") && has("avx512vl") ? 16
                       : has("avx2")                                                           ? 8
                                                                                               : 4;
  if (const char* held = std::getenv("ONEDNN_MAX_CPU_ISA")) {
    const std::string isa = held;
    const int cap = isa.starts_with("AVX512_CORE") || isa == "ALL"         ? 16
                    : isa.starts_with("AVX2") || isa.starts_with("AVX512") ? 8
                                                                           : 4;
    EXPECT_EQ(WindowMaxPool::widest_width(), std::min(expected, cap)) << isa;
    return;
  }
  EXPECT_EQ(WindowMaxPool::widest_width(), expected);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, WindowMaxPoolTest,
    ::testing::Values(Case{{4, 32, 28, 28}, tag::nChw16c, 2, false},
                      Case{{4, 32, 28, 28}, tag::nChw16c, 2, true},
                      Case{{3, 20, 7, 9}, tag::nChw16c, 2, true},  // padded block, uncovered
                      Case{{2, 16, 9, 8}, tag::nChw8c, 3, true},
                      Case{{2, 6, 6, 6}, tag::nChw8c, 2, false},  // 6 channels in a block of 8
                      Case{{2, 48, 7, 7}, tag::nhwc, 2, true},
                      Case{{2, 24, 8, 5}, tag::nhwc, 2, false},
                      Case{{4, 32, 28, 28}, tag::nChw16c, 2, true, dnnl::memory::data_type::bf16},
                      Case{{3, 20, 7, 9}, tag::nChw16c, 2, false, dnnl::memory::data_type::bf16},
                      Case{{2, 16, 9, 8}, tag::nChw8c, 3, true, dnnl::memory::data_type::bf16},
                      Case{{2, 64, 14, 14}, tag::nhwc, 2, true, dnnl::memory::data_type::bf16},
                      Case{{2, 24, 8, 5}, tag::nhwc, 2, false, dnnl::memory::data_type::bf16}));

TEST(WindowMaxPool, LeavesOtherCasesToOneDnn) {
  const Dims dims{2, 16, 8, 8};
  const auto f32 = dnnl::memory::data_type::f32;
  const Window two{{2, 2}, {2, 2}, {0, 0}};
  EXPECT_FALSE(WindowMaxPool::create({dims, f32, tag::nchw}, two));  // channels not innermost
  EXPECT_FALSE(WindowMaxPool::create({{2, 12, 8, 8}, f32, tag::nhwc}, two));  // 12 % 8
  EXPECT_FALSE(WindowMaxPool::create({dims, dnnl::memory::data_type::f16, tag::nChw16c}, two));
  EXPECT_FALSE(WindowMaxPool::create({dims, f32, tag::nChw16c}, {{3, 3}, {2, 2}, {0, 0}}));
  EXPECT_FALSE(WindowMaxPool::create({dims, f32, tag::nChw16c}, {{2, 2}, {2, 2}, {1, 1}}));
  EXPECT_FALSE(WindowMaxPool::create({{2, 16, 8}, f32, tag::nCw16c}, {{2}, {2}, {0}}));
  EXPECT_TRUE(WindowMaxPool::create({dims, f32, tag::nChw16c}, two));
}

}  // namespace
}  // namespace convoy
