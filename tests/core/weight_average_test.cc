// The moving average of the weights (core/weight_average.h): its update against a double-precision
// reference, the swap into the model, training that evaluates it (and leaves the model's own
// values in place), and its round trip through checkpoints.
#include "core/weight_average.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/model_spec.h"
#include "core/random.h"
#include "core/trainer.h"
#include "testing/error_of.h"
#include "testing/layer_harness.h"
#include "testing/run_command.h"

namespace convoy {
namespace {

// Convolution, batch norm on 3-D and 2-D activations, dense layers and dropout.
constexpr const char* kSpec = R"pb(
  input {
    channels: 1
    spatial: [ 64 ]
  }
  num_classes: 3
  layer {
    type: "Conv1D"
    conv { filters: 4 kernel: 5 stride: 2 no_bias: true }
  }
  layer { type: "BatchNorm" }
  layer { type: "ReLU" }
  layer {
    type: "Dense"
    dense { units: 16 }
  }
  layer { type: "BatchNorm" }
  layer { type: "ReLU" }
  layer {
    type: "Dropout"
    dropout { rate: 0.2 }
  }
  layer {
    type: "Dense"
    dense { units: 3 }
  }
)pb";

// Noisy sine waves; the class is the frequency.
Dataset waves(int64_t count, uint64_t seed) {
  Dataset d;
  d.name = "waves";
  d.shape = {1, {64}};
  d.class_names = {"1", "2", "3"};
  Rng rng(seed);
  for (int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<int32_t>(rng.below(3));
    const double phase = 2 * std::numbers::pi * rng.uniform();
    for (int t = 0; t < 64; ++t) {
      d.samples.push_back(static_cast<float>(
          std::sin(2 * std::numbers::pi * (label + 1) * t / 64.0 + phase) + 0.8 * rng.normal()));
    }
    d.labels.push_back(label);
  }
  return d;
}

std::vector<Tensor*> values_of(Model& model) {
  std::vector<Tensor*> v;
  for (Parameter* p : model.parameters()) v.push_back(&p->value);
  for (Buffer* b : model.buffers()) v.push_back(&b->value);
  return v;
}

TEST(WeightAverage, UpdateFollowsTheDecayAndItsWarmUp) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  Model model(parse_model_text(kSpec, "test"), 8, engine, Model::Mode::kTrain, "test");
  constexpr double kDecay = 0.75;
  WeightAverage average(model, static_cast<float>(kDecay));
  const std::vector<Tensor*> values = values_of(model);
  std::vector<std::vector<double>> expected(values.size());
  for (int t = 1; t <= 40; ++t) {  // the decay reaches its cap, 0.75, at t = 26
    // New values each step, as training would leave them.
    const double d = t == 1 ? 0.0 : std::min(kDecay, (1.0 + t) / (10.0 + t));
    for (size_t i = 0; i < values.size(); ++i) {
      const std::vector<float> v =
          testing::random_values(static_cast<size_t>(values[i]->size()), 100 * t + i);
      values[i]->copy_from_plain(v);
      expected[i].resize(v.size());
      for (size_t j = 0; j < v.size(); ++j) expected[i][j] = d * expected[i][j] + (1 - d) * v[j];
    }
    average.update();
  }
  EXPECT_EQ(average.updates(), 40);
  const size_t n_parameters = model.parameters().size();
  for (size_t i = 0; i < values.size(); ++i) {
    const std::vector<float> got = i < n_parameters ? average.parameter(i).to_plain()
                                                    : average.buffer(i - n_parameters).to_plain();
    ASSERT_EQ(got.size(), expected[i].size());
    for (size_t j = 0; j < got.size(); ++j) ASSERT_NEAR(got[j], expected[i][j], 1e-6) << i;
  }

