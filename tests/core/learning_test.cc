// Learning, not just running: the built-in 1-D and 3-D ConvNets (with batch norm) learn generated
// tasks far above chance in a few seconds, and a model with batch norm and dropout evaluates on
// its running statistics, the same before and after a checkpoint round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/augmentation.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/model_spec.h"
#include "core/random.h"
#include "core/trainer.h"
#include "testing/run_command.h"

namespace convoy {
namespace {

// Noisy sine waves of 128 steps; the class is the frequency (2, 4, 6 or 8 cycles), the phase and
// amplitude are random.
Dataset waveforms(int64_t count, uint64_t seed) {
  Dataset d;
  d.name = "waves";
  d.shape = {1, {128}};
  d.class_names = {"2", "4", "6", "8"};
  Rng rng(seed);
  for (int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<int32_t>(rng.below(4));
    const double cycles = 2.0 * (label + 1);
    const double phase = 2 * std::numbers::pi * rng.uniform();
    const double amplitude = 0.5 + rng.uniform();
    for (int t = 0; t < 128; ++t) {
      d.samples.push_back(static_cast<float>(
          amplitude * std::sin(2 * std::numbers::pi * cycles * t / 128.0 + phase) +
          0.6 * rng.normal()));
    }
    d.labels.push_back(label);
  }
  return d;
}

// 16x16x16 noisy volumes: a plane wave (2 cycles, random phase) varying along z, y or x (classes
// 0-2), or a bright ball of radius 3 at a random place (class 3).
Dataset volumes(int64_t count, uint64_t seed) {
  Dataset d;
  d.name = "volumes";
  d.shape = {1, {16, 16, 16}};
  d.class_names = {"wave-z", "wave-y", "wave-x", "ball"};
  Rng rng(seed);
  for (int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<int32_t>(rng.below(4));
    const double phase = 2 * std::numbers::pi * rng.uniform();
    const std::array<double, 3> centre{3 + 10 * rng.uniform(), 3 + 10 * rng.uniform(),
                                       3 + 10 * rng.uniform()};
    for (int z = 0; z < 16; ++z)
      for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 16; ++x) {
          const std::array<double, 3> p{double(z), double(y), double(x)};
          double v = 0;
          if (label < 3) {
            v = std::sin(2 * std::numbers::pi * 2 * p[static_cast<size_t>(label)] / 16 + phase);
          } else {
            double r2 = 0;
            for (size_t a = 0; a < 3; ++a) r2 += (p[a] - centre[a]) * (p[a] - centre[a]);
            v = r2 <= 9 ? 1.5 : 0;
          }
          d.samples.push_back(static_cast<float>(v + 0.7 * rng.normal()));
        }
    d.labels.push_back(label);
  }
  return d;
}

double train_and_test(const std::string& model_name, const Dataset& train, const Dataset& test,
                      int64_t epochs, float lr = 0.05f, Precision precision = Precision::kFloat32) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  Model model(load_model_spec(model_name), 32, engine, Model::Mode::kTrain, model_name, precision);
  model.initialize(1);
  Optimizer optimizer(model.parameters(), {.learning_rate = lr, .momentum = 0.9f});
  TrainOptions options;
  options.epochs = epochs;
  options.schedule.base_lr = lr;
  options.schedule.kind = LrSchedule::Kind::kCosine;
  Trainer trainer(model, optimizer, stream);
  const TrainSummary summary = trainer.fit(train, options, nullptr, &test);
  return summary.test->confusion.accuracy();
}

TEST(Learning, Conv1dSeqTellsWaveFrequencies) {
  const double accuracy = train_and_test("conv1d_seq", waveforms(1024, 1), waveforms(400, 2), 3);
  EXPECT_GT(accuracy, 0.9) << "chance is 0.25";
}

TEST(Learning, Conv3dVolTellsWaveDirectionsFromBalls) {
  const double accuracy = train_and_test("conv3d_vol", volumes(640, 3), volumes(200, 4), 2, 0.02f);
  EXPECT_GT(accuracy, 0.85) << "chance is 0.25";
}

// The same tasks trained in bf16 mixed precision learn as well.
TEST(Learning, Bf16LearnsAsFp32Does) {
  if (!testing::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16 (nor AMX)";
  EXPECT_GT(train_and_test("conv1d_seq", waveforms(1024, 1), waveforms(400, 2), 3, 0.05f,
                           Precision::kBFloat16),
            0.9);
  EXPECT_GT(train_and_test("conv3d_vol", volumes(640, 3), volumes(200, 4), 2, 0.02f,
                           Precision::kBFloat16),
            0.85);
}

constexpr const char* kBnDropout = R"pb(
  input {
    channels: 1
    spatial: [ 128 ]
  }
  num_classes: 4
  layer {
    type: "Conv1D"
    conv { filters: 4 kernel: 5 stride: 2 }
  }
  layer { type: "BatchNorm" }
  layer { type: "ReLU" }
  layer {
    type: "Dense"
    dense { units: 16 }
  }
  layer { name: "bn" type: "BatchNorm" }
  layer {
    type: "Dropout"
    dropout { rate: 0.5 }
  }
  layer {
    type: "Dense"
    dense { units: 4 }
  }
)pb";

