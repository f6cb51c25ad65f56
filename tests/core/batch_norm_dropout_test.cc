// BatchNorm and Dropout against references written here: batch norm's training forward (batch
// statistics), evaluation forward (running statistics) and running-statistics update, for inputs
// with 0 to 3 spatial dimensions and a blocked layout; dropout's mask (seeded by the row keys,
// scaled, off when evaluating). Their gradients are checked in layer_gradient_test.cc.
#include <gtest/gtest.h>

#include <cmath>

#include "testing/layer_harness.h"

namespace convoy {
namespace {

using testing::LayerHarness;
using testing::random_values;
using tag = dnnl::memory::format_tag;

struct Stats {
  std::vector<double> mean, var;  // var biased
};

// Per-channel statistics over the batch and spatial positions of a plain [N, C, ...] tensor.
Stats reference_stats(const std::vector<float>& x, const Dims& dims) {
  const int64_t n = dims[0], c = dims[1], inner = element_count(dims) / (n * c);
  Stats s{std::vector<double>(static_cast<size_t>(c)), std::vector<double>(static_cast<size_t>(c))};
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        const double v = x[static_cast<size_t>((i * c + ch) * inner + k)];
        sum += v;
        sq += v * v;
      }
    const double count = double(n * inner);
    s.mean[static_cast<size_t>(ch)] = sum / count;
    s.var[static_cast<size_t>(ch)] = sq / count - (sum / count) * (sum / count);
  }
  return s;
}

std::vector<float> reference_normalize(const std::vector<float>& x, const Dims& dims,
                                       const std::vector<double>& mean,
                                       const std::vector<double>& var,
                                       const std::vector<float>& gamma,
                                       const std::vector<float>& beta, double eps) {
  const int64_t n = dims[0], c = dims[1], inner = element_count(dims) / (n * c);
  std::vector<float> y(x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < inner; ++k) {
        const auto at = static_cast<size_t>((i * c + ch) * inner + k);
        const auto cc = static_cast<size_t>(ch);
        y[at] = static_cast<float>(gamma[cc] * (x[at] - mean[cc]) / std::sqrt(var[cc] + eps) +
                                   beta[cc]);
      }
  return y;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "at element " << i;
  }
}

struct BnCase {
  std::string name;
  Dims dims;
  std::optional<tag> layout;
};

class BatchNormTest : public ::testing::TestWithParam<BnCase> {};

TEST_P(BatchNormTest, TrainingUsesBatchStatisticsAndEvaluationRunningOnes) {
  const BnCase c = GetParam();
  LayerHarness h(R"(type: "BatchNorm" batch_norm { momentum: 0.25 epsilon: 0.001 })", c.dims,
                 c.layout);
  const int64_t channels = c.dims[1];
  const auto x = random_values(static_cast<size_t>(element_count(c.dims)), 3, -2.f, 3.f);
  const auto gamma = random_values(static_cast<size_t>(channels), 4, 0.5f, 1.5f);
  const auto beta = random_values(static_cast<size_t>(channels), 5);
  h.set_src(x);
  h.set_param(0, gamma);
  h.set_param(1, beta);

  // Training: the batch's own statistics.
  const Stats s = reference_stats(x, c.dims);
  expect_near_all(h.forward(), reference_normalize(x, c.dims, s.mean, s.var, gamma, beta, 1e-3),
                  2e-4);
  const std::span<float> batch = h.layer().batch_statistics();
  ASSERT_EQ(batch.size(), static_cast<size_t>(2 * channels));
  for (int64_t ch = 0; ch < channels; ++ch) {
    EXPECT_NEAR(batch[static_cast<size_t>(ch)], s.mean[static_cast<size_t>(ch)], 1e-5);
    EXPECT_NEAR(batch[static_cast<size_t>(channels + ch)], s.var[static_cast<size_t>(ch)], 1e-4);
  }

  // The running statistics move by the momentum; the variance is the unbiased one.
  h.layer().update_running_statistics();
  const std::span<Buffer> buffers = h.layer().buffers();
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(buffers[0].name, "layer.running_mean");
  EXPECT_EQ(buffers[1].name, "layer.running_var");
  const std::vector<float> running_mean = buffers[0].value.to_plain();
  const std::vector<float> running_var = buffers[1].value.to_plain();
  const double count = double(element_count(c.dims) / channels);
  std::vector<double> want_mean(static_cast<size_t>(channels)), want_var(want_mean.size());
  for (size_t ch = 0; ch < want_mean.size(); ++ch) {
    want_mean[ch] = 0.25 * s.mean[ch];
    want_var[ch] = 0.75 + 0.25 * s.var[ch] * count / (count - 1);
    EXPECT_NEAR(running_mean[ch], want_mean[ch], 1e-5);
    EXPECT_NEAR(running_var[ch], want_var[ch], 1e-4);
  }

  // Evaluation: the running statistics, and the batch's no longer matter.
  h.set_evaluating(true);
  expect_near_all(h.forward(),
                  reference_normalize(x, c.dims, want_mean, want_var, gamma, beta, 1e-3), 2e-4);
  h.set_evaluating(false);
  expect_near_all(h.forward(), reference_normalize(x, c.dims, s.mean, s.var, gamma, beta, 1e-3),
                  2e-4);
}

