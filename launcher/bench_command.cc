// convoy bench: training-step throughput of a model on synthetic data (uniform pixels, random
// labels), so that it measures compute and nothing else. Prints one JSON line.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "command_support.h"
#include "random.h"
#include "trainer.h"

namespace convoy {

namespace {
using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

int run_bench(const BenchCommand& cmd) {
  const pb::ModelSpec spec = load_model_spec(cmd.model, "--model");
  const ModelPlan plan = plan_model(spec, cmd.model);
  const int threads = setup_threads(cmd.threads);

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Model model(spec, cmd.batch_size, engine, Model::Mode::kTrain, cmd.model);
  model.initialize(1);
  Sgd sgd(model.parameters(), {0.01f, 0.9f, 0.f, false});
  Trainer trainer(model, sgd, stream);

  Batch batch;
  batch.samples = AlignedBuffer<float>(static_cast<size_t>(cmd.batch_size * model.sample_size()));
  batch.labels.resize(static_cast<size_t>(cmd.batch_size));
  batch.count = cmd.batch_size;
  Rng rng(42);
  for (size_t i = 0; i < batch.samples.size(); ++i) {
    batch.samples[i] = static_cast<float>(rng.uniform());
  }
  for (int32_t& label : batch.labels) {
    label = static_cast<int32_t>(rng.below(static_cast<uint64_t>(plan.num_classes)));
  }

  for (int64_t i = 0; i < cmd.warmup; ++i)
    trainer.step(batch);
  std::vector<double> step_ms;
  const Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < cmd.steps; ++i) {
    const Clock::time_point t0 = Clock::now();
    trainer.step(batch);
    step_ms.push_back(ms_between(t0, Clock::now()));
  }
  const double total_ms = ms_between(start, Clock::now());
  std::vector<double> sorted = step_ms;
  std::sort(sorted.begin(), sorted.end());

  nlohmann::json line = {
      {"model", spec.name().empty() ? cmd.model : spec.name()},
      {"batch_size", cmd.batch_size},
      {"threads", threads},
      {"steps", cmd.steps},
      {"warmup", cmd.warmup},
      {"images_per_second", double(cmd.batch_size * cmd.steps) / (total_ms / 1000.0)},
      {"ms_per_step", total_ms / double(cmd.steps)},
      {"ms_per_step_median", sorted[sorted.size() / 2]},
      {"ms_per_step_min", sorted.front()},
  };

  if (cmd.per_layer) {
    // Per-layer times: the same steps again, with a clock read after every layer.
    const size_t n = model.layer_count();
    std::vector<double> fwd(n, 0.0), bwd(n, 0.0);
    for (int64_t s = 0; s < cmd.steps; ++s) {
      model.set_input({batch.samples.data(), batch.samples.size()});
      Clock::time_point mark = Clock::now();
      model.forward(stream, [&](size_t i) {
        const Clock::time_point now = Clock::now();
        fwd[i] += ms_between(mark, now);
        mark = now;
      });
      model.loss(stream, batch.labels, batch.count);
      mark = Clock::now();
      model.backward(stream, [&](size_t i) {
        const Clock::time_point now = Clock::now();
        bwd[i] += ms_between(mark, now);
        mark = now;
      });
    }
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i = 0; i < n; ++i) {
      layers.push_back({{"name", model.layer(i).name()},
                        {"forward_ms", fwd[i] / double(cmd.steps)},
                        {"backward_ms", bwd[i] / double(cmd.steps)}});
    }
    line["layers"] = layers;
  }
  fmt::print("{}\n", line.dump());
  return 0;
}

}  // namespace convoy
