// convoy evaluate: rebuild the model a checkpoint describes and report its test metrics. Under
// mpirun the test set is split across the ranks and their confusion matrices summed, so the
// report is exactly the single-process one.
#include <fmt/format.h>

#include "core/checkpoint.h"
#include "core/trainer.h"
#include "dist/data_parallel.h"
#include "launcher/command_support.h"
#include "launcher/report.h"
#include "launcher/run_job.h"

namespace convoy {
namespace {

// The precision the checkpoint's run evaluated with (its model's train block records it),
// falling back to fp32 where this CPU has no bf16: a checkpoint trained on an AMX machine still
// evaluates on any other.
Precision recorded_precision(const EvaluateCommand& cmd, const pb::TrainSpec& recorded, bool say) {
  // Checkpoints from before the record, and models without a train block: train's default.
  if (!recorded.has_precision()) return Precision::kFloat32;
  if (recorded.precision() == "auto") return preferred_precision();
  const Precision precision =
      parse_precision(recorded.precision(), cmd.checkpoint + ": model.train.precision");
  const std::string unsupported = precision_unsupported(precision);
  if (unsupported.empty()) return precision;
  if (say) {
    fmt::print(stderr, "convoy: evaluating in fp32, not the {} the checkpoint was trained in: {}\n",
               recorded.precision(), unsupported);
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
    const Precision precision =
        flagged ? given
                : job.agree([&] { return recorded_precision(cmd, recorded, job.is_root()); });
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
