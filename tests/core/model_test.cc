// Whole models: the gradient of the loss with respect to every parameter against finite
// differences (layers composed, blocked layouts between them), seeded reproducibility,
// initialisation statistics, and padded batches.
#include "core/model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/optimizer.h"
#include "core/random.h"
#include "testing/gradient_check.h"
#include "testing/layer_harness.h"

namespace convoy {
namespace {

using testing::random_values;

// Smooth activations and average pooling keep the loss differentiable everywhere.
constexpr const char* kSmallModel = R"pb(
  input {
    channels: 2
    spatial: [ 9, 8 ]
  }
  num_classes: 4
  layer {
    name: "c1"
    type: "Conv2D"
    conv { filters: 8 kernel: 3 pad: 1 }
  }
  layer { name: "t1" type: "Tanh" }
  layer {
    name: "p1"
    type: "AvgPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "c2"
    type: "Conv2D"
    conv {
      filters: 16
      kernel: 3
      stride: [ 1, 2 ]
      pad: 1
    }
  }
  layer { name: "e2" type: "ELU" }
  layer {
    name: "p2"
    type: "AvgPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "f1"
    type: "Dense"
    dense { units: 6 }
  }
  layer { name: "s1" type: "Sigmoid" }
  layer {
    name: "f2"
    type: "Dense"
    dense { units: 4 }
  }
)pb";

struct Fixture {
  explicit Fixture(const std::string& text, int64_t batch, uint64_t seed = 7)
      : engine(dnnl::engine::kind::cpu, 0),
        stream(engine),
        spec(parse_model_text(text, "test")),
        model(spec, batch, engine, Model::Mode::kTrain, "test") {
    model.initialize(seed);
  }
  double loss(const std::vector<float>& x, const std::vector<int32_t>& y, int64_t count) {
    model.set_input(x);
    model.forward(stream);
    return model.loss(stream, y, count).loss;
  }
  dnnl::engine engine;
  dnnl::stream stream;
  pb::ModelSpec spec;
  Model model;
};

// d loss / d parameter from backward() against finite differences of the loss, for every
// parameter of the model.
void expect_loss_gradients_match(Fixture& f, const std::vector<float>& x,
                                 const std::vector<int32_t>& y,
                                 const testing::GradientCheckOptions& options) {
  const auto count = static_cast<int64_t>(y.size());
  f.loss(x, y, count);
  f.model.backward(f.stream);
  for (Parameter* p : f.model.parameters()) {
    EXPECT_TRUE(testing::gradient_matches(
        p->name, p->value.to_plain(),
        [&](std::span<const float> v) { p->value.copy_from_plain(v); },
        [&] { return f.loss(x, y, count); }, p->grad.to_plain(), options));
  }
}

TEST(Model, SmoothModelGradientMatchesFiniteDifferences) {
  Fixture f(kSmallModel, 3);
  const std::vector<float> x = random_values(3 * 2 * 9 * 8, 1, 0.f, 1.f);
  const std::vector<int32_t> y = {3, 0, 2};
  expect_loss_gradients_match(f, x, y,
                              {.epsilon = 1e-2, .abs_tolerance = 2e-4, .rel_tolerance = 3e-2});
}

// LeNet's shape in miniature: ReLU and max pooling, whose kinks a finite difference can straddle;
// the checker skips such elements (at most 10%) and compares all the others.
constexpr const char* kReluModel = R"pb(
  input {
    channels: 1
    spatial: [ 12, 12 ]
  }
  num_classes: 3
  layer {
    name: "c1"
    type: "Conv2D"
    conv { filters: 4 kernel: 5 pad: 2 }
  }
  layer { type: "ReLU" }
  layer {
    type: "MaxPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "c2"
    type: "Conv2D"
    conv { filters: 8 kernel: 3 }
  }
  layer { type: "ReLU" }
  layer {
    type: "MaxPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "f1"
    type: "Dense"
    dense { units: 10 }
  }
  layer { type: "ReLU" }
  layer {
    name: "f2"
    type: "Dense"
    dense { units: 3 }
  }
)pb";

TEST(Model, ReluMaxPoolModelGradientMatchesFiniteDifferences) {
  Fixture f(kReluModel, 2);
  const std::vector<float> x = random_values(2 * 144, 3, 0.f, 1.f);
  const std::vector<int32_t> y = {2, 0};
  expect_loss_gradients_match(
      f, x, y,
      {.epsilon = 1e-3, .abs_tolerance = 5e-4, .rel_tolerance = 2e-2, .max_kink_fraction = 0.1});
}

