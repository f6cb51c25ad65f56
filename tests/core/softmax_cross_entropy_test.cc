// The loss: values against hand computation, numerical stability, padding rows, and its gradient
// against finite differences.
#include "core/softmax_cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "testing/gradient_check.h"
#include "testing/layer_harness.h"

namespace convoy {
namespace {

struct LossFixture {
  LossFixture(int64_t batch, int64_t classes)
      : engine(dnnl::engine::kind::cpu, 0),
        stream(engine),
        ctx(engine, true),
        logits(plain_desc({batch, classes}), engine),
        diff(plain_desc({batch, classes}), engine),
        loss(ctx, logits, diff) {
    ctx.scratchpad().allocate();
  }
  LossResult compute(const std::vector<float>& z, const std::vector<int32_t>& labels,
                     int64_t count, float smoothing = 0.f) {
    logits.copy_from_plain(z);
    return loss.compute(stream, labels, count, 0, smoothing);
  }
  dnnl::engine engine;
  dnnl::stream stream;
  BuildContext ctx;
  Tensor logits, diff;
  SoftmaxCrossEntropy loss;
};

TEST(SoftmaxCrossEntropy, HandComputedValuesAndGradient) {
  LossFixture f(2, 3);
  const LossResult r = f.compute({1, 2, 3, 0, 0, 0}, {2, 0}, 2);
  // Row 0: log(1 + e^-1 + e^-2); row 1: log 3.
  const double row0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)), row1 = std::log(3.0);
  EXPECT_NEAR(r.loss, (row0 + row1) / 2, 1e-5);  // float32 log-softmax
  EXPECT_EQ(r.correct, 2);                       // argmax of row 1 is its first maximum, class 0
  const std::vector<float> g = f.diff.to_plain();
  const double s = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const std::vector<double> want = {
      std::exp(1.0) / s / 2, std::exp(2.0) / s / 2, (std::exp(3.0) / s - 1) / 2,
      (1.0 / 3 - 1) / 2,     1.0 / 3 / 2,           1.0 / 3 / 2};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-6) << i;
  EXPECT_EQ(f.loss.predictions()[0], 2);
  EXPECT_EQ(f.loss.predictions()[1], 0);
}

TEST(SoftmaxCrossEntropy, StableForHugeLogits) {
  LossFixture f(2, 3);
  const LossResult r = f.compute({1000, 0, -1000, 1000, 0, -1000}, {0, 1}, 2);
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_NEAR(r.loss, (0.0 + 1000.0) / 2, 1e-3);
  for (float g : f.diff.to_plain()) EXPECT_TRUE(std::isfinite(g));
}

TEST(SoftmaxCrossEntropy, PaddingRowsCountForNothing) {
  LossFixture f(3, 2);
  const LossResult r = f.compute({0.5f, -0.5f, 2, 1, 7, 7}, {0, 1, 0}, 2);
  const double row0 = std::log(1 + std::exp(-1.0)), row1 = std::log(1 + std::exp(1.0));
  EXPECT_NEAR(r.loss, (row0 + row1) / 2, 1e-5);  // float32 log-softmax
  const std::vector<float> g = f.diff.to_plain();
  EXPECT_EQ(g[4], 0.f);
  EXPECT_EQ(g[5], 0.f);
}

TEST(SoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  LossFixture f(4, 5);
  const std::vector<float> z = testing::random_values(20, 3, -3.f, 3.f);
  const std::vector<int32_t> labels = {4, 0, 2, 2};
  f.compute(z, labels, 4);
  const std::vector<float> analytic = f.diff.to_plain();
  std::vector<float> current = z;
  EXPECT_TRUE(testing::gradient_matches(
      "d loss / d logits", z, [&](std::span<const float> x) { current.assign(x.begin(), x.end()); },
      [&] { return f.compute(current, labels, 4).loss; }, analytic,
      {.epsilon = 1e-2, .abs_tolerance = 1e-4, .rel_tolerance = 1e-2}));
}

// Label smoothing 0.2 against PyTorch 1.13's
// torch.nn.functional.cross_entropy(z, y, label_smoothing=0.2) and its gradient (values printed by
// PyTorch for these logits), then the gradient against finite differences of the smoothed loss.
TEST(SoftmaxCrossEntropy, LabelSmoothingAsPyTorch) {
  LossFixture f(2, 3);
  const LossResult r = f.compute({1, 2, 3, 0, 0.5f, -1}, {2, 0}, 2, 0.2f);
  EXPECT_NEAR(r.loss, 0.872534990310669, 1e-5);
  const std::vector<float> g = f.diff.to_plain();
  const std::vector<double> want = {0.011681955307722092, 0.0890309065580368,
                                    -0.1007128357887268,  -0.26758384704589844,
                                    0.23994135856628418,  0.02764248102903366};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-6) << i;

  const std::vector<float> z = testing::random_values(20, 5, -3.f, 3.f);
  const std::vector<int32_t> labels = {1, 0, 4, 2};
  LossFixture h(4, 5);
  h.compute(z, labels, 4, 0.1f);
  const std::vector<float> analytic = h.diff.to_plain();
  std::vector<float> current = z;
  EXPECT_TRUE(testing::gradient_matches(
      "d smoothed loss / d logits", z,
      [&](std::span<const float> x) { current.assign(x.begin(), x.end()); },
      [&] { return h.compute(current, labels, 4, 0.1f).loss; }, analytic,
      {.epsilon = 1e-2, .abs_tolerance = 1e-4, .rel_tolerance = 1e-2}));
}

}  // namespace
}  // namespace convoy
