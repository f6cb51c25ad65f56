// convoy evaluate: rebuild the model a checkpoint describes and report its test metrics. Under
// mpirun the test set is split across the ranks and their confusion matrices summed, so the
// report is exactly the single-process one.
#include <fmt/format.h>

#include <span>
#include <vector>

#include "core/checkpoint.h"
#include "core/trainer.h"
#include "dist/data_parallel.h"
#include "launcher/command_support.h"
#include "launcher/report.h"
#include "launcher/run_job.h"

namespace convoy {
namespace {

// The precision the checkpoint's run evaluated with, as its model's train block records it (a
// checkpoint written before runs recorded theirs holds its model's recipe, or nothing: fp32,
// train's default). Where a rank's CPU has no bf16 every rank evaluates in fp32, with a note: a
// checkpoint trained on an AMX machine still evaluates on any other, and ranks never sum
// confusion matrices of two precisions.
Precision recorded_precision(const EvaluateCommand& cmd, const pb::TrainSpec& recorded, Job& job) {
  if (!recorded.has_precision()) return Precision::kFloat32;
  const bool automatic = recorded.precision() == "auto";
  const Precision wanted = automatic ? preferred_precision() : job.agree([&] {
    return parse_precision(recorded.precision(), cmd.checkpoint + ": model.train.precision");
  });
  // Ranks that can run it (for auto: that prefer it), against all ranks.
  std::vector<int64_t> able = {
      wanted == Precision::kBFloat16 && precision_unsupported(Precision::kBFloat16).empty(), 1};
  if (job.comm() != nullptr) job.comm()->allreduce_sum(std::span<int64_t>(able));
  if (able[0] == able[1]) return Precision::kBFloat16;
  if (wanted == Precision::kBFloat16 && !automatic && job.is_root()) {
    fmt::print(stderr, "convoy: evaluating in fp32, not the {} the checkpoint was trained in: {}\n",
               recorded.precision(),
               able[1] > 1
                   ? fmt::format("{} of {} ranks' CPUs have no bf16", able[1] - able[0], able[1])
                   : precision_unsupported(wanted));
  }
  return Precision::kFloat32;
}

}  // namespace

int run_evaluate(const EvaluateCommand& cmd) {
  return run_job([&](Job& job) {
    job.threads(cmd.threads);
    // The flag is checked before any file is read.
    const bool flagged = !cmd.precision.empty();
    const Precision given = flagged ? precision_flag(cmd.precision) : Precision::kFloat32;
    const std::string source = cmd.checkpoint + ": model";
    const auto [checkpoint, test] = job.agree([&] {
      std::pair<pb::Checkpoint, Dataset> in;
      in.first = for_flag("--checkpoint", [&] {
        return with_averaged_weights(load_checkpoint(cmd.checkpoint), cmd.checkpoint);
      });
      const ModelPlan plan = plan_model(in.first.model(), source);
      DataOptions data = cmd.data;
      // Without --dataset, the data set the checkpoint was trained on.
      if (!data.dataset_given && !in.first.dataset().empty()) data.dataset = in.first.dataset();
      in.second = load_split(data, Split::kTest, plan, cmd.checkpoint);
      return in;
    });

    const pb::TrainSpec& recorded = checkpoint.model().train();
    const Precision precision = flagged ? given : recorded_precision(cmd, recorded, job);
    const bool test_flip = cmd.test_flip_given ? cmd.test_flip : recorded.test_flip();
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    Model model(checkpoint.model(), cmd.batch_size, engine, Model::Mode::kInference, source,
                precision);
    restore_checkpoint(checkpoint, model, nullptr, cmd.checkpoint);
    std::optional<DataParallel> group;
    if (job.comm() != nullptr) group.emplace(*job.comm(), nullptr);
    const EvalResult result = evaluate(model, stream, test, group ? &*group : nullptr, test_flip);
    if (job.is_root()) {
      print_final_report(result, test.class_names, nullptr, job.size(), cmd.log_json);
    }
    return 0;
  });
}

}  // namespace convoy
