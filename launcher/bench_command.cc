// convoy bench: training-step throughput of a model on synthetic data (uniform pixels, random
// labels), so that it measures compute and communication and nothing else. Prints one JSON line.
//
// Under mpirun it trains data-parallel and also measures the gradient reducer: the time a step
// waits for reductions after backward (communication not hidden), the reducer's own time for one
// step's gradients without any compute (pack, bucketed all-reduce, unpack), and a raw
// MPI_Allreduce of the same bytes in one buffer, in the same run.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "core/stopwatch.h"
#include "core/trainer.h"
#include "core/weighted_layer.h"
#include "dist/data_parallel.h"
#include "launcher/command_support.h"
#include "launcher/run_job.h"

namespace convoy {

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Median milliseconds of `body` over `repeats` runs, every rank in step (a barrier-like sum first).
template <typename F>
double timed_median(Communicator& comm, int repeats, F&& body) {
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    double sync = 0;
    comm.allreduce_sum(std::span<double>(&sync, 1));
    const Stopwatch run;
    body();
    ms.push_back(run.milliseconds());
  }
  return median(ms);
}

// Each layer's forward and backward time, and the rest of a step's work in the training process:
// the input's copy, the loss (with the logits' forward reorder; their backward reorder, if any,
// is counted in the last layer's backward) and the optimizer's update.
// "step_breakdown" sums them up as convolutions and dense layers against everything else.
void per_layer_times(Model& model, Optimizer& optimizer, const dnnl::stream& stream,
                     const Batch& batch, int64_t steps, nlohmann::json& line) {
  const size_t n = model.layer_count();
  std::vector<double> fwd(n, 0.0), bwd(n, 0.0);
  double input = 0, loss = 0, update = 0;
  for (int64_t s = 0; s < steps; ++s) {
    Stopwatch mark;
    model.set_input({batch.samples.data(), batch.samples.size()});
    input += mark.lap_milliseconds();
    auto lap = [&](std::vector<double>& into) {
      return [&](size_t i) { into[i] += mark.lap_milliseconds(); };
    };
    model.forward(stream, lap(fwd));
    model.loss(stream, batch.labels, batch.count);
    loss += mark.lap_milliseconds();
    model.backward(stream, lap(bwd));
    optimizer.step();
    update += mark.lap_milliseconds();
  }
  const double scale = 1.0 / double(steps);
  nlohmann::json layers = nlohmann::json::array();
  double weighted = 0, other = input + loss + update;
  for (size_t i = 0; i < n; ++i) {
    // Each parameter's gradient as the gradient reducer sends it (padding included), in the
    // order it takes them.
    nlohmann::json gradient_bytes = nlohmann::json::array();
    for (const Parameter& p : model.layer(i).parameters()) gradient_bytes.push_back(p.grad.bytes());
    layers.push_back({{"name", model.layer(i).name()},
                      {"forward_ms", fwd[i] * scale},
                      {"backward_ms", bwd[i] * scale},
                      {"gradient_bytes", gradient_bytes}});
    (dynamic_cast<const WeightedLayer*>(&model.layer(i)) != nullptr ? weighted : other) +=
        fwd[i] + bwd[i];
  }
  line["layers"] = layers;
  line["step_breakdown"] = {{"input_ms", input * scale},
                            {"loss_ms", loss * scale},
                            {"optimizer_ms", update * scale},
                            {"conv_and_dense_ms", weighted * scale},
                            {"everything_else_ms", other * scale},
                            {"everything_else_fraction", other / (weighted + other)}};
}