// Volumes and sequences through whole models: Conv3D and Conv1D as first layers (parameter
// gradients only), batch norm in training mode, pooling in 3-D and 1-D. (A bias right before batch
// norm has no gradient: the normalization removes it, so these layers have none.)
constexpr const char* kVolumeModel = R"pb(
  input {
    channels: 1
    spatial: [ 6, 6, 4 ]
  }
  num_classes: 3
  layer {
    name: "c1"
    type: "Conv3D"
    conv { filters: 3 kernel: 3 pad: 1 no_bias: true }
  }
  layer { name: "bn" type: "BatchNorm" }
  layer { type: "Tanh" }
  layer {
    type: "AvgPool3D"
    pool { kernel: 2 }
  }
  layer {
    name: "c2"
    type: "Conv3D"
    conv {
      filters: 4
      kernel: [ 3, 3, 2 ]
    }
  }
  layer { type: "Sigmoid" }
  layer {
    name: "f1"
    type: "Dense"
    dense { units: 3 }
  }
)pb";

constexpr const char* kSequenceModel = R"pb(
  input {
    channels: 2
    spatial: [ 20 ]
  }
  num_classes: 3
  layer {
    name: "c1"
    type: "Conv1D"
    conv { filters: 4 kernel: 5 stride: 2 pad: 2 no_bias: true }
  }
  layer { name: "bn" type: "BatchNorm" }
  layer { type: "ELU" }
  layer {
    type: "AvgPool1D"
    pool { kernel: 2 }
  }
  layer {
    name: "f1"
    type: "Dense"
    dense { units: 6 no_bias: true }
  }
  layer { name: "bn2" type: "BatchNorm" }
  layer { type: "Tanh" }
  layer {
    name: "f2"
    type: "Dense"
    dense { units: 3 }
  }
)pb";

TEST(Model, VolumeModelGradientMatchesFiniteDifferences) {
  Fixture f(kVolumeModel, 3);
  const std::vector<float> x = random_values(3 * 144, 11, 0.f, 1.f);
  expect_loss_gradients_match(f, x, {2, 0, 1},
                              {.epsilon = 1e-2, .abs_tolerance = 2e-4, .rel_tolerance = 3e-2});
}

TEST(Model, SequenceModelGradientMatchesFiniteDifferences) {
  Fixture f(kSequenceModel, 4);
  const std::vector<float> x = random_values(4 * 40, 12, 0.f, 1.f);
  expect_loss_gradients_match(f, x, {2, 0, 1, 1},
                              {.epsilon = 1e-2, .abs_tolerance = 2e-4, .rel_tolerance = 3e-2});
}

