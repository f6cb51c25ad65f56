// Every layer's forward pass against a naive loop written here, over several shapes, strides,
// paddings, odd sizes and batches > 1, from plain and from blocked input layouts.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "testing/layer_harness.h"

namespace convoy {
namespace {

using testing::LayerHarness;
using testing::random_values;
using tag = dnnl::memory::format_tag;

struct Dims4 {
  int64_t n, c, h, w;
  int64_t size() const { return n * c * h * w; }
  int64_t at(int64_t i, int64_t j, int64_t y, int64_t x) const {
    return ((i * c + j) * h + y) * w + x;
  }
};

int64_t out_extent(int64_t in, int64_t k, int64_t s, int64_t p) {
  return (in + 2 * p - k) / s + 1;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want,
                     double tol = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << "at element " << i;
  }
}

// ---- Convolution ----------------------------------------------------------------------------

struct ConvCase {
  Dims4 in;
  int64_t filters, kh, kw, sh, sw, ph, pw;
  std::optional<tag> layout;
};

std::vector<float> reference_conv(const ConvCase& c, const std::vector<float>& src,
                                  const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t oh = out_extent(c.in.h, c.kh, c.sh, c.ph),
                ow = out_extent(c.in.w, c.kw, c.sw, c.pw);
  const Dims4 out{c.in.n, c.filters, oh, ow};
  std::vector<float> dst(static_cast<size_t>(out.size()));
  for (int64_t n = 0; n < c.in.n; ++n)
    for (int64_t o = 0; o < c.filters; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          double acc = b[static_cast<size_t>(o)];
          for (int64_t ci = 0; ci < c.in.c; ++ci)
            for (int64_t ky = 0; ky < c.kh; ++ky)
              for (int64_t kx = 0; kx < c.kw; ++kx) {
                const int64_t iy = y * c.sh - c.ph + ky, ix = x * c.sw - c.pw + kx;
                if (iy < 0 || iy >= c.in.h || ix < 0 || ix >= c.in.w) continue;
                acc += double(src[static_cast<size_t>(c.in.at(n, ci, iy, ix))]) *
                       w[static_cast<size_t>(((o * c.in.c + ci) * c.kh + ky) * c.kw + kx)];
              }
          dst[static_cast<size_t>(out.at(n, o, y, x))] = static_cast<float>(acc);
        }
  return dst;
}

class ConvForward : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvForward, MatchesNaiveLoop) {
  const ConvCase c = GetParam();
  const std::string text = fmt::format(
      R"(type: "Conv2D" conv {{ filters: {} kernel: [{}, {}] stride: [{}, {}] pad: [{}, {}] }})",
      c.filters, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
  LayerHarness h(text, {c.in.n, c.in.c, c.in.h, c.in.w}, c.layout);
  const auto src = random_values(static_cast<size_t>(c.in.size()), 1);
  const auto w = random_values(static_cast<size_t>(c.filters * c.in.c * c.kh * c.kw), 2);
  const auto b = random_values(static_cast<size_t>(c.filters), 3);
  h.set_src(src);
  h.set_param(0, w);
  h.set_param(1, b);
  const Dims expected_dims{c.in.n, c.filters, out_extent(c.in.h, c.kh, c.sh, c.ph),
                           out_extent(c.in.w, c.kw, c.sw, c.pw)};
  EXPECT_EQ(h.dst_dims(), expected_dims);
  expect_near_all(h.forward(), reference_conv(c, src, w, b));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvForward,
    ::testing::Values(ConvCase{{2, 3, 7, 7}, 4, 3, 3, 1, 1, 1, 1, {}},    // same padding
                      ConvCase{{3, 2, 9, 6}, 5, 3, 3, 2, 2, 0, 0, {}},    // stride 2, odd sizes
                      ConvCase{{2, 1, 8, 8}, 6, 5, 5, 1, 1, 2, 2, {}},    // LeNet's first layer
                      ConvCase{{1, 4, 5, 7}, 3, 3, 2, 1, 2, 1, 0, {}},    // rectangular everything
                      ConvCase{{2, 16, 6, 6}, 16, 1, 1, 1, 1, 0, 0, {}},  // 1x1
                      ConvCase{{2, 16, 7, 5}, 8, 3, 3, 2, 1, 1, 1, tag::aBcd8b},  // blocked input
                      ConvCase{{5, 3, 4, 4}, 2, 4, 4, 1, 1, 0, 0, {}}));          // 1x1 output

// ---- Pooling --------------------------------------------------------------------------------

enum class PoolKind { kMax, kAvgInclude, kAvgExclude };

struct PoolCase {
  PoolKind kind;
  Dims4 in;
  int64_t kh, kw, sh, sw, ph, pw;
  std::optional<tag> layout;
};

std::vector<float> reference_pool(const PoolCase& c, const std::vector<float>& src) {
  const int64_t oh = out_extent(c.in.h, c.kh, c.sh, c.ph),
                ow = out_extent(c.in.w, c.kw, c.sw, c.pw);
  const Dims4 out{c.in.n, c.in.c, oh, ow};
  std::vector<float> dst(static_cast<size_t>(out.size()));
  for (int64_t n = 0; n < c.in.n; ++n)
    for (int64_t ch = 0; ch < c.in.c; ++ch)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
          double best = -INFINITY, sum = 0.0;
          int64_t inside = 0;
          for (int64_t ky = 0; ky < c.kh; ++ky)
            for (int64_t kx = 0; kx < c.kw; ++kx) {
              const int64_t iy = y * c.sh - c.ph + ky, ix = x * c.sw - c.pw + kx;
              if (iy < 0 || iy >= c.in.h || ix < 0 || ix >= c.in.w) continue;
              const double v = src[static_cast<size_t>(c.in.at(n, ch, iy, ix))];
              best = std::max(best, v);
              sum += v;
              ++inside;
            }
          double value = best;
          if (c.kind == PoolKind::kAvgInclude) value = sum / double(c.kh * c.kw);
          if (c.kind == PoolKind::kAvgExclude) value = sum / double(inside);
          dst[static_cast<size_t>(out.at(n, ch, y, x))] = static_cast<float>(value);
        }
  return dst;
}

