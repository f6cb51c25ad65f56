// Model specs: built-ins, parsing, and each way a spec can be wrong.
#include "core/model_spec.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "testing/error_of.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

std::string error_of(const std::string& text) {
  return testing::error_of([&] { plan_model(parse_model_text(text, "m.pbtxt"), "m.pbtxt"); });
}

constexpr const char* kHeader = R"(input { channels: 1 spatial: [8, 8] } num_classes: 3 )";

TEST(ModelSpec, BuiltinsPlanWithExpectedShapes) {
  const pb::ModelSpec lenet = load_model_spec("lenet5");
  const ModelPlan plan = plan_model(lenet, "lenet5");
  ASSERT_EQ(plan.layers.size(), 11u);
  EXPECT_EQ(plan.layers[0].out.str(), "6x28x28");
  EXPECT_EQ(plan.layers[2].out.str(), "6x14x14");
  EXPECT_EQ(plan.layers[3].out.str(), "16x10x10");
  EXPECT_EQ(plan.layers[5].out.str(), "16x5x5");
  EXPECT_EQ(plan.layers.back().out.str(), "10");

  const ModelPlan fashion = plan_model(load_model_spec("fashion_cnn"), "fashion_cnn");
  EXPECT_EQ(fashion.layers[8].out.str(), "128x3x3");
  EXPECT_EQ(fashion.layers[9].out.str(), "256");

  const ModelPlan bn = plan_model(load_model_spec("fashion_bn"), "fashion_bn");
  EXPECT_EQ(bn.layers[7].out.str(), "128x7x7");
  const ModelPlan alexnet = plan_model(load_model_spec("alexnet_cifar"), "alexnet_cifar");
  EXPECT_EQ(alexnet.input.str(), "3x32x32");
  EXPECT_EQ(alexnet.layers[12].out.str(), "128x4x4");
  const ModelPlan seq = plan_model(load_model_spec("conv1d_seq"), "conv1d_seq");
  EXPECT_EQ(seq.layers[7].out.str(), "32x32");
  EXPECT_EQ(seq.layers[10].out.str(), "32x1");
  const ModelPlan vol = plan_model(load_model_spec("conv3d_vol"), "conv3d_vol");
  EXPECT_EQ(vol.layers[7].out.str(), "16x4x4x4");
}

TEST(ModelSpec, LoadsFileAndNamesLayersByDefault) {
  testing::TempDir dir;
  const std::string path = dir.write("tiny.pbtxt", std::string(kHeader) + R"(
        layer { type: "Conv2D" conv { filters: 2 kernel: 3 } }
        layer { type: "ReLU" }
        layer { type: "Dense" dense { units: 3 } })");
  const pb::ModelSpec spec = load_model_spec(path);
  const ModelPlan plan = plan_model(spec, path);
  EXPECT_EQ(plan.layers[0].name, "conv2d0");
  EXPECT_EQ(plan.layers[1].name, "relu1");
  EXPECT_EQ(plan.layers[0].out.str(), "2x6x6");
}

