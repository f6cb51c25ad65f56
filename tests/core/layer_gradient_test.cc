// Every layer's backward pass (input gradient and parameter gradients) against central finite
// differences of its forward pass, through the shared checker in testing/gradient_check.h.
// The scalar checked is f = sum(dst * R) for a fixed random R, so df/ddst = R.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "testing/gradient_check.h"
#include "testing/layer_harness.h"

namespace convoy {
namespace {

using testing::gradient_matches;
using testing::GradientCheckOptions;
using testing::LayerHarness;
using testing::random_values;
using testing::well_separated_values;
using tag = dnnl::memory::format_tag;

struct GradCase {
  std::string name;
  std::string layer;
  Dims in;
  std::optional<tag> layout = std::nullopt;
  bool separated_input = false;  // for max pooling and ReLU: keep away from ties and kinks
};

// Test names and failure messages show the case's name, not its bytes.
void PrintTo(const GradCase& c, std::ostream* os) {
  *os << c.name;
}

class LayerGradient : public ::testing::TestWithParam<GradCase> {};

TEST_P(LayerGradient, MatchesFiniteDifferences) {
  const GradCase c = GetParam();
  LayerHarness h(c.layer, c.in, c.layout);
  const auto n = static_cast<size_t>(element_count(c.in));
  const std::vector<float> src =
      c.separated_input ? well_separated_values(n, 5) : random_values(n, 5);
  h.set_src(src);
  const size_t params = h.layer().parameters().size();
  for (size_t i = 0; i < params; ++i) {
    h.set_param(i, random_values(h.param(i).size(), 100 + i, -0.5f, 0.5f));
  }
  const std::vector<float> r = random_values(h.forward().size(), 99);
  h.backward(r);

  const auto f = [&] {
    const std::vector<float> dst = h.forward();
    double s = 0.0;
    for (size_t i = 0; i < dst.size(); ++i) s += double(dst[i]) * r[i];
    return s;
  };
  const GradientCheckOptions options;
  EXPECT_TRUE(gradient_matches(
      "d/dsrc", src, [&](std::span<const float> x) { h.set_src(x); }, f, h.diff_src(), options));
  for (size_t i = 0; i < params; ++i) {
    const std::string what = h.layer().parameters()[i].name;
    EXPECT_TRUE(gradient_matches(
        what, h.param(i), [&](std::span<const float> x) { h.set_param(i, x); }, f, h.grad(i),
        options));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layers, LayerGradient,
    ::testing::Values(
        GradCase{
            "conv_same", R"(type: "Conv2D" conv { filters: 3 kernel: 3 pad: 1 })", {2, 2, 5, 5}},
        GradCase{"conv_stride2_odd",
                 R"(type: "Conv2D" conv { filters: 4 kernel: 3 stride: 2 })",
                 {2, 3, 7, 6}},
        GradCase{"conv_rect",
                 R"(type: "Conv2D" conv { filters: 2 kernel: [3, 2] stride: [1, 2] pad: [1, 0] })",
                 {3, 2, 4, 5}},
        GradCase{"conv_no_bias",
                 R"(type: "Conv2D" conv { filters: 2 kernel: 2 no_bias: true })",
                 {2, 3, 4, 4}},
        GradCase{"conv_blocked",
                 R"(type: "Conv2D" conv { filters: 8 kernel: 3 pad: 1 })",
                 {2, 8, 4, 4},
                 tag::aBcd8b},
        GradCase{"maxpool_2x2",
                 R"(type: "MaxPool2D" pool { kernel: 2 })",
                 {2, 3, 6, 6},
                 std::nullopt,
                 true},
        GradCase{"maxpool_odd",
                 R"(type: "MaxPool2D" pool { kernel: 2 })",
                 {2, 2, 7, 5},
                 std::nullopt,
                 true},
        GradCase{"maxpool_overlap_pad",
                 R"(type: "MaxPool2D" pool { kernel: 3 stride: 2 pad: 1 })",
                 {2, 2, 7, 7},
                 std::nullopt,
                 true},
        GradCase{"maxpool_blocked",
                 R"(type: "MaxPool2D" pool { kernel: 2 })",
                 {1, 16, 4, 6},
                 tag::aBcd8b,
                 true},
        GradCase{"avgpool", R"(type: "AvgPool2D" pool { kernel: 2 })", {2, 3, 6, 5}},
        GradCase{"avgpool_pad_include",
                 R"(type: "AvgPool2D" pool { kernel: 3 stride: 2 pad: 1 })",
                 {2, 2, 7, 6}},
        GradCase{"avgpool_pad_exclude",
                 R"(type: "AvgPool2D" pool { kernel: 3 stride: 2 pad: 1 exclude_padding: true })",
                 {2, 2, 7, 6}},
        GradCase{"conv1d",
                 R"(type: "Conv1D" conv { filters: 3 kernel: 3 stride: 2 pad: 1 })",
                 {2, 2, 9}},
        GradCase{"conv3d",
                 R"(type: "Conv3D" conv { filters: 2 kernel: [2, 3, 3] stride: [1, 2, 1] pad: 1 })",
                 {2, 2, 3, 5, 4}},
        GradCase{"maxpool1d",
                 R"(type: "MaxPool1D" pool { kernel: 3 stride: 2 pad: 1 })",
                 {2, 3, 9},
                 std::nullopt,
                 true},
        GradCase{"maxpool3d",
                 R"(type: "MaxPool3D" pool { kernel: 2 })",
                 {2, 2, 4, 5, 4},
                 std::nullopt,
                 true},
        GradCase{"maxpool3d_blocked",
                 R"(type: "MaxPool3D" pool { kernel: 2 })",
                 {2, 8, 4, 4, 4},
                 tag::aBcde8b,
                 true},
        GradCase{"conv3d_blocked",
                 R"(type: "Conv3D" conv { filters: 8 kernel: 3 pad: 1 })",
                 {2, 8, 4, 4, 4},
                 tag::aBcde8b},
        GradCase{"avgpool1d", R"(type: "AvgPool1D" pool { kernel: 2 })", {2, 3, 7}},
        GradCase{"avgpool3d_pad_exclude",
                 R"(type: "AvgPool3D" pool { kernel: 3 stride: 2 pad: 1 exclude_padding: true })",
                 {2, 2, 5, 5, 3}},
        // Batch norm in training mode: the batch statistics depend on the input too.
        GradCase{"batchnorm_features", R"(type: "BatchNorm")", {5, 4}},
        GradCase{"batchnorm_1d", R"(type: "BatchNorm")", {3, 2, 6}},
        GradCase{"batchnorm_2d", R"(type: "BatchNorm")", {2, 3, 4, 3}},
        GradCase{"batchnorm_2d_blocked", R"(type: "BatchNorm")", {2, 8, 3, 3}, tag::aBcd8b},
        GradCase{"batchnorm_3d", R"(type: "BatchNorm")", {2, 2, 3, 2, 3}},
        GradCase{"dropout", R"(type: "Dropout" dropout { rate: 0.4 })", {3, 20}},
        GradCase{"dropout_blocked",
                 R"(type: "Dropout" dropout { rate: 0.4 })",
                 {2, 8, 2, 2},
                 tag::aBcd8b},
        GradCase{"dense", R"(type: "Dense" dense { units: 5 })", {3, 7}},
        GradCase{"dense_from_4d", R"(type: "Dense" dense { units: 4 })", {2, 3, 3, 2}},
        GradCase{
            "dense_blocked", R"(type: "Dense" dense { units: 3 })", {2, 16, 2, 2}, tag::aBcd8b},
        GradCase{"relu", R"(type: "ReLU")", {2, 3, 4, 4}, std::nullopt, true},
        GradCase{"relu_blocked", R"(type: "ReLU")", {2, 8, 3, 3}, tag::aBcd8b, true},
        GradCase{"leaky_relu",
                 R"(type: "LeakyReLU" leaky_relu { negative_slope: 0.1 })",
                 {2, 3, 4, 4},
                 std::nullopt,
                 true},
        GradCase{"elu", R"(type: "ELU")", {2, 3, 4, 4}},
        GradCase{"selu", R"(type: "SELU")", {2, 3, 4, 4}, std::nullopt, true},  // kink at 0
        GradCase{"sigmoid", R"(type: "Sigmoid")", {3, 10}},
        GradCase{"tanh", R"(type: "Tanh")", {2, 3, 3, 3}},
        GradCase{"flatten", R"(type: "Flatten")", {2, 3, 2, 2}},
        GradCase{"flatten_blocked", R"(type: "Flatten")", {2, 8, 2, 2}, tag::aBcd8b}),
    [](const auto& test_info) { return test_info.param.name; });

}  // namespace
}  // namespace convoy
