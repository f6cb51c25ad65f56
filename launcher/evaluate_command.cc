// convoy evaluate: rebuild the model a checkpoint describes and report its test metrics.
#include "checkpoint.h"
#include "command_support.h"
#include "report.h"
#include "trainer.h"

namespace convoy {

int run_evaluate(const EvaluateCommand& cmd) {
  const pb::Checkpoint checkpoint = load_checkpoint(cmd.checkpoint);
  const std::string source = cmd.checkpoint + ": model";
  const ModelPlan plan = plan_model(checkpoint.model(), source);
  setup_threads(cmd.threads);
  DataOptions data = cmd.data;
  if (!checkpoint.dataset().empty() && data.dataset == "fashion-mnist" && data.dir.empty()) {
    data.dataset = checkpoint.dataset();
  }
  const Dataset test = load_split(data, Split::kTest, plan, cmd.checkpoint);

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Model model(checkpoint.model(), cmd.batch_size, engine, Model::Mode::kInference, source);
  restore_checkpoint(checkpoint, model, nullptr, cmd.checkpoint);
  print_final_report(evaluate(model, stream, test), test.class_names, nullptr, cmd.log_json);
  return 0;
}

}  // namespace convoy
