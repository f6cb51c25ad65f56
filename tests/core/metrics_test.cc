// Confusion-matrix metrics against values worked out by hand.
#include "core/metrics.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

// truth \ predicted   0  1  2
//        0            5  1  0      recall 5/6
//        1            2  3  1      recall 3/6
//        2            0  0  0      no samples: recall 0
// precision: 0 -> 5/7, 1 -> 3/4, 2 -> 0/1
ConfusionMatrix example() {
  ConfusionMatrix cm(3);
  cm.add(0, 0, 5);
  cm.add(0, 1, 1);
  cm.add(1, 0, 2);
  cm.add(1, 1, 3);
  cm.add(1, 2, 1);
  return cm;
}

TEST(ConfusionMatrix, HandComputed) {
  const ConfusionMatrix cm = example();
  EXPECT_EQ(cm.total(), 12);
  EXPECT_DOUBLE_EQ(cm.accuracy(), 8.0 / 12);
  EXPECT_DOUBLE_EQ(cm.precision(0), 5.0 / 7);
  EXPECT_DOUBLE_EQ(cm.precision(1), 3.0 / 4);
  EXPECT_DOUBLE_EQ(cm.precision(2), 0.0);
  EXPECT_DOUBLE_EQ(cm.recall(0), 5.0 / 6);
  EXPECT_DOUBLE_EQ(cm.recall(1), 0.5);
  EXPECT_DOUBLE_EQ(cm.recall(2), 0.0);
  const double p = 5.0 / 7, r = 5.0 / 6;
  EXPECT_DOUBLE_EQ(cm.f1(0), 2 * p * r / (p + r));
  EXPECT_DOUBLE_EQ(cm.f1(2), 0.0);
}

TEST(ConfusionMatrix, MergeAddsCells) {
  ConfusionMatrix a = example();
  a.merge(example());
  EXPECT_EQ(a.total(), 24);
  EXPECT_EQ(a.at(1, 2), 2);
  EXPECT_DOUBLE_EQ(a.accuracy(), 8.0 / 12);
}

TEST(ConfusionMatrix, EmptyIsAllZero) {
  const ConfusionMatrix cm(4);
  EXPECT_EQ(cm.accuracy(), 0.0);
  EXPECT_EQ(cm.precision(1), 0.0);
}

TEST(ConfusionMatrix, ReportNamesClassesAndCounts) {
  const std::string r = example().report({"cat", "dog", "bird"});
  EXPECT_NE(r.find("cat       0.7143  0.8333  0.7692        6"), std::string::npos) << r;
  EXPECT_NE(r.find("accuracy"), std::string::npos);
  EXPECT_NE(r.find(" 1 dog        2      3      1\n"), std::string::npos) << r;
}

}  // namespace
}  // namespace convoy
