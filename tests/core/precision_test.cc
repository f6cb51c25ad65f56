// bf16 mixed precision (core/precision.h) against the fp32 model it must approximate: the same
// initial parameters (the master weights are f32 and drawn alike), logits and every parameter
// gradient within bf16's rounding of the fp32 ones (and not equal to them: bf16 really computes),
// and checkpoints that are the fp32 model's. Where the CPU has no bf16, the tests that need it say
// so and are skipped; the refusal itself is tested on every CPU.
#include "core/precision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <oneapi/dnnl/dnnl.hpp>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/model_spec.h"
#include "core/optimizer.h"
#include "core/random.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

#define SKIP_WITHOUT_BF16()                                                \
  if (!testing::cpu_has_bf16()) {                                          \
    GTEST_SKIP() << "this CPU (as oneDNN may use it) has no AVX512-BF16: " \
                 << precision_unsupported(Precision::kBFloat16);           \
  }

TEST(Precision, ParsesItsNamesAndRefusesOthers) {
  EXPECT_EQ(parse_precision("fp32", "--precision"), Precision::kFloat32);
  EXPECT_EQ(parse_precision("bf16", "--precision"), Precision::kBFloat16);
  const std::string e = testing::error_of([] { parse_precision("fp16", "--precision"); });
  EXPECT_EQ(e, "--precision: precision must be fp32 or bf16, got 'fp16'");
}

TEST(Precision, Bf16IsRefusedExactlyWhereTheCpuLacksIt) {
  EXPECT_EQ(precision_unsupported(Precision::kFloat32), "");
  // A witness independent of oneDNN: the CPU flags the kernel read (unless ONEDNN_MAX_CPU_ISA
  // holds oneDNN below what the CPU has).
  if (std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr) {
    const std::string cpuinfo = testing::read_file("/proc/cpuinfo");
    EXPECT_EQ(testing::cpu_has_bf16(), cpuinfo.find(" avx512_bf16") != std::string::npos);
  }
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  if (testing::cpu_has_bf16()) {
    EXPECT_EQ(precision_unsupported(Precision::kBFloat16), "");
    return;
  }
  const std::string e = testing::error_of([&] {
    Model model(load_model_spec("lenet5"), 4, engine, Model::Mode::kTrain, "lenet5",
                Precision::kBFloat16);
  });
  EXPECT_TRUE(e.starts_with("lenet5: bf16 needs a CPU with AVX512-BF16 or AMX")) << e;
}

// auto: bf16 with AMX, or with AVX512-BF16 on AMD's CPUs; fp32 elsewhere. The witness is the
// kernel's view of the CPU (/proc/cpuinfo), unless ONEDNN_MAX_CPU_ISA holds oneDNN below it.
TEST(Precision, AutoIsBf16WithAmxOrOnAmdsAvx512Bf16) {
  const std::string cpuinfo = testing::read_file("/proc/cpuinfo");
  const bool amd = cpuinfo.find("vendor_id\t: AuthenticAMD") != std::string::npos;
  EXPECT_EQ(cpu_vendor() == "AuthenticAMD", amd) << cpu_vendor();
  EXPECT_EQ(cpu_vendor() == "GenuineIntel",
            cpuinfo.find("vendor_id\t: GenuineIntel") != std::string::npos)
      << cpu_vendor();
  bool amx = testing::cpu_has_amx(), bf16 = testing::cpu_has_bf16();
  if (std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr) {
    amx = cpuinfo.find(" amx_bf16") != std::string::npos;
    bf16 = cpuinfo.find(" avx512_bf16") != std::string::npos;
  }
  const Precision expected = amx || (bf16 && amd) ? Precision::kBFloat16 : Precision::kFloat32;
  EXPECT_EQ(precision_name(preferred_precision()), std::string(precision_name(expected)))
      << "amx " << amx << ", avx512_bf16 " << bf16 << ", AMD " << amd;
}

struct Pair {
  Pair(const std::string& name, int64_t batch)
      : engine(dnnl::engine::kind::cpu, 0),
        stream(engine),
        fp32(load_model_spec(name), batch, engine, Model::Mode::kTrain, name),
        bf16(load_model_spec(name), batch, engine, Model::Mode::kTrain, name,
             Precision::kBFloat16) {
    fp32.initialize(3);
    bf16.initialize(3);
  }
  dnnl::engine engine;
  dnnl::stream stream;
  Model fp32, bf16;
};

// ||a - b|| / ||b||
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

class Bf16Model : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Model, LogitsAndGradientsAreFp32sWithinBf16Rounding) {
  SKIP_WITHOUT_BF16();
  constexpr int64_t kBatch = 16;
  Pair p(GetParam(), kBatch);
  std::vector<float> x(static_cast<size_t>(kBatch * p.fp32.sample_size()));
  Rng rng(5);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  std::vector<int32_t> y(kBatch);
  for (int32_t& label : y) label = static_cast<int32_t>(rng.below(p.fp32.num_classes()));

  double losses[2];
  int i = 0;
  for (Model* m : {&p.fp32, &p.bf16}) {
    m->set_input(x);
    m->forward(p.stream);
    losses[i++] = m->loss(p.stream, y, kBatch).loss;
    m->backward(p.stream);
  }
  EXPECT_NEAR(losses[1], losses[0], 0.02 * losses[0]);
  const std::vector<float> logits32 = p.fp32.logits().to_plain();
  const std::vector<float> logits16 = p.bf16.logits().to_plain();
  const double logit_error = relative_error(logits16, logits32);
  EXPECT_LT(logit_error, 0.03);
  EXPECT_GT(logit_error, 0.0) << "bf16 logits equal fp32's: the model did not compute in bf16";

