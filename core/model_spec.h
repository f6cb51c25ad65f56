// Model specs: reading them (built-in names or .pbtxt files) and checking them.
//
// plan_model() is the single place where a spec is validated: every layer type is known, every
// layer's parameters make sense for the shape that reaches it, no output extent is zero or
// negative, names are unique, and the last layer yields exactly num_classes logits. It needs no
// oneDNN and is what `convoy train` runs before building anything.
#pragma once

#include <string>
#include <vector>

#include "core/shape.h"
#include "proto/model.pb.h"

namespace convoy {

// Names of the built-in models ("lenet5", "fashion_cnn").
std::vector<std::string> builtin_model_names();
// The protobuf text of a built-in model; empty when `name` is not built in.
std::string builtin_model_text(const std::string& name);

// Parses protobuf text; `source` names it in errors ("model.pbtxt:3:7: ...").
pb::ModelSpec parse_model_text(const std::string& text, const std::string& source);
// 1-64 of [A-Za-z0-9_.-], starting with a letter or digit.
bool valid_layer_name(const std::string& name);

// Limits on a model description: its file, and its layers.
inline constexpr uint64_t kMaxModelFileBytes = uint64_t{16} << 20;
inline constexpr int kMaxLayers = 10000;

// A built-in name, or a path to a .pbtxt file (at most kMaxModelFileBytes). Errors name the model
// or the file.
pb::ModelSpec load_model_spec(const std::string& name_or_path);

struct LayerPlan {
  std::string name;                     // the spec's name, or "<type><index>" when it has none
  const pb::LayerSpec* spec = nullptr;  // points into the ModelSpec given to plan_model
  SampleShape in, out;
};

struct ModelPlan {
  SampleShape input;
  int num_classes = 0;
  std::vector<LayerPlan> layers;
};

// Validates `spec` (see above); errors start with `source`. `spec` must outlive the plan.
ModelPlan plan_model(const pb::ModelSpec& spec, const std::string& source);

// About how many bytes `layer` takes in a model built for `batch_size` (an estimate, for refusing
// what cannot fit before oneDNN tries to allocate it).
double estimated_bytes(const LayerPlan& layer, int64_t batch_size, bool training);
// Throws Error (limit exceeded) naming the largest layer when the model would need more memory
// than the machine has.
void check_model_fits(const ModelPlan& plan, int64_t batch_size, bool training,
                      const std::string& source);

}  // namespace convoy
