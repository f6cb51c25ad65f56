#include "core/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace convoy {

double LrSchedule::at(int64_t step, int64_t steps_per_epoch, int64_t total_steps) const {
  const auto warmup_steps =
      static_cast<int64_t>(std::llround(warmup_epochs * double(steps_per_epoch)));
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  const int64_t t = step - warmup_steps;
  switch (kind) {
    case Kind::kConstant:
      return base_lr;
    case Kind::kStep: {
      const int64_t period = std::max<int64_t>(step_epochs * steps_per_epoch, 1);
      return base_lr * std::pow(gamma, double(t / period));
    }
    case Kind::kCosine: {
      const int64_t span = std::max<int64_t>(total_steps - warmup_steps, 1);
      return base_lr * 0.5 * (1.0 + std::cos(std::numbers::pi * double(t) / double(span)));
    }
  }
  return base_lr;
}

LrSchedule::Kind LrSchedule::parse_kind(const std::string& name) {
  if (name == "constant") return Kind::kConstant;
  if (name == "step") return Kind::kStep;
  if (name == "cosine") return Kind::kCosine;
  throw Error::invalid_input("unknown learning-rate schedule '" + name +
                             "' (constant, step, cosine)");
}

}  // namespace convoy