  // Gradients travel back between layers in bf16, and a rounding can move a max-pooling argmax or
  // a ReLU's sign, so an early layer's gradient differs by more than one rounding: within 30% of
  // fp32's. (PyTorch's CPU autocast differs from its fp32 by the same amount on these models:
  // 10-20% for the first layers of conv1d_seq and fashion_bn, 1% for the last.) A bias that batch
  // norm follows has a zero gradient in exact arithmetic; there both are to be tiny beside the
  // layer's weight gradient.
  const std::vector<Parameter*> a = p.fp32.parameters(), b = p.bf16.parameters();
  ASSERT_EQ(a.size(), b.size());
  double weight_grad_norm = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    // The master weights are f32 and initialised alike, bit for bit.
    EXPECT_EQ(a[k]->value.to_plain(), b[k]->value.to_plain()) << a[k]->name;
    const std::vector<float> g32 = a[k]->grad.to_plain(), g16 = b[k]->grad.to_plain();
    const double norm = std::sqrt(std::inner_product(g32.begin(), g32.end(), g32.begin(), 0.0));
    if (!a[k]->is_bias()) weight_grad_norm = norm;
    if (a[k]->is_bias() && norm < 1e-3 * weight_grad_norm) {
      const double norm16 = std::sqrt(std::inner_product(g16.begin(), g16.end(), g16.begin(), 0.0));
      EXPECT_LT(norm16, 1e-2 * weight_grad_norm) << a[k]->name;
      continue;
    }
    EXPECT_LT(relative_error(g16, g32), 0.3) << a[k]->name;
  }
}

// Built for inference (as `convoy evaluate` builds it), bf16 gives fp32's logits within rounding:
// batch norm, also where it converts to f32 (after a dense layer), runs as in training's
// evaluation.
TEST_P(Bf16Model, InferenceLogitsAreFp32sWithinBf16Rounding) {
  SKIP_WITHOUT_BF16();
  constexpr int64_t kBatch = 8;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  const pb::ModelSpec spec = load_model_spec(GetParam());
  Model fp32(spec, kBatch, engine, Model::Mode::kInference, GetParam());
  Model bf16(spec, kBatch, engine, Model::Mode::kInference, GetParam(), Precision::kBFloat16);
  fp32.initialize(3);
  bf16.initialize(3);
  std::vector<float> x(static_cast<size_t>(kBatch * fp32.sample_size()));
  Rng rng(6);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  for (Model* m : {&fp32, &bf16}) {
    m->set_evaluating(true);
    m->set_input(x);
    m->forward(stream);
  }
  const double error = relative_error(bf16.logits().to_plain(), fp32.logits().to_plain());
  EXPECT_LT(error, 0.03);
  EXPECT_GT(error, 0.0);
}

INSTANTIATE_TEST_SUITE_P(BuiltIns, Bf16Model,
                         ::testing::Values("lenet5", "fashion_cnn", "fashion_bn", "fashion_fast",
                                           "conv1d_seq", "conv3d_vol", "alexnet_cifar"));

TEST(Precision, Bf16CheckpointsAreFp32CheckpointsAndStepsMatchFp32Closely) {
  SKIP_WITHOUT_BF16();
  constexpr int64_t kBatch = 8;
  Pair p("fashion_bn", kBatch);
  Optimizer opt32(p.fp32.parameters(), {.learning_rate = 0.05f, .momentum = 0.9f});
  Optimizer opt16(p.bf16.parameters(), {.learning_rate = 0.05f, .momentum = 0.9f});
  Rng rng(9);
  for (int step = 0; step < 5; ++step) {
    std::vector<float> x(static_cast<size_t>(kBatch * p.fp32.sample_size()));
    for (float& v : x) v = static_cast<float>(rng.uniform());
    std::vector<int32_t> y(kBatch);
    for (int32_t& label : y) label = static_cast<int32_t>(rng.below(10));
    for (auto [m, opt] : {std::pair{&p.fp32, &opt32}, std::pair{&p.bf16, &opt16}}) {
      m->set_input(x);
      m->forward(p.stream);
      m->loss(p.stream, y, kBatch);
      m->backward(p.stream);
      opt->step();
      m->update_running_statistics();
    }
  }
  // After 5 steps the parameters (all of them together) still agree.
  const std::vector<Parameter*> a = p.fp32.parameters(), b = p.bf16.parameters();
  std::vector<float> all32, all16;
  for (size_t k = 0; k < a.size(); ++k) {
    for (const float v : a[k]->value.to_plain()) all32.push_back(v);
    for (const float v : b[k]->value.to_plain()) all16.push_back(v);
  }
  EXPECT_LT(relative_error(all16, all32), 0.1);
  // The bf16 model's checkpoint restores into an fp32 model bit for bit, and back.
  const pb::Checkpoint saved = make_checkpoint(p.bf16, &opt16, {});
  Model restored(saved.model(), 4, p.engine, Model::Mode::kTrain, "restored");
  Optimizer opt(restored.parameters(), {.learning_rate = 0.05f, .momentum = 0.9f});
  restore_checkpoint(saved, restored, &opt, "bf16 checkpoint");
  const std::vector<Parameter*> r = restored.parameters();
  for (size_t k = 0; k < b.size(); ++k) {
    EXPECT_EQ(r[k]->value.to_plain(), b[k]->value.to_plain()) << b[k]->name;
  }
  EXPECT_EQ(make_checkpoint(restored, &opt, {}).SerializeAsString(), saved.SerializeAsString());
}

}  // namespace
}  // namespace convoy
