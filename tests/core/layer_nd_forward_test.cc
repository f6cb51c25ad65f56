// Convolution and pooling in 1, 2 and 3 spatial dimensions against one naive loop written here
// for any rank: every output position sums (or takes the max or mean of) its window over a
// multi-index, so the same reference checks Conv1D, Conv2D and Conv3D.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "testing/layer_harness.h"

namespace convoy {
namespace {

using testing::LayerHarness;
using testing::random_values;

// Row-major strides of `extents`.
std::vector<int64_t> strides_of(const std::vector<int64_t>& extents) {
  std::vector<int64_t> s(extents.size(), 1);
  for (size_t i = extents.size(); i-- > 1;) s[i - 1] = s[i] * extents[i];
  return s;
}

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// Advances a multi-index over `extents`; false after the last one.
bool next_index(std::vector<int64_t>& index, const std::vector<int64_t>& extents) {
  for (size_t i = index.size(); i-- > 0;) {
    if (++index[i] < extents[i]) return true;
    index[i] = 0;
  }
  return false;
}

struct NdCase {
  std::string name;
  int64_t batch, channels;
  std::vector<int64_t> in, kernel, stride, pad;
};

std::vector<int64_t> output_extents(const NdCase& c) {
  std::vector<int64_t> out(c.in.size());
  for (size_t d = 0; d < c.in.size(); ++d) {
    out[d] = (c.in[d] + 2 * c.pad[d] - c.kernel[d]) / c.stride[d] + 1;
  }
  return out;
}

// Visits the in-bounds input offsets (within one channel plane) of the window at output `o`.
template <typename F>
void for_window(const NdCase& c, const std::vector<int64_t>& o, F&& visit) {
  const std::vector<int64_t> in_strides = strides_of(c.in);
  std::vector<int64_t> k(c.kernel.size(), 0);
  do {
    int64_t offset = 0;
    bool inside = true;
    for (size_t d = 0; d < k.size(); ++d) {
      const int64_t i = o[d] * c.stride[d] - c.pad[d] + k[d];
      if (i < 0 || i >= c.in[d]) inside = false;
      offset += i * in_strides[d];
    }
    visit(inside, offset, k);
  } while (next_index(k, c.kernel));
}

std::vector<float> reference_conv(const NdCase& c, int64_t filters, const std::vector<float>& src,
                                  const std::vector<float>& w, const std::vector<float>& b) {
  const std::vector<int64_t> out = output_extents(c);
  const int64_t in_plane = product(c.in), out_plane = product(out), kvol = product(c.kernel);
  const std::vector<int64_t> k_strides = strides_of(c.kernel);
  std::vector<float> dst(static_cast<size_t>(c.batch * filters * out_plane));
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t f = 0; f < filters; ++f) {
      std::vector<int64_t> o(out.size(), 0);
      int64_t position = 0;
      do {
        double acc = b[static_cast<size_t>(f)];
        for (int64_t ch = 0; ch < c.channels; ++ch) {
          for_window(c, o, [&](bool inside, int64_t offset, const std::vector<int64_t>& k) {
            if (!inside) return;
            int64_t kk = 0;
            for (size_t d = 0; d < k.size(); ++d) kk += k[d] * k_strides[d];
            acc += double(src[static_cast<size_t>((n * c.channels + ch) * in_plane + offset)]) *
                   w[static_cast<size_t>((f * c.channels + ch) * kvol + kk)];
          });
        }
        dst[static_cast<size_t>((n * filters + f) * out_plane + position++)] =
            static_cast<float>(acc);
      } while (next_index(o, out));
    }
  return dst;
}

enum class PoolKind { kMax, kAvgInclude, kAvgExclude };

std::vector<float> reference_pool(const NdCase& c, PoolKind kind, const std::vector<float>& src) {
  const std::vector<int64_t> out = output_extents(c);
  const int64_t in_plane = product(c.in), out_plane = product(out), kvol = product(c.kernel);
  std::vector<float> dst(static_cast<size_t>(c.batch * c.channels * out_plane));
  for (int64_t plane = 0; plane < c.batch * c.channels; ++plane) {
    std::vector<int64_t> o(out.size(), 0);
    int64_t position = 0;
    do {
      double best = -INFINITY, sum = 0.0;
      int64_t inside_count = 0;
      for_window(c, o, [&](bool inside, int64_t offset, const std::vector<int64_t>&) {
        if (!inside) return;
        const double v = src[static_cast<size_t>(plane * in_plane + offset)];
        best = std::max(best, v);
        sum += v;
        ++inside_count;
      });
      const double value = kind == PoolKind::kMax          ? best
                           : kind == PoolKind::kAvgInclude ? sum / double(kvol)
                                                           : sum / double(inside_count);
      dst[static_cast<size_t>(plane * out_plane + position++)] = static_cast<float>(value);
    } while (next_index(o, out));
  }
  return dst;
}

Dims src_dims(const NdCase& c) {
  Dims d{c.batch, c.channels};
  d.insert(d.end(), c.in.begin(), c.in.end());
  return d;
}

Dims dst_dims(const NdCase& c, int64_t channels) {
  Dims d{c.batch, channels};
  const std::vector<int64_t> out = output_extents(c);
  d.insert(d.end(), out.begin(), out.end());
  return d;
}

std::string window_text(const NdCase& c) {
  return fmt::format("kernel: [{}] stride: [{}] pad: [{}]", fmt::join(c.kernel, ", "),
                     fmt::join(c.stride, ", "), fmt::join(c.pad, ", "));
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-4 * (1.0 + std::abs(want[i]))) << "at element " << i;
  }
}

