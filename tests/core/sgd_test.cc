// SGD updates against values computed by hand from the update rule in sgd.h.
#include "sgd.h"

#include <gtest/gtest.h>

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
  Sgd sgd({&w.p}, {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  w.set_grad(0.5f);
  sgd.step();
  // g = 0.5 + 0.01 * 1 = 0.51; v = 0.51; w = 1 - 0.1 * 0.51
  EXPECT_NEAR(w.value(), 0.949f, 1e-6);
  sgd.step();
  // g = 0.5 + 0.01 * 0.949 = 0.50949; v = 0.9 * 0.51 + 0.50949 = 0.96849; w = 0.949 - 0.096849
  EXPECT_NEAR(w.value(), 0.852151f, 1e-6);
  EXPECT_NEAR(sgd.momentum_buffer(0).to_plain()[0], 0.96849f, 1e-6);
}

TEST(Sgd, NesterovByHand) {
  OneParameter w(1.0f);
  Sgd sgd({&w.p},
          {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
  w.set_grad(0.5f);
  sgd.step();
  // g = 0.51, v = 0.51, w = 1 - 0.1 * (0.51 + 0.9 * 0.51)
  EXPECT_NEAR(w.value(), 0.9031f, 1e-6);
  sgd.step();
  // g = 0.5 + 0.009031 = 0.509031; v = 0.459 + 0.509031 = 0.968031;
  // w = 0.9031 - 0.1 * (0.509031 + 0.9 * 0.968031)
  EXPECT_NEAR(w.value(), 0.76507411f, 1e-6);
}

TEST(Sgd, PlainGradientDescentWithoutMomentum) {
  OneParameter w(2.0f);
  Sgd sgd({&w.p}, {.learning_rate = 0.5f, .momentum = 0.f});
  w.set_grad(1.0f);
  sgd.step();
  EXPECT_FLOAT_EQ(w.value(), 1.5f);
  sgd.step();
  EXPECT_FLOAT_EQ(w.value(), 1.0f);
}

TEST(Sgd, BlockedLayoutUpdatesEveryElementAndKeepsPaddingZero) {
  // 3 channels in an 8-channel block: 5 padding channels that must stay zero.
  const dnnl::memory::desc blocked({1, 3, 2, 2}, dnnl::memory::data_type::f32,
                                   dnnl::memory::format_tag::aBcd8b);
  OneParameter w(1.0f, blocked);
  Sgd sgd({&w.p}, {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
  w.set_grad(0.5f);
  sgd.step();
  for (float v : w.p.value.to_plain()) EXPECT_NEAR(v, 0.949f, 1e-6);
  const float* raw = w.p.value.data();
  int nonzero = 0;
  for (size_t i = 0; i < w.p.value.bytes() / sizeof(float); ++i) nonzero += raw[i] != 0.f;
  EXPECT_EQ(nonzero, 12);
}

}  // namespace
}  // namespace convoy
