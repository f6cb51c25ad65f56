// Optimizer updates: SGD against values computed by hand from the update rule in optimizer.h;
// Adam and AdamW against PyTorch 1.13's torch.optim.Adam / AdamW in double precision (lr 0.1,
// betas (0.9, 0.999), eps 1e-8, weight decay 0.01, gradients 0.5, -0.2, 0.3 from w = 1).
#include "core/optimizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "testing/error_of.h"

namespace convoy {
namespace {

struct OneParameter {
  explicit OneParameter(float w, const dnnl::memory::desc& desc = plain_desc({1}))
      : engine(dnnl::engine::kind::cpu, 0),
        p{std::string(1, 'w'), Tensor(desc, engine), Tensor(desc, engine), 0, 0, std::nullopt} {
    p.value.copy_from_plain(std::vector<float>(static_cast<size_t>(p.value.size()), w));
  }
  void set_grad(float g) {
    p.grad.copy_from_plain(std::vector<float>(static_cast<size_t>(p.grad.size()), g));
  }
  float value() const { return p.value.to_plain()[0]; }
  dnnl::engine engine;
  Parameter p;
};

TEST(Sgd, MomentumAndWeightDecayByHand) {
  OneParameter w(1.0f);
  Optimizer optimizer({&w.p}, {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  w.set_grad(0.5f);
  optimizer.step();
  // g = 0.5 + 0.01 * 1 = 0.51; v = 0.51; w = 1 - 0.1 * 0.51
  EXPECT_NEAR(w.value(), 0.949f, 1e-6);
  optimizer.step();
  // g = 0.5 + 0.01 * 0.949 = 0.50949; v = 0.9 * 0.51 + 0.50949 = 0.96849; w = 0.949 - 0.096849
  EXPECT_NEAR(w.value(), 0.852151f, 1e-6);
  EXPECT_NEAR(optimizer.first_moment(0).to_plain()[0], 0.96849f, 1e-6);
}

TEST(Sgd, NesterovByHand) {
  OneParameter w(1.0f);
  Optimizer optimizer(
      {&w.p}, {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
  w.set_grad(0.5f);
  optimizer.step();
  // g = 0.51, v = 0.51, w = 1 - 0.1 * (0.51 + 0.9 * 0.51)
  EXPECT_NEAR(w.value(), 0.9031f, 1e-6);
  optimizer.step();
  // g = 0.5 + 0.009031 = 0.509031; v = 0.459 + 0.509031 = 0.968031;
  // w = 0.9031 - 0.1 * (0.509031 + 0.9 * 0.968031)
  EXPECT_NEAR(w.value(), 0.76507411f, 1e-6);
}

TEST(Sgd, PlainGradientDescentWithoutMomentum) {
  OneParameter w(2.0f);
  Optimizer optimizer({&w.p}, {.learning_rate = 0.5f, .momentum = 0.f});
  w.set_grad(1.0f);
  optimizer.step();
  EXPECT_FLOAT_EQ(w.value(), 1.5f);
  optimizer.step();
  EXPECT_FLOAT_EQ(w.value(), 1.0f);
}

void expect_adam_trajectory(OptimizerConfig::Kind kind, const std::vector<double>& want,
                            double exp_avg, double exp_avg_sq) {
  OneParameter w(1.0f);
  Optimizer optimizer({&w.p}, {.kind = kind,
                               .learning_rate = 0.1f,
                               .weight_decay = 0.01f,
                               .beta1 = 0.9f,
                               .beta2 = 0.999f,
                               .epsilon = 1e-8f});
  const float grads[] = {0.5f, -0.2f, 0.3f};
  for (size_t t = 0; t < 3; ++t) {
    w.set_grad(grads[t]);
    optimizer.step();
    EXPECT_NEAR(w.value(), want[t], 2e-6) << "step " << t + 1;
  }
  EXPECT_EQ(optimizer.steps(), 3);
  EXPECT_NEAR(optimizer.first_moment(0).to_plain()[0], exp_avg, 1e-7);
  EXPECT_NEAR(optimizer.second_moment(0).to_plain()[0], exp_avg_sq, 1e-4 * exp_avg_sq);  // float
}

TEST(Adam, MatchesTorchOptimAdam) {
  // The first step moves by lr whatever the gradient's size: g / sqrt(g^2) after correction.
  expect_adam_trajectory(OptimizerConfig::Kind::kAdam, {0.900000002, 0.863364138, 0.807212554},
                         0.0549833641, 0.000391279304);
}

TEST(AdamW, MatchesTorchOptimAdamW) {
  // Decoupled decay: w = 1 * (1 - 0.1 * 0.01) = 0.999 first, then Adam's step of 0.1.
  expect_adam_trajectory(OptimizerConfig::Kind::kAdamW, {0.899000002, 0.863540418, 0.808232843},
                         0.0525, 0.00037946025);
}

TEST(Optimizer, KindsByName) {
  EXPECT_EQ(OptimizerConfig::parse_kind("adamw"), OptimizerConfig::Kind::kAdamW);
  EXPECT_EQ(OptimizerConfig::kind_name(OptimizerConfig::Kind::kAdam), "adam");
  EXPECT_EQ(testing::kind_of([] { OptimizerConfig::parse_kind("rmsprop"); }),
            ErrorKind::kInvalidInput);
}

TEST(Sgd, BlockedLayoutUpdatesEveryElementAndKeepsPaddingZero) {
  // 3 channels in an 8-channel block: 5 padding channels that must stay zero.
  const dnnl::memory::desc blocked({1, 3, 2, 2}, dnnl::memory::data_type::f32,
                                   dnnl::memory::format_tag::aBcd8b);
  OneParameter w(1.0f, blocked);
  Optimizer optimizer({&w.p}, {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  w.set_grad(0.5f);
  optimizer.step();
  for (float v : w.p.value.to_plain()) EXPECT_NEAR(v, 0.949f, 1e-6);
  const float* raw = w.p.value.data();
  int nonzero = 0;
  for (size_t i = 0; i < w.p.value.bytes() / sizeof(float); ++i) nonzero += raw[i] != 0.f;
  EXPECT_EQ(nonzero, 12);
}

}  // namespace
}  // namespace convoy