TEST(ModelSpec, UnknownNameAndMissingFile) {
  try {
    load_model_spec("resnet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "unknown model 'resnet' (built-in: alexnet_cifar, conv1d_seq, "
                 "conv3d_vol, fashion_bn, fashion_cnn, fashion_fast, lenet5; or a .pbtxt file)");
  }
  try {
    load_model_spec("/nonexistent/m.pbtxt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot read model file '/nonexistent/m.pbtxt'");
  }
}

TEST(ModelSpec, MalformedTextNamesLineAndColumn) {
  const std::string e = error_of("input { channels: 1 spatial: [8, 8] }\nnum_classes: three\n");
  EXPECT_EQ(e.rfind("m.pbtxt:2:14:", 0), 0u) << e;
  const std::string unknown_field = error_of("inputs { channels: 1 }");
  EXPECT_NE(unknown_field.find("m.pbtxt:1:"), std::string::npos) << unknown_field;
  EXPECT_NE(unknown_field.find("inputs"), std::string::npos) << unknown_field;
}

TEST(ModelSpec, UnknownLayerType) {
  const std::string e = error_of(std::string(kHeader) + R"(layer { name: "x" type: "Conv7D" })");
  EXPECT_NE(e.find("layer 1 'x': unknown layer type 'Conv7D' (known: Conv1D, Conv2D"),
            std::string::npos)
      << e;
}

TEST(ModelSpec, OutputSizeZeroOrNegative) {
  std::string e = error_of(std::string(kHeader) +
                           R"(layer { name: "big" type: "Conv2D" conv { filters: 2 kernel: 9 } }
                              layer { type: "Dense" dense { units: 3 } })");
  EXPECT_NE(e.find("layer 1 'big' (Conv2D): output size would be 2x0x0"), std::string::npos) << e;
  e = error_of(std::string(kHeader) +
               R"(layer { name: "p" type: "MaxPool2D" pool { kernel: 2 } }
                  layer { name: "p2" type: "MaxPool2D" pool { kernel: 2 } }
                  layer { name: "p3" type: "MaxPool2D" pool { kernel: 2 } }
                  layer { name: "p4" type: "MaxPool2D" pool { kernel: 2 } }
                  layer { type: "Dense" dense { units: 3 } })");
  EXPECT_NE(e.find("layer 4 'p4' (MaxPool2D): output size would be 1x0x0"), std::string::npos) << e;
}

TEST(ModelSpec, ParameterErrorsNameTheField) {
  EXPECT_NE(error_of(std::string(kHeader) + R"(layer { type: "Conv2D" conv { kernel: 3 } })")
                .find("conv.filters must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) + R"(layer { type: "Conv2D" })").find("missing 'conv {"),
            std::string::npos);
  EXPECT_NE(
      error_of(std::string(kHeader) + R"(layer { type: "MaxPool2D" pool { kernel: 2 pad: 2 } })")
          .find("pool.pad (2) must be smaller than pool.kernel (2)"),
      std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) + R"(layer { type: "Dense" dense { units: 0 } })")
                .find("dense.units must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) +
                     R"(layer { type: "Dense" dense { units: 3 } }
                        layer { type: "Conv2D" conv { filters: 3 kernel: 1 } })")
                .find("needs an input with 2 spatial dimension(s), got shape 3"),
            std::string::npos);
  EXPECT_NE(
      error_of(std::string(kHeader) + R"(layer { type: "Conv3D" conv { filters: 2 kernel: 3 } })")
          .find("needs an input with 3 spatial dimension(s), got shape 1x8x8"),
      std::string::npos);
  EXPECT_NE(
      error_of(std::string(kHeader) + R"(layer { type: "MaxPool1D" pool { kernel: [2, 2] } })")
          .find("needs an input with 1 spatial dimension(s)"),
      std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) +
                     R"(layer { type: "LeakyReLU" leaky_relu { negative_slope: -1 } })")
                .find("leaky_relu.negative_slope must be in [0, 1)"),
            std::string::npos);
}

TEST(ModelSpec, WholeModelChecks) {
  EXPECT_NE(error_of(R"(input { channels: 1 spatial: [8, 8] } num_classes: 3)")
                .find("the model has no layers"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) + R"(layer { type: "Dense" dense { units: 4 } })")
                .find("yields 4 values per sample (4), but num_classes is 3"),
            std::string::npos);
  EXPECT_NE(error_of(R"(input { channels: 0 spatial: [8, 8] } num_classes: 3)")
                .find("input.channels must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of(R"(input { channels: 1 } num_classes: 3)").find("input.spatial"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kHeader) + R"(layer { name: "a" type: "ReLU" }
                                               layer { name: "a" type: "Flatten" })")
                .find("the layer name 'a' is used twice"),
            std::string::npos);
}

}  // namespace
}  // namespace convoy
