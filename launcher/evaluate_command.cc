// convoy evaluate: rebuild the model a checkpoint describes and report its test metrics. Under
// mpirun the test set is split across the ranks and their confusion matrices summed, so the
// report is exactly the single-process one.
#include "core/checkpoint.h"
#include "core/trainer.h"
#include "dist/data_parallel.h"
#include "launcher/command_support.h"
#include "launcher/report.h"
#include "launcher/run_job.h"

namespace convoy {

int run_evaluate(const EvaluateCommand& cmd) {
  return run_job([&](Job& job) {
    job.threads(cmd.threads);
    const Precision precision = precision_flag(cmd.precision);
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

    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    Model model(checkpoint.model(), cmd.batch_size, engine, Model::Mode::kInference, source,
                precision);
    restore_checkpoint(checkpoint, model, nullptr, cmd.checkpoint);
    std::optional<DataParallel> group;
    if (job.comm() != nullptr) group.emplace(*job.comm(), nullptr);
    const EvalResult result =
        evaluate(model, stream, test, group ? &*group : nullptr, cmd.test_flip);
    if (job.is_root()) {
      print_final_report(result, test.class_names, nullptr, job.size(), cmd.log_json);
    }
    return 0;
  });
}

}  // namespace convoy
