// Window and shape arithmetic, table-driven.
#include "core/shape.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "testing/error_of.h"

namespace convoy {
namespace {

struct WindowCase {
  int64_t in, kernel, stride, pad;
  int64_t out, right_pad;
};

TEST(Window, OutputExtentAndRightPadding) {
  const WindowCase cases[] = {
      // in  k  s  p   out  right
      {28, 5, 1, 2, 28, 2},  // LeNet conv1 keeps the size
      {14, 5, 1, 0, 10, 0},  // LeNet conv2
      {28, 2, 2, 0, 14, 0},  // 2x2 pool, even
      {7, 2, 2, 0, 3, -1},   // 2x2 pool, odd: the last row is never covered
      {7, 3, 2, 1, 4, 1},    // overlapping pool with padding
      {9, 3, 2, 0, 4, 0},    // stride 2 convolution
      {6, 3, 2, 0, 2, -1},   // stride 2 leaving one row out
      {3, 5, 1, 0, -1, -1},  // kernel larger than input: negative extent
      {4, 5, 1, 0, 0, 0},    // ... or zero
      {1, 1, 1, 0, 1, 0},
  };
  for (const WindowCase& c : cases) {
    const Window w{{c.kernel}, {c.stride}, {c.pad}};
    EXPECT_EQ(w.output({c.in}), std::vector<int64_t>{c.out})
        << "in " << c.in << " k " << c.kernel << " s " << c.stride << " p " << c.pad;
    if (c.out > 0) {
      EXPECT_EQ(w.right_padding({c.in}), Dims{c.right_pad}) << "in " << c.in;
    }
  }
}

TEST(Window, PerDimension) {
  const Window w{{3, 2}, {1, 2}, {1, 0}};
  EXPECT_EQ(w.output({5, 7}), (std::vector<int64_t>{5, 3}));
}

google::protobuf::RepeatedField<int32_t> field(std::initializer_list<int32_t> values) {
  google::protobuf::RepeatedField<int32_t> f;
  for (int32_t v : values) f.Add(v);
  return f;
}

TEST(ExpandDims, BroadcastsAndDefaults) {
  EXPECT_EQ(expand_dims(field({}), 2, 1, 1, "l", "stride"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(expand_dims(field({3}), 2, 1, 1, "l", "kernel"), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(expand_dims(field({3, 5}), 2, 1, 1, "l", "kernel"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(expand_dims(field({2}), 3, 1, 1, "l", "kernel"), (std::vector<int64_t>{2, 2, 2}));
}

TEST(ExpandDims, RejectsWrongCountAndSmallValues) {
  try {
    expand_dims(field({1, 2, 3}), 2, 1, 1, "layer 'c'", "conv.kernel");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "layer 'c': conv.kernel has 3 values, expected 1 or 2 (one per spatial dimension)");
  }
  try {
    expand_dims(field({0}), 2, 1, 1, "layer 'c'", "conv.stride");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer 'c': conv.stride must be >= 1, got 0");
  }
  EXPECT_EQ(testing::kind_of([&] { expand_dims(field({-1}), 2, 0, 0, "l", "conv.pad"); }),
            ErrorKind::kInvalidInput);
}

TEST(SampleShape, ElementsAndText) {
  const SampleShape s{3, {28, 28}};
  EXPECT_EQ(s.elements(), 3 * 28 * 28);
  EXPECT_EQ(s.str(), "3x28x28");
  EXPECT_EQ(s.batch_dims(4), (Dims{4, 3, 28, 28}));
  EXPECT_EQ((SampleShape{10, {}}).str(), "10");
}

}  // namespace
}  // namespace convoy
