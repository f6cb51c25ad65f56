// The gradient reducer with the in-process fake communicator: averages, bucket layouts, and a
// whole data-parallel training run that must equal one process with the global batch.
#include "dist/gradient_reducer.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "core/model_spec.h"
#include "core/trainer.h"
#include "dist/data_parallel.h"
#include "dist/fake_communicator.h"
#include "testing/layer_harness.h"

namespace convoy {
namespace {

constexpr const char* kModel = R"(
  input { channels: 1 spatial: [8, 8] }
  num_classes: 3
  layer { name: "c1" type: "Conv2D" conv { filters: 8 kernel: 3 pad: 1 } }
  layer { type: "ReLU" }
  layer { type: "MaxPool2D" pool { kernel: 2 } }
  layer { name: "c2" type: "Conv2D" conv { filters: 16 kernel: 3 } }
  layer { type: "ReLU" }
  layer { name: "f1" type: "Dense" dense { units: 20 } }
  layer { name: "f2" type: "Dense" dense { units: 3 } }
)";

// The value rank `rank` puts in element `i` of gradient `p`.
float grad_value(int rank, size_t p, size_t i) {
  return static_cast<float>(rank + 1) * 0.25f + static_cast<float>(p) - 0.001f * float(i);
}

// Every rank sets its gradients, reduces, and checks the sum; returns rank 0's buckets.
std::vector<Bucket> expect_sum(int ranks, size_t bucket_bytes) {
  std::vector<Bucket> buckets;
  FakeWorld world(ranks);
  world.run([&](Communicator& comm) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    Model model(parse_model_text(kModel, "test"), 2, engine, Model::Mode::kTrain, "test");
    GradientReducer reducer(comm, model, stream, bucket_bytes);
    EXPECT_TRUE(reducer.zero_copy());  // same binary, same layouts
    const std::vector<Parameter*> params = model.parameters();
    for (int step = 0; step < 2; ++step) {  // twice: the reducer resets between steps
      for (size_t p = 0; p < params.size(); ++p) {
        std::vector<float> g(static_cast<size_t>(params[p]->grad.size()));
        for (size_t i = 0; i < g.size(); ++i) g[i] = grad_value(comm.rank(), p, i) + float(step);
        params[p]->grad.copy_from_plain(g);
      }
      for (size_t l = model.layer_count(); l-- > 0;) reducer.layer_ready(l);
      std::array<double, 2> totals{double(comm.rank() + 1), 0.5};  // ride with the last bucket
      reducer.finish(totals);
      EXPECT_EQ(totals[0], ranks * (ranks + 1) / 2);
      EXPECT_EQ(totals[1], 0.5 * ranks);
      for (size_t p = 0; p < params.size(); ++p) {
        const std::vector<float> g = params[p]->grad.to_plain();
        for (size_t i = 0; i < g.size(); ++i) {
          double sum = 0;
          for (int r = 0; r < ranks; ++r) sum += grad_value(r, p, i) + float(step);
          ASSERT_NEAR(g[i], sum, 1e-5 * (1 + std::abs(sum))) << params[p]->name << "[" << i << "]";
        }
      }
    }
    const GradientReducer::Stats stats = reducer.stats();
    EXPECT_EQ(stats.steps, 2);
    EXPECT_EQ(stats.buckets_reduced, int64_t(2 * reducer.buckets().size()));
    if (comm.rank() == 0) buckets = reducer.buckets();
  });
  return buckets;
}

// Bytes of each parameter's gradient as this CPU's oneDNN lays it out (blocked layouts pad
// channels to 8 on AVX2, to 16 on AVX-512), in parameter order.
std::vector<size_t> gradient_bytes() {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  Model model(parse_model_text(kModel, "test"), 2, engine, Model::Mode::kTrain, "test");
  std::vector<size_t> bytes;
  for (const Parameter* p : model.parameters()) bytes.push_back(p->grad.bytes());
  return bytes;
}

