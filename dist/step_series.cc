#include "dist/step_series.h"

#include <algorithm>

namespace convoy {

void StepSeries::Sum::merge(const Sum& other) {
  first_step = std::min(first_step, other.first_step);
  last_step = std::max(last_step, other.last_step);
  loss += other.loss;
  accuracy += other.accuracy;
  learning_rate += other.learning_rate;
  rank0 += other.rank0;
  images_per_second += other.images_per_second;
  wall_time = std::max(wall_time, other.wall_time);
}

void StepSeries::add(const pb::StepRecord& record) {
  if (record.step() < 1) return;
  // Wider points until the step fits: neighbours merge pairwise (an odd last one alone). The
  // points held may be fewer than kMaxPoints (a job's first record may come at any step).
  while ((record.step() - 1) / width_ >= static_cast<int64_t>(kMaxPoints)) {
    const size_t half = (sums_.size() + 1) / 2;
    for (size_t i = 0; i < half; ++i) {
      Sum merged = sums_[2 * i];
      if (2 * i + 1 < sums_.size()) merged.merge(sums_[2 * i + 1]);
      sums_[i] = merged;
    }
    sums_.resize(half);
    width_ *= 2;
  }
  const auto index = static_cast<size_t>((record.step() - 1) / width_);
  if (index >= sums_.size()) sums_.resize(index + 1);
  Sum& s = sums_[index];
  s.first_step = std::min(s.first_step, record.step());
  s.last_step = std::max(s.last_step, record.step());
  if (record.rank() == 0) {
    s.loss += record.loss();
    s.accuracy += record.accuracy();
    s.learning_rate += record.learning_rate();
    s.rank0 += 1;
  }
  s.images_per_second += record.images_per_second();
  s.wall_time = std::max(s.wall_time, record.wall_time());
}

std::vector<StepSeries::Point> StepSeries::points() const {
  std::vector<Point> out;
  for (const Sum& s : sums_) {
    // Points without a record of rank 0 have no loss to show.
    if (s.rank0 == 0) continue;
    out.push_back({.first_step = s.first_step,
                   .last_step = s.last_step,
                   .loss = s.loss / s.rank0,
                   .accuracy = s.accuracy / s.rank0,
                   .learning_rate = s.learning_rate / s.rank0,
                   // Every rank reports each step once: the sum over ranks per step of rank 0.
                   .images_per_second = s.images_per_second / s.rank0,
                   .wall_time = s.wall_time});
  }
  return out;
}

}  // namespace convoy