INSTANTIATE_TEST_SUITE_P(Ranks, BatchNormTest,
                         ::testing::Values(BnCase{"features", {6, 5}, std::nullopt},
                                           BnCase{"1d", {3, 4, 9}, std::nullopt},
                                           BnCase{"2d", {2, 3, 5, 4}, std::nullopt},
                                           BnCase{"2d_blocked", {2, 16, 3, 3}, tag::aBcd8b},
                                           BnCase{"3d", {2, 2, 3, 4, 5}, std::nullopt}),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(Dropout, MaskIsSeededScaledAndOffWhenEvaluating) {
  const Dims dims{64, 2000};
  LayerHarness h(R"(type: "Dropout" dropout { rate: 0.3 })", dims);
  const auto x = random_values(static_cast<size_t>(element_count(dims)), 8, 0.5f, 1.5f);
  h.set_src(x);
  for (size_t r = 0; r < 64; ++r) h.row_keys()[r] = 1000 + r;
  const std::vector<float> y = h.forward();
  int64_t zeros = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.f) {
      ++zeros;
    } else {
      ASSERT_FLOAT_EQ(y[i], x[i] / 0.7f) << "at " << i;
    }
  }
  // 128,000 draws: the kept fraction is 0.7 within a few standard deviations (0.0013).
  EXPECT_NEAR(double(zeros) / double(x.size()), 0.3, 0.006);

  // The same keys give the same mask; a row with another key gets another mask, others keep theirs.
  EXPECT_EQ(h.forward(), y);
  h.row_keys()[5] = 77;
  const std::vector<float> y2 = h.forward();
  int64_t changed_in_row5 = 0, changed_elsewhere = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (y2[i] != y[i]) ++(i / 2000 == 5 ? changed_in_row5 : changed_elsewhere);
  }
  EXPECT_GT(changed_in_row5, 500);
  EXPECT_EQ(changed_elsewhere, 0);

  // Backward multiplies by the same mask.
  const auto g = random_values(x.size(), 9);
  h.backward(g);
  const std::vector<float> dx = h.diff_src();
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_FLOAT_EQ(dx[i], y2[i] == 0.f ? 0.f : g[i] / 0.7f) << "at " << i;
  }

  h.set_evaluating(true);
  EXPECT_EQ(h.forward(), x);
}

TEST(Dropout, RateZeroKeepsEverything) {
  LayerHarness h(R"(type: "Dropout" dropout { rate: 0 })", {4, 50});
  const auto x = random_values(200, 10);
  h.set_src(x);
  EXPECT_EQ(h.forward(), x);
}

}  // namespace
}  // namespace convoy
