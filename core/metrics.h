// Classification metrics from a confusion matrix: counts[true][predicted].
// Precision, recall and F1 of a class with no predictions (or no samples) are 0, as scikit-learn
// reports them with zero_division=0.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace convoy {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int classes);

  void add(int32_t truth, int32_t predicted, int64_t n = 1);
  // Adds every cell of `other` (same number of classes).
  void merge(const ConfusionMatrix& other);

  int classes() const { return classes_; }
  int64_t at(int truth, int predicted) const { return counts_[index(truth, predicted)]; }
  int64_t total() const;
  double accuracy() const;
  double precision(int c) const;
  double recall(int c) const;
  double f1(int c) const;
  // Row-major counts, classes x classes (for summing across processes).
  std::span<int64_t> counts() { return counts_; }
  std::span<const int64_t> counts() const { return counts_; }

  // A table: one row per class with precision, recall, F1 and support, then the matrix itself.
  std::string report(const std::vector<std::string>& class_names) const;

 private:
  size_t index(int truth, int predicted) const {
    return static_cast<size_t>(truth) * static_cast<size_t>(classes_) +
           static_cast<size_t>(predicted);
  }
  int classes_;
  std::vector<int64_t> counts_;
};

}  // namespace convoy