const std::vector<NdCase>& cases() {
  static const std::vector<NdCase> all = {
      {"1d_same", 2, 3, {17}, {3}, {1}, {1}},
      {"1d_stride2_odd", 3, 2, {20}, {5}, {2}, {0}},
      {"1d_long_kernel", 1, 4, {32}, {7}, {3}, {3}},
      {"2d_rect", 2, 2, {7, 6}, {3, 2}, {2, 1}, {1, 0}},
      {"3d_cube", 2, 2, {5, 6, 4}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}},
      {"3d_anisotropic", 1, 3, {4, 7, 9}, {1, 3, 2}, {1, 2, 2}, {0, 1, 0}},
      {"3d_stride2", 2, 4, {8, 8, 8}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}},
  };
  return all;
}

std::string conv_type(size_t rank) {
  return fmt::format("Conv{}D", rank);
}

class NdConvForward : public ::testing::TestWithParam<NdCase> {};

TEST_P(NdConvForward, MatchesNaiveLoop) {
  const NdCase c = GetParam();
  const int64_t filters = 5;
  LayerHarness h(fmt::format(R"(type: "{}" conv {{ filters: {} {} }})", conv_type(c.in.size()),
                             filters, window_text(c)),
                 src_dims(c));
  const auto src = random_values(static_cast<size_t>(element_count(src_dims(c))), 1);
  const auto w = random_values(static_cast<size_t>(filters * c.channels * product(c.kernel)), 2);
  const auto b = random_values(static_cast<size_t>(filters), 3);
  h.set_src(src);
  h.set_param(0, w);
  h.set_param(1, b);
  EXPECT_EQ(h.dst_dims(), dst_dims(c, filters));
  expect_near_all(h.forward(), reference_conv(c, filters, src, w, b));
}

std::string conv_case_name(const ::testing::TestParamInfo<NdCase>& test_info) {
  return test_info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Ranks, NdConvForward, ::testing::ValuesIn(cases()), conv_case_name);

struct NdPoolCase {
  NdCase shape;
  PoolKind kind;
};

class NdPoolForward : public ::testing::TestWithParam<NdPoolCase> {};

TEST_P(NdPoolForward, MatchesNaiveLoop) {
  const NdPoolCase p = GetParam();
  const NdCase& c = p.shape;
  const std::string text = fmt::format(
      R"(type: "{}Pool{}D" pool {{ {} {} }})", p.kind == PoolKind::kMax ? "Max" : "Avg",
      c.in.size(), window_text(c), p.kind == PoolKind::kAvgExclude ? "exclude_padding: true" : "");
  LayerHarness h(text, src_dims(c));
  const auto src = random_values(static_cast<size_t>(element_count(src_dims(c))), 7);
  h.set_src(src);
  EXPECT_EQ(h.dst_dims(), dst_dims(c, c.channels));
  expect_near_all(h.forward(), reference_pool(c, p.kind, src));
}

std::vector<NdPoolCase> pool_cases() {
  std::vector<NdPoolCase> all;
  for (const NdCase& c : cases()) {
    // Pooling wants its padding smaller than its kernel; every case above satisfies that.
    for (PoolKind kind : {PoolKind::kMax, PoolKind::kAvgInclude, PoolKind::kAvgExclude}) {
      all.push_back({c, kind});
    }
  }
  return all;
}

std::string pool_case_name(const ::testing::TestParamInfo<NdPoolCase>& test_info) {
  static const char* const kKinds[] = {"max", "avg_include", "avg_exclude"};
  return test_info.param.shape.name + "_" + kKinds[static_cast<int>(test_info.param.kind)];
}

INSTANTIATE_TEST_SUITE_P(Ranks, NdPoolForward, ::testing::ValuesIn(pool_cases()), pool_case_name);

}  // namespace
}  // namespace convoy
