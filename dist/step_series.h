// StepSeries: a job's step records reduced to at most kMaxPoints points for charts, kept up to date
// record by record in bounded memory, however long the job runs.
//
// Point i covers the steps (i * width, (i + 1) * width]; `width` starts at 1 and doubles (merging
// neighbouring points) whenever a step falls beyond the last point. Each point averages what its
// steps reported: rank 0's loss, accuracy and learning rate (rank 0 reports for the whole global
// batch) and the throughput of all ranks together. Steps reported twice (a job resumed from a
// checkpoint repeats the steps after it) average into the same point, so a chart never zig-zags.
#pragma once

#include <cstdint>
#include <vector>

#include "proto/coordinator.pb.h"

namespace convoy {

class StepSeries {
 public:
  static constexpr size_t kMaxPoints = 2048;  // even: pairs merge

  struct Point {
    int64_t first_step = 0, last_step = 0;  // the steps seen in it
    double loss = 0, accuracy = 0, learning_rate = 0;
    double images_per_second = 0;  // all ranks together
    double wall_time = 0;          // the newest record's
  };

  void add(const pb::StepRecord& record);
  // The points with data, in step order.
  std::vector<Point> points() const;
  int64_t width() const { return width_; }

 private:
  struct Sum {
    int64_t first_step = INT64_MAX, last_step = 0;
    double loss = 0, accuracy = 0, learning_rate = 0, rank0 = 0;  // rank 0's records
    double images_per_second = 0, wall_time = 0;
    void merge(const Sum& other);
  };
  std::vector<Sum> sums_;
  int64_t width_ = 1;
};

}  // namespace convoy
