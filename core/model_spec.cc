#include "core/model_spec.h"

#include <fmt/format.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/layer_registry.h"

namespace convoy {

// Layer names become parameter names in checkpoints (protobuf strings: valid UTF-8 only) and entry
// names in .npz archives (paths): so a restricted set.
bool valid_layer_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

namespace {

// `text` with bytes outside printable ASCII shown as \xNN, at most 80 of them: safe in a
// one-line message.
std::string printable(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out +=
        c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  return text.size() > 80 ? out + "..." : out;
}

}  // namespace

namespace {

// LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for 28x28 inputs.
constexpr const char* kLenet5 = R"model(name: "lenet5"
input { channels: 1 spatial: [28, 28] }
num_classes: 10
layer { name: "conv1" type: "Conv2D" conv { filters: 6 kernel: 5 pad: 2 } }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv2D" conv { filters: 16 kernel: 5 } }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "fc1" type: "Dense" dense { units: 120 } }
layer { name: "relu3" type: "ReLU" }
layer { name: "fc2" type: "Dense" dense { units: 84 } }
layer { name: "relu4" type: "ReLU" }
layer { name: "fc3" type: "Dense" dense { units: 10 } }
)model";

// Three 3x3 convolutions (32, 64, 128 filters) with ReLU and 2x2 max pooling, then 256 -> 10.
constexpr const char* kFashionCnn = R"model(name: "fashion_cnn"
input { channels: 1 spatial: [28, 28] }
num_classes: 10
layer { name: "conv1" type: "Conv2D" conv { filters: 32 kernel: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv2D" conv { filters: 64 kernel: 3 pad: 1 } }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv3" type: "Conv2D" conv { filters: 128 kernel: 3 pad: 1 } }
layer { name: "relu3" type: "ReLU" }
layer { name: "pool3" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "fc1" type: "Dense" dense { units: 256 } }
layer { name: "relu4" type: "ReLU" }
layer { name: "fc2" type: "Dense" dense { units: 10 } }
)model";

// fashion_bn's and fashion_fast's network up to its last layer: two 3x3 convolutions (32, 128
// filters) with batch norm and 2x2 max pooling, then 256 with batch norm. builtins() puts each
// model's name before it and its head after it.
constexpr const char* kFashionBnTrunk = R"model(
input { channels: 1 spatial: [28, 28] }
num_classes: 10
layer { name: "conv1" type: "Conv2D" conv { filters: 32 kernel: 3 pad: 1 no_bias: true } }
layer { name: "bn1" type: "BatchNorm" }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv2D" conv { filters: 128 kernel: 3 pad: 1 no_bias: true } }
layer { name: "bn2" type: "BatchNorm" }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "fc1" type: "Dense" dense { units: 256 no_bias: true } }
layer { name: "bn3" type: "BatchNorm" }
layer { name: "relu3" type: "ReLU" }
)model";

// fashion_bn's head: dropout 0.3, then 10.
constexpr const char* kFashionBnHead =
    R"model(layer { name: "drop1" type: "Dropout" dropout { rate: 0.3 } }
layer { name: "fc2" type: "Dense" dense { units: 10 } }
)model";

// fashion_fast's head: no dropout (label smoothing regularises enough at these lengths), 10, and
// the recipe that trains it to 94% in minutes on 2 cores. It flips but does not crop: crops cost
// half a point at these lengths (README, "Minutes to 94%", has what each choice measured).
// `mpirun -np 2 convoy train --model fashion_fast --threads 1` is the whole command; every train
// field is a default its flag overrides.
constexpr const char* kFashionFastHead =
    R"model(layer { name: "fc2" type: "Dense" dense { units: 10 } }
augment { horizontal_flip: true }
train {
  epochs: 15
  global_batch_size: 128
  lr: 0.1
  lr_schedule: "cosine"
  warmup_epochs: 1
  nesterov: true
  weight_decay: 0.0005
  label_smoothing: 0.1
  test_flip: true
  precision: "auto"
}
)model";

