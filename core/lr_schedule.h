// Learning-rate schedules: the rate for each optimizer step, a pure function of the step.
//
//   constant  lr
//   step      lr * gamma^floor(epoch / step_epochs)          (epoch as a fraction: step /
//   steps_per_epoch) cosine    lr * (1 + cos(pi * t / T)) / 2, from lr down to 0 at the last step
// Any of them can start with a linear warm-up over `warmup_epochs`: the rate grows from
// lr / warmup_steps to lr, and the schedule proper starts after it (t counts from there).
#pragma once

#include <cstdint>
#include <string>

namespace convoy {

struct LrSchedule {
  enum class Kind { kConstant, kStep, kCosine };

  Kind kind = Kind::kConstant;
  double base_lr = 0.05;
  double warmup_epochs = 0.0;
  int64_t step_epochs = 1;  // step: decay every this many epochs
  double gamma = 0.1;       // step: decay factor

  // The rate for optimizer step `step` (0-based) of a run of `total_steps` steps.
  double at(int64_t step, int64_t steps_per_epoch, int64_t total_steps) const;

  // "constant" | "step" | "cosine"; throws Error (invalid input) otherwise.
  static Kind parse_kind(const std::string& name);
};

}  // namespace convoy