TEST(Learning, EvaluationUsesRunningStatisticsAndSurvivesACheckpoint) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  const pb::ModelSpec spec = parse_model_text(kBnDropout, "test");
  Model model(spec, 16, engine, Model::Mode::kTrain, "test");
  model.initialize(5);
  Optimizer optimizer(model.parameters(), {.learning_rate = 0.05f, .momentum = 0.9f});
  const Dataset train = waveforms(160, 5), test = waveforms(50, 6);
  TrainOptions options;
  options.epochs = 2;
  Trainer trainer(model, optimizer, stream);
  const TrainSummary summary = trainer.fit(train, options, nullptr, &test);

  // The running statistics moved away from their start (mean 0, variance 1).
  ASSERT_EQ(model.buffers().size(), 4u);
  EXPECT_EQ(model.buffers()[2]->name, "bn.running_mean");
  const std::vector<float> running_mean = model.buffers()[2]->value.to_plain();
  double moved = 0;
  for (float m : running_mean) moved += std::abs(m);
  EXPECT_GT(moved, 1e-3);

  // Evaluation is deterministic (dropout off) and does not depend on the batch: evaluating
  // twice gives the same result, and a model built for inference from a checkpoint agrees.
  const EvalResult again = evaluate(model, stream, test);
  const auto counts = [](EvalResult r) {
    const std::span<const int64_t> c = r.confusion.counts();
    return std::vector<int64_t>(c.begin(), c.end());
  };
  EXPECT_EQ(counts(again), counts(*summary.test));
  EXPECT_DOUBLE_EQ(again.loss, summary.test->loss);
  const pb::Checkpoint checkpoint = make_checkpoint(model, &optimizer, {});
  EXPECT_EQ(checkpoint.buffer_size(), 4);
  Model restored(checkpoint.model(), 7, engine, Model::Mode::kInference, "test");
  restore_checkpoint(checkpoint, restored, nullptr, "checkpoint");
  const EvalResult from_checkpoint = evaluate(restored, stream, test);
  EXPECT_EQ(counts(from_checkpoint), counts(again));
  EXPECT_NEAR(from_checkpoint.loss, again.loss, 1e-5);

  // A checkpoint without the running statistics is refused.
  pb::Checkpoint stripped = checkpoint;
  stripped.clear_buffer();
  try {
    restore_checkpoint(stripped, restored, nullptr, "old.ckpt");
    ADD_FAILURE() << "accepted a checkpoint without running statistics";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("old.ckpt: holds 0 buffers (running statistics)"),
              std::string::npos)
        << e.what();
  }
}

// Test-time flips: evaluate(..., mirror) averages each sample's logits with its mirror image's,
// checked against forward passes run here and a cross-entropy computed in double; a padded last
// batch (7 samples, batch 4) counts its real rows only.
TEST(Learning, EvaluationWithMirroredSamplesAveragesTheLogits) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  Model model(load_model_spec("lenet5"), 4, engine, Model::Mode::kInference, "lenet5");
  model.initialize(11);
  Dataset data;
  data.name = "random";
  data.shape = {1, {28, 28}};
  data.class_names = class_names_for("mnist");
  Rng rng(4);
  for (int i = 0; i < 7; ++i) {
    for (int j = 0; j < 28 * 28; ++j) data.samples.push_back(static_cast<float>(rng.uniform()));
    data.labels.push_back(static_cast<int32_t>(rng.below(10)));
  }
  const auto logits_of = [&](bool mirrored) {
    std::vector<float> all;
    for (int64_t first = 0; first < data.count(); first += 4) {
      std::vector<float> batch(4 * 28 * 28, 0.f);
      for (int64_t i = first; i < std::min<int64_t>(first + 4, data.count()); ++i) {
        const std::vector<float> x = data.sample(i);
        std::copy(x.begin(), x.end(), batch.begin() + (i - first) * 28 * 28);
      }
      if (mirrored) mirror_last_dimension(batch, 28);
      model.set_input(batch);
      model.forward(stream);
      const std::vector<float> z = model.logits().to_plain();
      all.insert(all.end(), z.begin(), z.begin() + 10 * std::min<int64_t>(4, data.count() - first));
    }
    return all;
  };
  const std::vector<float> plain = logits_of(false), mirrored = logits_of(true);
  double loss = 0;
  ConfusionMatrix expected(10);
  for (int64_t i = 0; i < data.count(); ++i) {
    std::vector<double> z(10);
    for (size_t k = 0; k < 10; ++k) {
      z[k] = 0.5 * (double(plain[static_cast<size_t>(i) * 10 + k]) +
                    mirrored[static_cast<size_t>(i) * 10 + k]);
    }
    const double top = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (const double v : z) sum += std::exp(v - top);
    loss += top + std::log(sum) - z[static_cast<size_t>(data.labels[static_cast<size_t>(i)])];
    expected.add(data.labels[static_cast<size_t>(i)],
                 static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin()));
  }
  const EvalResult flipped = evaluate(model, stream, data, nullptr, /*mirror=*/true);
  EXPECT_NEAR(flipped.loss, loss / double(data.count()), 1e-5);
  const std::span<const int64_t> got = flipped.confusion.counts(), want = expected.counts();
  EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end()));
  // And without mirroring, the loss is another.
  EXPECT_GT(std::fabs(evaluate(model, stream, data).loss - flipped.loss), 1e-4);
}

}  // namespace
}  // namespace convoy