// AlexNet's shape (Krizhevsky et al. 2012) scaled to 32x32x3: five 3x3 convolutions (64, 128,
// 256, 256, 128 filters), three 2x2 max pools, and three dense layers with dropout.
constexpr const char* kAlexnetCifar = R"model(name: "alexnet_cifar"
input { channels: 3 spatial: [32, 32] }
num_classes: 10
layer { name: "conv1" type: "Conv2D" conv { filters: 64 kernel: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv2D" conv { filters: 128 kernel: 3 pad: 1 } }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "conv3" type: "Conv2D" conv { filters: 256 kernel: 3 pad: 1 } }
layer { name: "relu3" type: "ReLU" }
layer { name: "conv4" type: "Conv2D" conv { filters: 256 kernel: 3 pad: 1 } }
layer { name: "relu4" type: "ReLU" }
layer { name: "conv5" type: "Conv2D" conv { filters: 128 kernel: 3 pad: 1 } }
layer { name: "relu5" type: "ReLU" }
layer { name: "pool3" type: "MaxPool2D" pool { kernel: 2 } }
layer { name: "drop1" type: "Dropout" dropout { rate: 0.5 } }
layer { name: "fc1" type: "Dense" dense { units: 512 } }
layer { name: "relu6" type: "ReLU" }
layer { name: "drop2" type: "Dropout" dropout { rate: 0.5 } }
layer { name: "fc2" type: "Dense" dense { units: 256 } }
layer { name: "relu7" type: "ReLU" }
layer { name: "fc3" type: "Dense" dense { units: 10 } }
)model";

// A small 1-D ConvNet for sequences of 128 steps with one channel, 4 classes.
constexpr const char* kConv1dSeq = R"model(name: "conv1d_seq"
input { channels: 1 spatial: [128] }
num_classes: 4
layer { name: "conv1" type: "Conv1D" conv { filters: 16 kernel: 7 pad: 3 } }
layer { name: "bn1" type: "BatchNorm" }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool1D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv1D" conv { filters: 32 kernel: 5 pad: 2 } }
layer { name: "bn2" type: "BatchNorm" }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool1D" pool { kernel: 2 } }
layer { name: "conv3" type: "Conv1D" conv { filters: 32 kernel: 3 pad: 1 } }
layer { name: "relu3" type: "ReLU" }
layer { name: "pool3" type: "AvgPool1D" pool { kernel: 32 } }
layer { name: "fc1" type: "Dense" dense { units: 4 } }
)model";

// A small 3-D ConvNet for 16x16x16 volumes with one channel, 4 classes.
constexpr const char* kConv3dVol = R"model(name: "conv3d_vol"
input { channels: 1 spatial: [16, 16, 16] }
num_classes: 4
layer { name: "conv1" type: "Conv3D" conv { filters: 8 kernel: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" }
layer { name: "relu1" type: "ReLU" }
layer { name: "pool1" type: "MaxPool3D" pool { kernel: 2 } }
layer { name: "conv2" type: "Conv3D" conv { filters: 16 kernel: 3 pad: 1 } }
layer { name: "bn2" type: "BatchNorm" }
layer { name: "relu2" type: "ReLU" }
layer { name: "pool2" type: "MaxPool3D" pool { kernel: 2 } }
layer { name: "fc1" type: "Dense" dense { units: 64 } }
layer { name: "relu3" type: "ReLU" }
layer { name: "fc2" type: "Dense" dense { units: 4 } }
)model";

const std::map<std::string, const char*>& builtins() {
  static const std::string fashion_bn =
      std::string(R"(name: "fashion_bn")") + kFashionBnTrunk + kFashionBnHead;
  static const std::string fashion_fast =
      std::string(R"(name: "fashion_fast")") + kFashionBnTrunk + kFashionFastHead;
  static const std::map<std::string, const char*> models{{"alexnet_cifar", kAlexnetCifar},
                                                         {"conv1d_seq", kConv1dSeq},
                                                         {"conv3d_vol", kConv3dVol},
                                                         {"fashion_bn", fashion_bn.c_str()},
                                                         {"fashion_cnn", kFashionCnn},
                                                         {"fashion_fast", fashion_fast.c_str()},
                                                         {"lenet5", kLenet5}};
  return models;
}

// Keeps the first error protobuf's text parser reports, with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (message_.empty()) message_ = fmt::format("{}:{}: {}", line + 1, column + 1, message);
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : builtins()) names.push_back(name);
  return names;
}

std::string builtin_model_text(const std::string& name) {
  const auto it = builtins().find(name);
  return it == builtins().end() ? std::string() : std::string(it->second);
}

pb::ModelSpec parse_model_text(const std::string& text, const std::string& source) {
  pb::ModelSpec spec;
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &spec)) {
    throw Error::invalid_input(fmt::format(
        "{}:{}", source,
        errors.message().empty() ? " not a valid model description" : errors.message()));
  }
  return spec;
}

