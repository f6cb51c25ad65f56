// Learning-rate schedules, table-driven against values worked out by hand.
#include "core/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"
#include "testing/error_of.h"

namespace convoy {
namespace {

struct Case {
  LrSchedule schedule;
  int64_t step;
  double expected;
};

TEST(LrSchedule, Table) {
  using K = LrSchedule::Kind;
  // 10 steps per epoch, 100 steps in the run.
  const Case cases[] = {
      {{K::kConstant, 0.1}, 0, 0.1},
      {{K::kConstant, 0.1}, 99, 0.1},
      {{K::kStep, 0.1, 0.0, 3, 0.5}, 29, 0.1},    // epoch 2.9: not decayed yet
      {{K::kStep, 0.1, 0.0, 3, 0.5}, 30, 0.05},   // epoch 3
      {{K::kStep, 0.1, 0.0, 3, 0.5}, 65, 0.025},  // epoch 6.5
      {{K::kCosine, 0.1}, 0, 0.1},
      {{K::kCosine, 0.1}, 50, 0.05},  // half way
      {{K::kCosine, 0.1}, 25, 0.05 * (1 + std::cos(std::numbers::pi / 4))},
      {{K::kCosine, 0.1}, 100, 0.0},
      // Warm-up over 2 epochs (20 steps): lr * (step + 1) / 20, then the schedule from t = 0.
      {{K::kConstant, 0.2, 2.0}, 0, 0.01},
      {{K::kConstant, 0.2, 2.0}, 9, 0.1},
      {{K::kConstant, 0.2, 2.0}, 19, 0.2},
      {{K::kCosine, 0.2, 2.0}, 20, 0.2},
      {{K::kCosine, 0.2, 2.0}, 60, 0.1},         // half of the 80 steps after warm-up
      {{K::kStep, 0.2, 2.0, 1, 0.1}, 30, 0.02},  // 10 steps after warm-up: one decay
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(c.schedule.at(c.step, 10, 100), c.expected, 1e-12)
        << "kind " << static_cast<int>(c.schedule.kind) << " step " << c.step;
  }
}

TEST(LrSchedule, ParseKind) {
  EXPECT_EQ(LrSchedule::parse_kind("cosine"), LrSchedule::Kind::kCosine);
  EXPECT_EQ(LrSchedule::parse_kind("step"), LrSchedule::Kind::kStep);
  EXPECT_EQ(LrSchedule::parse_kind("constant"), LrSchedule::Kind::kConstant);
  EXPECT_EQ(testing::kind_of([] { LrSchedule::parse_kind("linear"); }), ErrorKind::kInvalidInput);
}

}  // namespace
}  // namespace convoy