std::string pool_text(const PoolCase& c) {
  return fmt::format(R"(type: "{}" pool {{ kernel: [{}, {}] stride: [{}, {}] pad: [{}, {}] {} }})",
                     c.kind == PoolKind::kMax ? "MaxPool2D" : "AvgPool2D", c.kh, c.kw, c.sh, c.sw,
                     c.ph, c.pw, c.kind == PoolKind::kAvgExclude ? "exclude_padding: true" : "");
}

class PoolForward : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolForward, MatchesNaiveLoop) {
  const PoolCase c = GetParam();
  LayerHarness h(pool_text(c), {c.in.n, c.in.c, c.in.h, c.in.w}, c.layout);
  const auto src = random_values(static_cast<size_t>(c.in.size()), 7);
  h.set_src(src);
  const Dims expected_dims{c.in.n, c.in.c, out_extent(c.in.h, c.kh, c.sh, c.ph),
                           out_extent(c.in.w, c.kw, c.sw, c.pw)};
  EXPECT_EQ(h.dst_dims(), expected_dims);
  expect_near_all(h.forward(), reference_pool(c, src));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PoolForward,
    ::testing::Values(PoolCase{PoolKind::kMax, {2, 3, 8, 8}, 2, 2, 2, 2, 0, 0, {}},
                      PoolCase{PoolKind::kMax, {3, 2, 7, 7}, 2, 2, 2, 2, 0, 0, {}},  // odd
                      PoolCase{PoolKind::kMax, {2, 4, 9, 6}, 3, 3, 2, 2, 1, 1, {}},
                      PoolCase{PoolKind::kMax, {1, 2, 5, 9}, 2, 3, 1, 2, 0, 1, {}},
                      PoolCase{PoolKind::kMax, {2, 16, 7, 7}, 2, 2, 2, 2, 0, 0, tag::aBcd8b},
                      PoolCase{PoolKind::kAvgInclude, {2, 3, 8, 8}, 2, 2, 2, 2, 0, 0, {}},
                      PoolCase{PoolKind::kAvgInclude, {2, 3, 7, 9}, 3, 3, 2, 2, 1, 1, {}},
                      PoolCase{PoolKind::kAvgExclude, {2, 3, 7, 9}, 3, 3, 2, 2, 1, 1, {}},
                      PoolCase{
                          PoolKind::kAvgExclude, {1, 16, 5, 5}, 3, 2, 1, 2, 1, 1, tag::aBcd8b}));

// ---- Dense ----------------------------------------------------------------------------------

struct DenseCase {
  Dims in;  // [N, features] or [N, C, H, W]
  int64_t units;
  std::optional<tag> layout;
};

class DenseForward : public ::testing::TestWithParam<DenseCase> {};