pb::ModelSpec load_model_spec(const std::string& name_or_path) {
  const std::string builtin = builtin_model_text(name_or_path);
  if (!builtin.empty()) return parse_model_text(builtin, name_or_path);
  std::ifstream in(name_or_path, std::ios::binary);
  if (!in) {
    if (name_or_path.find('/') == std::string::npos &&
        name_or_path.find('.') == std::string::npos) {
      throw Error::invalid_input(fmt::format("unknown model '{}' (built-in: {}; or a .pbtxt file)",
                                             name_or_path, fmt::join(builtin_model_names(), ", ")));
    }
    throw Error::invalid_input(fmt::format("cannot read model file '{}'", name_or_path));
  }
  std::error_code error;
  const uint64_t size = std::filesystem::file_size(name_or_path, error);
  if (!error && size > kMaxModelFileBytes) {
    throw Error::limit_exceeded(fmt::format("model file '{}' has {} bytes (at most {} MiB)",
                                            name_or_path, size, kMaxModelFileBytes >> 20));
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_text(text.str(), name_or_path);
}

ModelPlan plan_model(const pb::ModelSpec& spec, const std::string& source) {
  ModelPlan plan;
  if (spec.input().channels() <= 0) {
    throw Error::invalid_input(source + ": input.channels must be > 0");
  }
  if (spec.input().spatial().empty() || spec.input().spatial_size() > 3) {
    throw Error::invalid_input(source +
                               ": input.spatial must have 1 to 3 extents, for example [28, 28]");
  }
  plan.input.channels = spec.input().channels();
  for (int32_t extent : spec.input().spatial()) {
    if (extent <= 0) throw Error::invalid_input(source + ": input.spatial extents must be > 0");
    plan.input.spatial.push_back(extent);
  }
  if (spec.num_classes() < 2) {
    throw Error::invalid_input(
        fmt::format("{}: num_classes must be >= 2, got {}", source, spec.num_classes()));
  }
  plan.num_classes = spec.num_classes();
  if (spec.layer().empty()) throw Error::invalid_input(source + ": the model has no layers");
  if (spec.layer_size() > kMaxLayers) {
    throw Error::limit_exceeded(fmt::format("{}: the model has {} layers (at most {})", source,
                                            spec.layer_size(), kMaxLayers));
  }

  std::set<std::string> names;
  SampleShape shape = plan.input;
  for (int i = 0; i < spec.layer_size(); ++i) {
    const pb::LayerSpec& layer = spec.layer(i);
    LayerPlan lp;
    lp.spec = &layer;
    if (!layer.name().empty() && !valid_layer_name(layer.name())) {
      throw Error::invalid_input(fmt::format(
          "{}: layer {}: the name '{}' is not allowed (1-64 of letters, digits, '_', '.', '-', "
          "starting with a letter or digit)",
          source, i + 1, printable(layer.name())));
    }
    lp.name = layer.name().empty() ? fmt::format("{}{}", lowercase(layer.type()), i) : layer.name();
    const std::string where = fmt::format("{}: layer {} '{}' ({})", source, i + 1, lp.name,
                                          layer.type().empty() ? "no type" : layer.type());
    const LayerType* type = find_layer_type(layer.type());
    if (type == nullptr) {
      throw Error::invalid_input(
          fmt::format("{}: layer {} '{}': unknown layer type '{}' (known: {})", source, i + 1,
                      lp.name, layer.type(), layer_type_names()));
    }
    if (!names.insert(lp.name).second) {
      throw Error::invalid_input(
          fmt::format("{}: the layer name '{}' is used twice", where, lp.name));
    }
    lp.in = shape;
    lp.out = type->infer(layer, shape, where);
    shape = lp.out;
    plan.layers.push_back(std::move(lp));
  }
  if (shape.elements() != plan.num_classes) {
    throw Error::invalid_input(fmt::format(
        "{}: the last layer '{}' yields {} values per sample ({}), but num_classes is {}", source,
        plan.layers.back().name, shape.elements(), shape.str(), plan.num_classes));
  }
  return plan;
}

namespace {

// Elements of a sample shape as a double: extents from a hostile file may overflow int64.
double elements(const SampleShape& shape) {
  double n = double(shape.channels);
  for (int64_t extent : shape.spatial) n *= double(extent);
  return n;
}

// Weights of a layer: what its parameters and their gradients and optimizer state scale with.
double weight_count(const LayerPlan& layer) {
  const pb::LayerSpec& spec = *layer.spec;
  if (spec.has_conv()) {
    double kernel = 1;
    const auto& k = spec.conv().kernel();
    for (size_t d = 0; d < layer.in.spatial.size(); ++d) {
      kernel *=
          k.size() == 1 ? k[0] : (static_cast<int>(d) < k.size() ? k[static_cast<int>(d)] : 1);
    }
    return double(spec.conv().filters()) * double(layer.in.channels) * kernel;
  }
  if (spec.has_dense()) return double(spec.dense().units()) * elements(layer.in);
  return 0;
}

}  // namespace

double estimated_bytes(const LayerPlan& layer, int64_t batch_size, bool training) {
  // Activations (and in training their gradients and a workspace) per sample; weights with their
  // gradient and up to two optimizer moments.
  const double activations = elements(layer.out) * double(batch_size) * 4;
  return activations * (training ? 3 : 1) + weight_count(layer) * 4 * (training ? 4 : 1);
}

void check_model_fits(const ModelPlan& plan, int64_t batch_size, bool training,
                      const std::string& source) {
  const double memory = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
  double total = 0, largest = 0;
  const LayerPlan* biggest = nullptr;
  for (const LayerPlan& layer : plan.layers) {
    const double bytes = estimated_bytes(layer, batch_size, training);
    total += bytes;
    if (bytes > largest) {
      largest = bytes;
      biggest = &layer;
    }
  }
  if (memory > 0 && total > memory) {
    constexpr double kGiB = 1 << 30;
    throw Error::limit_exceeded(fmt::format(
        "{}: the model needs about {:.1f} GiB for a batch of {} (layer '{}' alone {:.1f} GiB), "
        "more than this machine's {:.1f} GiB",
        source, total / kGiB, batch_size, biggest->name, largest / kGiB, memory / kGiB));
  }
}

}  // namespace convoy