TEST(Model, SameSeedSameParametersAfterTraining) {
  const std::string text = kSmallModel;
  auto train = [&](uint64_t seed) {
    Fixture f(text, 4, seed);
    Optimizer optimizer(f.model.parameters(), {.learning_rate = 0.1f, .momentum = 0.9f});
    for (int step = 0; step < 5; ++step) {
      f.loss(random_values(4 * 2 * 9 * 8, 100 + step, 0.f, 1.f), {0, 1, 2, 3}, 4);
      f.model.backward(f.stream);
      optimizer.step();
    }
    std::vector<float> all;
    for (Parameter* p : f.model.parameters()) {
      const std::vector<float> v = p->value.to_plain();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const std::vector<float> a = train(11), b = train(11), c = train(12);
  EXPECT_EQ(a, b);  // bitwise
  EXPECT_NE(a, c);
}

TEST(Model, HeInitialisationHasTheRightSpread) {
  Fixture f(R"pb(input {
                   channels: 64
                   spatial: [ 7, 7 ]
                 }
                 num_classes: 2
                 layer {
                   name: "c"
                   type: "Conv2D"
                   conv { filters: 128 kernel: 3 pad: 1 }
                 }
                 layer { type: "ReLU" }
                 layer {
                   name: "d"
                   type: "Dense"
                   dense { units: 2 }
                 })pb",
            1);
  const std::vector<Parameter*> params = f.model.parameters();
  const std::vector<float> w = params[0]->value.to_plain();  // 73,728 values, fan_in 576
  double sum = 0, sq = 0;
  for (float v : w) {
    sum += v;
    sq += double(v) * v;
  }
  const double mean = sum / double(w.size()),
               stddev = std::sqrt(sq / double(w.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(stddev, std::sqrt(2.0 / 576), 0.02 * std::sqrt(2.0 / 576));
  for (float v : params[1]->value.to_plain()) EXPECT_EQ(v, 0.f);  // bias
  // The last Dense layer has no activation after it: Xavier uniform, |w| <= sqrt(6 / (fan sum)).
  const double limit = std::sqrt(6.0 / (128 * 49 + 2));
  for (float v : params[2]->value.to_plain()) EXPECT_LE(std::abs(v), limit);
}

TEST(Model, PaddedBatchGivesTheGradientOfItsRealRows) {
  // A batch of 5 holding 3 real samples must produce the gradient a batch of 3 produces.
  Fixture padded(kSmallModel, 5), exact(kSmallModel, 3);
  std::vector<float> x = random_values(3 * 144, 5, 0.f, 1.f);
  const std::vector<int32_t> y = {1, 2, 3, 0, 0};
  const double loss3 = exact.loss(x, y, 3);
  exact.model.backward(exact.stream);
  x.resize(5 * 144, 0.f);
  const double loss5 = padded.loss(x, y, 3);
  padded.model.backward(padded.stream);
  EXPECT_NEAR(loss3, loss5, 1e-6);
  const auto pa = padded.model.parameters(), pe = exact.model.parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::vector<float> a = pa[i]->grad.to_plain(), e = pe[i]->grad.to_plain();
    for (size_t j = 0; j < a.size(); ++j) ASSERT_NEAR(a[j], e[j], 1e-5) << pa[i]->name << j;
  }
}

TEST(Model, FlattenThenDenseEqualsImplicitFlatten) {
  const std::string body = R"pb(input {
                                  channels: 3
                                  spatial: [ 4, 4 ]
                                }
                                num_classes: 5
                                layer {
                                  name: "c"
                                  type: "Conv2D"
                                  conv { filters: 16 kernel: 3 pad: 1 }
                                })pb";
  Fixture implicit(body + R"pb(layer {
                                 name: "d"
                                 type: "Dense"
                                 dense { units: 5 }
                               })pb",
                   2);
  Fixture explicit_(body + R"pb(layer { type: "Flatten" }
                                layer {
                                  name: "d"
                                  type: "Dense"
                                  dense { units: 5 }
                                })pb",
                    2);
  const std::vector<float> x = random_values(2 * 48, 9);
  const double a = implicit.loss(x, {1, 4}, 2), b = explicit_.loss(x, {1, 4}, 2);
  EXPECT_NEAR(a, b, 1e-5);
  const std::vector<float> la = implicit.model.logits().to_plain();
  const std::vector<float> lb = explicit_.model.logits().to_plain();
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-5);
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// A ReLU followed by max pooling runs swapped inside Model (model.cc). The same layers driven one
// by one in the spec's order must give the same logits and parameter gradients.
TEST(Model, ReluBeforeMaxPoolGivesTheSpecOrdersResults) {
  Fixture f(R"pb(input {
                   channels: 2
                   spatial: [ 6, 6 ]
                 }
                 num_classes: 3
                 layer {
                   name: "c"
                   type: "Conv2D"
                   conv { filters: 8 kernel: 3 pad: 1 }
                 }
                 layer { type: "ReLU" }
                 layer {
                   type: "MaxPool2D"
                   pool { kernel: 2 }
                 }
                 layer {
                   name: "d"
                   type: "Dense"
                   dense { units: 3 }
                 })pb",
            2);
  const std::vector<float> x = random_values(2 * 72, 4, -1.f, 1.f);
  const std::vector<int32_t> y = {2, 1};
  f.loss(x, y, 2);
  const std::vector<float> logits = f.model.logits().to_plain();
  const std::vector<float> dlogits = [&] {
    std::vector<float> g(6);
    for (int i = 0; i < 2; ++i) {  // softmax minus one-hot, over the batch of 2
      double sum = 0;
      for (int j = 0; j < 3; ++j) sum += std::exp(double(logits[size_t(i * 3 + j)]));
      for (int j = 0; j < 3; ++j) {
        const double p = std::exp(double(logits[size_t(i * 3 + j)])) / sum;
        g[size_t(i * 3 + j)] = static_cast<float>((p - (j == y[size_t(i)] ? 1 : 0)) / 2);
      }
    }
    return g;
  }();
  f.model.backward(f.stream);
  const std::vector<Parameter*> params = f.model.parameters();

  testing::LayerHarness conv(R"(type: "Conv2D" conv { filters: 8 kernel: 3 pad: 1 })",
                             {2, 2, 6, 6});
  testing::LayerHarness relu(R"(type: "ReLU")", {2, 8, 6, 6});
  testing::LayerHarness pool(R"(type: "MaxPool2D" pool { kernel: 2 })", {2, 8, 6, 6});
  testing::LayerHarness dense(R"(type: "Dense" dense { units: 3 })", {2, 8, 3, 3});
  conv.set_param(0, params[0]->value.to_plain());
  conv.set_param(1, params[1]->value.to_plain());
  dense.set_param(0, params[2]->value.to_plain());
  dense.set_param(1, params[3]->value.to_plain());
  conv.set_src(x);
  relu.set_src(conv.forward());
  pool.set_src(relu.forward());
  dense.set_src(pool.forward());
  const std::vector<float> reference = dense.forward();
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits[i], reference[i], 1e-5);

  dense.backward(dlogits);
  pool.backward(dense.diff_src());
  relu.backward(pool.diff_src());
  conv.backward(relu.diff_src());
  const std::vector<std::vector<float>> expected = {conv.grad(0), conv.grad(1), dense.grad(0),
                                                    dense.grad(1)};
  for (size_t p = 0; p < 4; ++p) {
    const std::vector<float> got = params[p]->grad.to_plain();
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], expected[p][i], 1e-5) << params[p]->name << "[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace convoy