TEST_P(DenseForward, MatchesNaiveLoop) {
  const DenseCase c = GetParam();
  LayerHarness h(fmt::format(R"(type: "Dense" dense {{ units: {} }})", c.units), c.in, c.layout);
  const int64_t n = c.in[0], features = element_count(c.in) / n;
  const auto src = random_values(static_cast<size_t>(n * features), 11);
  const auto w = random_values(static_cast<size_t>(c.units * features), 12);
  const auto b = random_values(static_cast<size_t>(c.units), 13);
  h.set_src(src);
  h.set_param(0, w);
  h.set_param(1, b);
  std::vector<float> want(static_cast<size_t>(n * c.units));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t u = 0; u < c.units; ++u) {
      double acc = b[static_cast<size_t>(u)];
      for (int64_t f = 0; f < features; ++f) {
        acc += double(src[static_cast<size_t>(i * features + f)]) *
               w[static_cast<size_t>(u * features + f)];
      }
      want[static_cast<size_t>(i * c.units + u)] = static_cast<float>(acc);
    }
  EXPECT_EQ(h.dst_dims(), (Dims{n, c.units}));
  expect_near_all(h.forward(), want);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DenseForward,
                         ::testing::Values(DenseCase{{4, 7}, 3, {}}, DenseCase{{1, 20}, 10, {}},
                                           DenseCase{{3, 2, 3, 3}, 5, {}},  // implicit flatten
                                           DenseCase{{2, 16, 3, 3}, 7, tag::aBcd8b}));

// ---- Activations ----------------------------------------------------------------------------

struct ActivationCase {
  std::string type;
  double (*reference)(double);
};

double relu(double x) {
  return x > 0 ? x : 0;
}
double leaky_relu(double x) {
  return x > 0 ? x : 0.01 * x;
}
double elu(double x) {
  return x > 0 ? x : std::expm1(x);
}
double selu(double x) {
  return 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * std::expm1(x));
}
double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double tanh_ref(double x) {
  return std::tanh(x);
}

class ActivationForward : public ::testing::TestWithParam<ActivationCase> {};

TEST_P(ActivationForward, MatchesFormula) {
  const ActivationCase c = GetParam();
  for (const std::optional<tag> layout : {std::optional<tag>{}, std::optional<tag>{tag::aBcd8b}}) {
    LayerHarness h(fmt::format(R"(type: "{}")", c.type), {2, 3, 5, 3}, layout);
    const auto src = random_values(90, 21, -4.f, 4.f);
    h.set_src(src);
    const auto got = h.forward();
    ASSERT_EQ(got.size(), src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      EXPECT_NEAR(got[i], c.reference(src[i]), 1e-5 * (1 + std::abs(c.reference(src[i]))))
          << c.type << " at " << src[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ActivationForward,
                         ::testing::Values(ActivationCase{"ReLU", relu},
                                           ActivationCase{"LeakyReLU", leaky_relu},
                                           ActivationCase{"ELU", elu}, ActivationCase{"SELU", selu},
                                           ActivationCase{"Sigmoid", sigmoid},
                                           ActivationCase{"Tanh", tanh_ref}),
                         [](const auto& test_info) { return test_info.param.type; });

TEST(ActivationForward, EluAlphaFromSpec) {
  LayerHarness h(R"(type: "ELU" elu { alpha: 0.5 })", {1, 4});
  h.set_src(std::vector<float>{-1.f, -0.2f, 0.3f, 2.f});
  const auto got = h.forward();
  EXPECT_NEAR(got[0], 0.5 * std::expm1(-1.0), 1e-6);
  EXPECT_NEAR(got[1], 0.5 * std::expm1(-0.2), 1e-6);
  EXPECT_NEAR(got[2], 0.3, 1e-6);
  EXPECT_NEAR(got[3], 2.0, 1e-6);
}

TEST(ActivationForward, LeakyReluSlopeFromSpec) {
  LayerHarness h(R"(type: "LeakyReLU" leaky_relu { negative_slope: 0.2 })", {1, 3});
  h.set_src(std::vector<float>{-2.f, 0.f, 3.f});
  EXPECT_EQ(h.forward(), (std::vector<float>{-0.4f, 0.f, 3.f}));
}

// ---- Flatten --------------------------------------------------------------------------------

TEST(FlattenForward, KeepsRowMajorOrderFromPlainAndBlockedInput) {
  for (const std::optional<tag> layout : {std::optional<tag>{}, std::optional<tag>{tag::aBcd8b}}) {
    LayerHarness h(R"(type: "Flatten")", {2, 3, 2, 5}, layout);
    const auto src = random_values(60, 31);
    h.set_src(src);
    EXPECT_EQ(h.dst_dims(), (Dims{2, 30}));
    EXPECT_EQ(h.forward(), src);
  }
}

}  // namespace
}  // namespace convoy
