// convoy train: build the model, train it, evaluate it, report, optionally save a checkpoint.
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "command_support.h"
#include "progress.h"
#include "report.h"
#include "trainer.h"

namespace convoy {

int run_train(const TrainCommand& cmd) {
  const pb::ModelSpec spec = load_model_spec(cmd.model, "--model");
  const ModelPlan plan = plan_model(spec, cmd.model);
  if (!cmd.save.empty()) check_writable(cmd.save, "--save");
  const int threads = setup_threads(cmd.threads);
  const Dataset train = load_split(cmd.data, Split::kTrain, plan, cmd.model);
  const Dataset test = load_split(cmd.data, Split::kTest, plan, cmd.model);
  check_batch_fits(cmd.batch_size, train);

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  Model model(spec, cmd.batch_size, engine, Model::Mode::kTrain, cmd.model);
  model.initialize(cmd.seed);
  Sgd sgd(model.parameters(), {static_cast<float>(cmd.lr), static_cast<float>(cmd.momentum),
                               static_cast<float>(cmd.weight_decay), cmd.nesterov});

  int64_t parameter_count = 0;
  for (const Parameter* p : model.parameters())
    parameter_count += p->value.size();
  if (cmd.log_json) {
    const nlohmann::json start = {{"event", "start"},
                                  {"model", spec.name().empty() ? cmd.model : spec.name()},
                                  {"parameters", parameter_count},
                                  {"dataset", train.name},
                                  {"train_samples", train.count()},
                                  {"test_samples", test.count()},
                                  {"epochs", cmd.epochs},
                                  {"batch_size", cmd.batch_size},
                                  {"lr", cmd.lr},
                                  {"lr_schedule", cmd.lr_schedule},
                                  {"momentum", cmd.momentum},
                                  {"weight_decay", cmd.weight_decay},
                                  {"seed", cmd.seed},
                                  {"threads", threads}};
    fmt::print("{}\n", start.dump());
  } else {
    fmt::print(stderr,
               "convoy: training {} ({} parameters) on {} ({} train / {} test samples), "
               "batch {}, {} thread(s)\n",
               cmd.model, parameter_count, train.name, train.count(), test.count(), cmd.batch_size,
               threads);
  }

  ProgressReporter progress(
      {.json = cmd.log_json, .terminal = ::isatty(STDERR_FILENO) == 1, .epochs = cmd.epochs});
  Trainer trainer(model, sgd, stream);
  const TrainSummary summary =
      trainer.fit(train,
                  {cmd.epochs, cmd.max_steps, cmd.seed,
                   LrSchedule{LrSchedule::parse_kind(cmd.lr_schedule), cmd.lr, cmd.warmup_epochs,
                              cmd.lr_step_epochs, cmd.lr_gamma}},
                  &progress, &test);

  if (!cmd.save.empty()) {
    save_checkpoint(make_checkpoint(model, &sgd,
                                    {summary.epochs, summary.steps, cmd.seed,
                                     static_cast<int32_t>(cmd.batch_size), train.name}),
                    cmd.save);
  }
  print_final_report(*summary.test, test.class_names, &summary, cmd.log_json);
  if (!cmd.save.empty() && !cmd.log_json) fmt::print("checkpoint saved to {}\n", cmd.save);
  return 0;
}

}  // namespace convoy