  // Swapping puts the average into the model; swapping again gives the model its values back.
  const std::vector<float> own = values[0]->to_plain();
  const std::vector<float> averaged_values = average.parameter(0).to_plain();
  ASSERT_NE(averaged_values, own);
  {
    const AveragedWeights averaged(&average);
    EXPECT_EQ(values[0]->to_plain(), averaged_values);
  }
  EXPECT_EQ(values[0]->to_plain(), own);
  EXPECT_EQ(average.parameter(0).to_plain(), averaged_values);
  // Also when what runs meanwhile throws (an evaluation that finds a NaN).
  try {
    const AveragedWeights averaged(&average);
    throw Error::invalid_input("diverged");
  } catch (const Error&) {
  }
  EXPECT_EQ(values[0]->to_plain(), own);
}

TEST(WeightAverage, AnAverageOfNothingIsNotSwappedInNorSaved) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  Model model(parse_model_text(kSpec, "test"), 8, engine, Model::Mode::kTrain, "test");
  model.initialize(2);
  WeightAverage average(model, 0.9f);
  const std::vector<float> own = model.parameters()[0]->value.to_plain();
  {
    const AveragedWeights averaged(&average);
    EXPECT_EQ(model.parameters()[0]->value.to_plain(), own);
  }
  EXPECT_FALSE(make_checkpoint(model, nullptr, {}, &average).has_average());
}

class TrainingWithAnAverage : public ::testing::TestWithParam<Precision> {};

// fit() evaluates the average and leaves the model's own values in place; a model given the
// average from the checkpoint evaluates exactly the same, and the model's own values another way.
TEST_P(TrainingWithAnAverage, EvaluatesTheAverageAndCheckpointsBoth) {
  const Precision precision = GetParam();
  if (precision == Precision::kBFloat16 && !testing::cpu_has_bf16()) {
    GTEST_SKIP() << "this CPU has no AVX512-BF16 (nor AMX)";
  }
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  const pb::ModelSpec spec = parse_model_text(kSpec, "test");
  Model model(spec, 16, engine, Model::Mode::kTrain, "test", precision);
  model.initialize(5);
  Optimizer optimizer(model.parameters(), {.learning_rate = 0.1f, .momentum = 0.9f});
  WeightAverage average(model, 0.5f);  // capped from the 8th step on
  const Dataset train = waves(320, 1), test = waves(90, 2);
  TrainOptions options;
  options.epochs = 3;
  Trainer trainer(model, optimizer, stream);
  trainer.set_weight_average(&average);
  const TrainSummary summary = trainer.fit(train, options, nullptr, &test);
  ASSERT_TRUE(summary.test);
  EXPECT_EQ(average.updates(), summary.steps);
  EXPECT_GT(summary.test->confusion.accuracy(), 0.6);  // it learned (chance: 1/3)

  const pb::Checkpoint checkpoint = make_checkpoint(model, &optimizer, {}, &average);
  ASSERT_EQ(checkpoint.average().parameter_size(), checkpoint.parameter_size());
  ASSERT_EQ(checkpoint.average().buffer_size(), 4);
  EXPECT_EQ(checkpoint.average().updates(), summary.steps);
  EXPECT_FLOAT_EQ(checkpoint.average().decay(), 0.5f);
  // The average is not the model's own values (training continues from those).
  EXPECT_NE(checkpoint.average().parameter(0).SerializeAsString(),
            checkpoint.parameter(0).SerializeAsString());

  const auto counts = [](const EvalResult& r) {
    const std::span<const int64_t> c = r.confusion.counts();
    return std::vector<int64_t>(c.begin(), c.end());
  };
  Model averaged(spec, 16, engine, Model::Mode::kTrain, "test", precision);
  restore_checkpoint(with_averaged_weights(checkpoint, "checkpoint"), averaged, nullptr,
                     "checkpoint");
  const EvalResult of_average = evaluate(averaged, stream, test);
  EXPECT_EQ(counts(of_average), counts(*summary.test));
  EXPECT_DOUBLE_EQ(of_average.loss, summary.test->loss);
  const EvalResult of_model = evaluate(model, stream, test);
  EXPECT_GT(std::fabs(of_model.loss - of_average.loss), 1e-6)
      << "the average evaluates as the model's own values do: the comparison cannot fail";
}

