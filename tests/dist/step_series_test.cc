// StepSeries: chart points stay at most kMaxPoints and each is the mean of exactly its steps,
// whatever order or size the steps come in.
#include "dist/step_series.h"

#include <gtest/gtest.h>

#include <climits>

namespace convoy {
namespace {

pb::StepRecord record(int rank, int64_t step, double loss, double images = 100) {
  pb::StepRecord r;
  r.set_rank(rank);
  r.set_step(step);
  r.set_loss(loss);
  r.set_images_per_second(images);
  r.set_wall_time(double(step));
  return r;
}

TEST(StepSeries, PointsAreMeansOfTheirStepsAndStayBounded) {
  StepSeries series;
  constexpr int64_t kSteps = 10000;
  for (int64_t s = 1; s <= kSteps; ++s) {
    series.add(record(0, s, double(s)));
    series.add(record(1, s, 1e9));  // other ranks' losses are not charted
  }
  const std::vector<StepSeries::Point> points = series.points();
  ASSERT_LE(points.size(), StepSeries::kMaxPoints);
  EXPECT_EQ(series.width(), 8);  // 10000 steps need 8 per point to fit 2048
  int64_t next = 1;
  for (const StepSeries::Point& p : points) {
    EXPECT_EQ(p.first_step, next);
    EXPECT_EQ(p.loss, double(p.first_step + p.last_step) / 2);  // the mean of consecutive steps
    EXPECT_EQ(p.images_per_second, 200);                        // both ranks together
    next = p.last_step + 1;
  }
  EXPECT_EQ(next, kSteps + 1);
}

TEST(StepSeries, AFirstRecordFarOnAndAHugeStepAreTakenInStride) {
  StepSeries series;
  series.add(record(0, 5001, 1.0));  // a job whose history starts late (resumed elsewhere)
  series.add(record(0, 5002, 3.0));  // 4 steps a point by now: 5001-5004 share one
  std::vector<StepSeries::Point> points = series.points();
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].loss, 2.0);
  series.add(record(0, INT64_MAX, 5.0));
  series.add(record(0, 0, 7.0));  // not a step: ignored
  series.add(record(0, -5, 7.0));
  points = series.points();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].loss, 2.0);
  EXPECT_EQ(points[1].last_step, INT64_MAX);
}

TEST(StepSeries, RepeatedStepsOfAResumedJobAverageIntoTheirPoint) {
  StepSeries series;
  for (int64_t s = 1; s <= 60; ++s) series.add(record(0, s, 1.0));
  for (int64_t s = 41; s <= 100; ++s) series.add(record(0, s, 3.0));  // resumed at 41
  const std::vector<StepSeries::Point> points = series.points();
  ASSERT_EQ(points.size(), 100u);
  EXPECT_EQ(points[39].loss, 1.0);
  EXPECT_EQ(points[40].loss, 2.0);  // step 41: both attempts
  EXPECT_EQ(points[60].loss, 3.0);
}

}  // namespace
}  // namespace convoy
