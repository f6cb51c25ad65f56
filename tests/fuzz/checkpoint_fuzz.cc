// Checkpoint files: the envelope (magic, version, CRC-32) through parse_checkpoint, then what
// `convoy evaluate` and a resuming `convoy train` do with one: build the model it carries (when
// small) and restore it (its average of the weights, if any, in place of its parameters), and
// restore it into a model with SGD and Adam state (and an average) and take a step. Every
// input is tried twice: as a whole file, and as the body of an envelope given the right checksum,
// so that mutations reach the body's fields and not only the checksum test.
#include <cstdlib>
#include <memory>

#include "core/checkpoint.h"
#include "core/crc32.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/optimizer.h"
#include "fuzz_support.h"
#include "proto/checkpoint.pb.h"

namespace {

struct Target {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  convoy::Model model{convoy::parse_model_text(convoy::fuzz::kTinyModelText, "tiny"), 2, engine,
                      convoy::Model::Mode::kTrain, "tiny"};
  convoy::Optimizer sgd{model.parameters(), {}};
  convoy::Optimizer adam{model.parameters(), {.kind = convoy::OptimizerConfig::Kind::kAdam}};
  convoy::WeightAverage average{model, 0.9f};
};

void use(const std::string& bytes) {
  static Target* const target = new Target;  // built once: oneDNN primitives are slow to make
  convoy::fuzz::refused_or_accepted([&] {
    const convoy::pb::Checkpoint ck = convoy::parse_checkpoint(bytes, "fuzz.ckpt");
    // As `convoy evaluate` does: the model the checkpoint carries, built and restored.
    convoy::fuzz::refused_or_accepted([&] {
      const convoy::ModelPlan plan = convoy::plan_model(ck.model(), "fuzz.ckpt");
      convoy::check_model_fits(plan, 2, /*training=*/false, "fuzz.ckpt");
      if (!convoy::fuzz::small_enough_to_build(plan)) return;
      convoy::Model model(ck.model(), 2, target->engine, convoy::Model::Mode::kInference,
                          "fuzz.ckpt");
      convoy::restore_checkpoint(convoy::with_averaged_weights(ck, "fuzz.ckpt"), model, nullptr,
                                 "fuzz.ckpt");
    });
    // As a resuming `convoy train` does: restored with the optimizer's state and the average of
    // the weights, then a step.
    convoy::fuzz::refused_or_accepted([&] {
      convoy::restore_checkpoint(ck, target->model, &target->sgd, "fuzz.ckpt", &target->average);
      target->sgd.step();
      target->average.update();
    });
    convoy::restore_checkpoint(ck, target->model, &target->adam, "fuzz.ckpt");
    target->adam.step();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  use(bytes);
  convoy::pb::CheckpointFile file;
  file.set_magic("convoy-checkpoint");
  file.set_format_version(1);
  file.set_body(bytes);
  file.set_body_crc32(convoy::crc32(bytes));
  use(file.SerializeAsString());
  return 0;
}