INSTANTIATE_TEST_SUITE_P(Precisions, TrainingWithAnAverage,
                         ::testing::Values(Precision::kFloat32, Precision::kBFloat16),
                         [](const ::testing::TestParamInfo<Precision>& p) {
                           return std::string(precision_name(p.param));
                         });

TEST(WeightAverage, CheckpointsRestoreItOrStartItAfresh) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const pb::ModelSpec spec = parse_model_text(kSpec, "test");
  Model model(spec, 8, engine, Model::Mode::kTrain, "test");
  model.initialize(3);
  WeightAverage average(model, 0.9f);
  for (int t = 0; t < 3; ++t) {
    for (Tensor* v : values_of(model)) {
      v->copy_from_plain(testing::random_values(static_cast<size_t>(v->size()), t));
    }
    average.update();
  }
  const pb::Checkpoint checkpoint = make_checkpoint(model, nullptr, {}, &average);

  Model other(spec, 5, engine, Model::Mode::kTrain, "test");
  WeightAverage restored(other, 0.9f);
  restore_checkpoint(checkpoint, other, nullptr, "a.ckpt", &restored);
  EXPECT_EQ(restored.updates(), 3);
  for (size_t i = 0; i < model.parameters().size(); ++i) {
    EXPECT_EQ(restored.parameter(i).to_plain(), average.parameter(i).to_plain());
  }
  for (size_t i = 0; i < model.buffers().size(); ++i) {
    EXPECT_EQ(restored.buffer(i).to_plain(), average.buffer(i).to_plain());
  }
  // Evaluating and exporting take the average in place of the model's own values.
  const pb::Checkpoint swapped = with_averaged_weights(checkpoint, "a.ckpt");
  EXPECT_FALSE(swapped.has_average());
  EXPECT_EQ(swapped.parameter(0).SerializeAsString(),
            checkpoint.average().parameter(0).SerializeAsString());
  EXPECT_EQ(swapped.buffer(1).SerializeAsString(),
            checkpoint.average().buffer(1).SerializeAsString());
  // Without an average, a checkpoint is taken as it is.
  pb::Checkpoint plain = checkpoint;
  plain.clear_average();
  EXPECT_EQ(with_averaged_weights(plain, "a.ckpt").SerializeAsString(), plain.SerializeAsString());
  // An average that does not match the values it stands for is refused as corrupt.
  pb::Checkpoint bad = checkpoint;
  bad.mutable_average()->mutable_buffer()->RemoveLast();
  EXPECT_EQ(testing::error_of([&] { with_averaged_weights(bad, "c.ckpt"); }),
            "'c.ckpt': corrupt checkpoint (its average of the weights does not match its "
            "parameters)");
  bad = checkpoint;
  bad.mutable_average()->mutable_parameter(0)->set_name("conv9.weight");
  EXPECT_THROW(with_averaged_weights(bad, "c.ckpt"), Error);

  // A checkpoint without one (averaging switched on when resuming) starts the average afresh.
  restore_checkpoint(plain, other, nullptr, "a.ckpt", &restored);
  EXPECT_EQ(restored.updates(), 0);
  // One that does not fit the model is refused, naming the file.
  pb::Checkpoint broken = checkpoint;
  broken.mutable_average()->mutable_buffer()->RemoveLast();
  EXPECT_EQ(
      testing::error_of([&] { restore_checkpoint(broken, other, nullptr, "b.ckpt", &restored); }),
      "b.ckpt: holds an average of 9 parameters and 3 buffers, the model has 9 and 4");
}

}  // namespace
}  // namespace convoy