// 8 gradients; f1.weight (1280 values, more with block padding) is the largest.
TEST(GradientReducer, SumsWithSmallBuckets) {
  const std::vector<Bucket> b = expect_sum(2, gradient_bytes()[4]);
  EXPECT_GE(b.size(), 2u);
  EXPECT_LT(b.size(), 8u);
}
TEST(GradientReducer, SumsWithOneBucketPerGradient) {
  EXPECT_EQ(expect_sum(3, 0).size(), 8u);
}
TEST(GradientReducer, SumsWithEverythingInOneBucket) {
  EXPECT_EQ(expect_sum(3, 1 << 30).size(), 1u);
}
TEST(GradientReducer, GradientLargerThanTheBucketSizeClosesItsBucket) {
  // Parameters: c1.w c1.b c2.w c2.b f1.w f1.b f2.w f2.b; backward makes f2.w, f2.b, f1.w, f1.b,
  // ... ready in that order. A bucket one float larger than f2's two gradients stays open after
  // them; f1.weight, larger than the whole bucket on every CPU, joins it and closes it, and
  // f1.bias starts the next one.
  const std::vector<size_t> bytes = gradient_bytes();
  const size_t bucket = bytes[6] + bytes[7] + 4;
  ASSERT_GT(bytes[4], bucket) << "the model no longer has a gradient larger than the bucket";
  const std::vector<Bucket> b = expect_sum(2, bucket);
  ASSERT_GE(b.size(), 2u);
  EXPECT_EQ(b[0].members, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(b[1].members.front(), 3u);
}

TEST(GradientReducer, BucketsFollowBackwardOrder) {
  FakeWorld world(1);
  world.run([&](Communicator& comm) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    Model model(parse_model_text(kModel, "test"), 2, engine, Model::Mode::kTrain, "test");
    const std::vector<Parameter*> params = model.parameters();  // c1.w c1.b c2.w c2.b f1.w ...
    const size_t f2 = (params[6]->grad.bytes() + params[7]->grad.bytes()) / 4;
    GradientReducer reducer(comm, model, dnnl::stream(engine), 4 * f2);  // f2 fills bucket 0
    const std::vector<Bucket>& b = reducer.buckets();
    ASSERT_GE(b.size(), 3u);
    EXPECT_EQ(b[0].members, (std::vector<size_t>{0, 1}));  // f2.weight and f2.bias: ready first
    EXPECT_EQ(b[0].elements, f2);
    EXPECT_EQ(b.back().members.back(), 7u);  // c1.bias: ready last
    size_t total = 0;
    for (const Parameter* p : params) total += p->grad.bytes();
    EXPECT_EQ(reducer.bytes_per_step(), total);
  });
}

// Data-parallel training with N fake ranks and per-rank batch B must give the parameters one
// process gets with batch N*B on the same samples.
std::vector<float> train_and_flatten(int ranks, int64_t batch, const Dataset& data, int steps) {
  std::vector<float> result;
  FakeWorld world(ranks);
  world.run([&](Communicator& comm) {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    Model model(parse_model_text(kModel, "test"), batch, engine, Model::Mode::kTrain, "test");
    model.initialize(5);
    Optimizer optimizer(model.parameters(),
                        {.learning_rate = 0.1f, .momentum = 0.9f, .weight_decay = 1e-3f});
    GradientReducer reducer(comm, model, stream, 4 * 500);
    DataParallel group(comm, &reducer);
    Trainer trainer(model, optimizer, stream, &group);
    trainer.fit(
        data,
        {.epochs = 3, .max_steps = steps, .seed = 11, .schedule = {LrSchedule::Kind::kCosine, 0.1}},
        nullptr);
    if (comm.rank() == 0) {
      for (Parameter* p : model.parameters()) {
        const std::vector<float> v = p->value.to_plain();
        result.insert(result.end(), v.begin(), v.end());
      }
    }
  });
  return result;
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

TEST(DataParallelTraining, EqualsOneProcessWithTheGlobalBatch) {
  // 100 samples: not a multiple of any global batch below.
  Dataset data;
  data.name = "synthetic";
  data.shape = {1, {8, 8}};
  data.class_names = {"a", "b", "c"};
  data.samples = testing::random_values(100 * 64, 3, 0.f, 1.f);
  for (int i = 0; i < 100; ++i) data.labels.push_back(i % 3);
  const std::vector<float> one = train_and_flatten(1, 12, data, 10);
  const std::vector<float> two = train_and_flatten(2, 6, data, 10);
  const std::vector<float> three = train_and_flatten(3, 4, data, 10);
  EXPECT_LT(relative_difference(two, one), 1e-5);
  EXPECT_LT(relative_difference(three, one), 1e-5);
  // The comparison can fail: a per-rank batch of 6 alone trains a different model.
  const std::vector<float> wrong = train_and_flatten(1, 6, data, 10);
  EXPECT_GT(relative_difference(wrong, one), 1e-3);
}

}  // namespace
}  // namespace convoy
