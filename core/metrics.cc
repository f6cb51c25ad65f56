#include "core/metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace convoy {

ConfusionMatrix::ConfusionMatrix(int classes)
    : classes_(classes), counts_(static_cast<size_t>(classes) * static_cast<size_t>(classes)) {}

void ConfusionMatrix::add(int32_t truth, int32_t predicted, int64_t n) {
  CONVOY_CHECK(truth >= 0 && truth < classes_ && predicted >= 0 && predicted < classes_);
  counts_[index(truth, predicted)] += n;
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  CONVOY_CHECK(other.classes_ == classes_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

double ConfusionMatrix::accuracy() const {
  int64_t correct = 0;
  for (int c = 0; c < classes_; ++c) correct += at(c, c);
  const int64_t n = total();
  return n == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(n);
}

double ConfusionMatrix::precision(int c) const {
  int64_t predicted = 0;
  for (int t = 0; t < classes_; ++t) predicted += at(t, c);
  return predicted == 0 ? 0.0 : static_cast<double>(at(c, c)) / static_cast<double>(predicted);
}

double ConfusionMatrix::recall(int c) const {
  int64_t actual = 0;
  for (int p = 0; p < classes_; ++p) actual += at(c, p);
  return actual == 0 ? 0.0 : static_cast<double>(at(c, c)) / static_cast<double>(actual);
}

double ConfusionMatrix::f1(int c) const {
  const double p = precision(c), r = recall(c);
  return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r);
}

std::string ConfusionMatrix::report(const std::vector<std::string>& class_names) const {
  CONVOY_CHECK(static_cast<int>(class_names.size()) == classes_);
  size_t width = 5;
  for (const std::string& name : class_names) width = std::max(width, name.size());
  std::string out = fmt::format("{:<{}}  {:>9}  {:>6}  {:>6}  {:>7}\n", "class", width, "precision",
                                "recall", "f1", "support");
  for (int c = 0; c < classes_; ++c) {
    int64_t support = 0;
    for (int p = 0; p < classes_; ++p) support += at(c, p);
    out += fmt::format("{:<{}}  {:>9.4f}  {:>6.4f}  {:>6.4f}  {:>7}\n", class_names[c], width,
                       precision(c), recall(c), f1(c), support);
  }
  out += fmt::format("{:<{}}  {:>9}  {:>6}  {:>6.4f}  {:>7}\n", "accuracy", width, "", "",
                     accuracy(), total());
  out += fmt::format("\nconfusion matrix (rows: true class, columns: predicted)\n{:<{}}", "",
                     width + 3);
  for (int p = 0; p < classes_; ++p) out += fmt::format(" {:>6}", p);
  out += "\n";
  for (int t = 0; t < classes_; ++t) {
    out += fmt::format("{:>2} {:<{}}", t, class_names[t], width);
    for (int p = 0; p < classes_; ++p) out += fmt::format(" {:>6}", at(t, p));
    out += "\n";
  }
  return out;
}

}  // namespace convoy