int bench(const BenchCommand& cmd, Job& job) {
  const int threads = job.threads(cmd.threads);
  const Precision precision = precision_flag(cmd.precision);
  const pb::ModelSpec spec = job.agree([&] {
    pb::ModelSpec s = for_flag("--model", [&] { return load_model_spec(cmd.model); });
    plan_model(s, cmd.model);
    return s;
  });
  const ModelPlan plan = plan_model(spec, cmd.model);

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Model model(spec, cmd.batch_size, engine, Model::Mode::kTrain, cmd.model, precision);
  model.initialize(1);
  Optimizer optimizer(model.parameters(), {.learning_rate = 0.01f, .momentum = 0.9f});
  std::optional<GradientReducer> reducer;
  std::optional<DataParallel> group;
  if (job.comm() != nullptr) {
    if (job.size() > 1) {
      reducer.emplace(*job.comm(), model, stream, static_cast<size_t>(cmd.bucket_mb * (1 << 20)));
    }
    group.emplace(*job.comm(), reducer ? &*reducer : nullptr);
  }
  Trainer trainer(model, optimizer, stream, group ? &*group : nullptr);

  Batch batch;
  batch.samples = AlignedBuffer<float>(static_cast<size_t>(cmd.batch_size * model.sample_size()));
  batch.labels.resize(static_cast<size_t>(cmd.batch_size));
  batch.count = cmd.batch_size;
  Rng rng(mix_seed(42, static_cast<uint64_t>(job.rank())));
  for (size_t i = 0; i < batch.samples.size(); ++i) {
    batch.samples[i] = static_cast<float>(rng.uniform());
  }
  for (int32_t& label : batch.labels) {
    label = static_cast<int32_t>(rng.below(static_cast<uint64_t>(plan.num_classes)));
  }

  for (int64_t i = 0; i < cmd.warmup; ++i) trainer.step(batch);
  const GradientReducer::Stats before = reducer ? reducer->stats() : GradientReducer::Stats{};
  std::vector<double> step_ms;
  const Stopwatch total;
  for (int64_t i = 0; i < cmd.steps; ++i) {
    const Stopwatch step;
    trainer.step(batch);
    step_ms.push_back(step.milliseconds());
  }
  const double total_ms = total.milliseconds();
  std::vector<double> sorted = step_ms;
  std::sort(sorted.begin(), sorted.end());

  int64_t parameters = 0;
  for (const Parameter* p : model.parameters()) parameters += p->value.size();
  nlohmann::json line = {
      {"model", spec.name().empty() ? cmd.model : spec.name()},
      {"parameters", parameters},
      {"batch_size", cmd.batch_size},
      {"threads", threads},
      {"precision", precision_name(precision)},
      {"world_size", job.size()},
      {"steps", cmd.steps},
      {"warmup", cmd.warmup},
      {"images_per_second", double(cmd.batch_size * job.size() * cmd.steps) / (total_ms / 1000.0)},
      {"ms_per_step", total_ms / double(cmd.steps)},
      {"ms_per_step_median", sorted[sorted.size() / 2]},
      {"ms_per_step_min", sorted.front()},
  };

  if (reducer) {
    const GradientReducer::Stats after = reducer->stats();
    const double steps = double(after.steps - before.steps);
    const double exposed_ms =
        1000.0 * (after.finish_wait_seconds - before.finish_wait_seconds) / steps;
    const double busy_ms = 1000.0 * (after.reduce_seconds - before.reduce_seconds) / steps;
    const int repeats = static_cast<int>(std::max<int64_t>(cmd.steps, 10));
    // The reducer alone: every layer's gradients handed over at once, then finish().
    const double reducer_ms = timed_median(*job.comm(), repeats, [&] {
      for (size_t l = model.layer_count(); l-- > 0;) reducer->layer_ready(l);
      reducer->finish();
    });
    AlignedBuffer<float> raw(reducer->bytes_per_step() / sizeof(float));
    nlohmann::json bucket_bytes = nlohmann::json::array();
    for (const Bucket& b : reducer->buckets()) bucket_bytes.push_back(b.elements * sizeof(float));
    const double raw_ms = timed_median(*job.comm(), repeats, [&] {
      job.comm()->allreduce_sum({raw.data(), raw.size()});
    });
    line["reducer"] = {
        {"bytes_per_step", reducer->bytes_per_step()},
        {"buckets", reducer->buckets().size()},
        {"bucket_bytes", bucket_bytes},
        {"bucket_mb", cmd.bucket_mb},
        {"zero_copy", reducer->zero_copy()},
        {"allreduce_ms", reducer_ms},
        {"raw_mpi_allreduce_ms", raw_ms},
        {"bandwidth_vs_raw", raw_ms / reducer_ms},
        {"communication_ms_per_step", busy_ms},
        {"exposed_ms_per_step", exposed_ms},
        {"hidden_fraction", busy_ms > 0 ? std::clamp(1.0 - exposed_ms / busy_ms, 0.0, 1.0) : 0.0},
        {"buckets_done_during_backward",
         double(after.buckets_done_before_finish - before.buckets_done_before_finish) /
             double(after.buckets_reduced - before.buckets_reduced)},
    };
  }
  if (cmd.per_layer) per_layer_times(model, optimizer, stream, batch, cmd.steps, line);
  if (job.is_root()) fmt::print("{}\n", line.dump());
  return 0;
}

}  // namespace

int run_bench(const BenchCommand& cmd) {
  return run_job([&](Job& job) { return bench(cmd, job); });
}

}  // namespace convoy
