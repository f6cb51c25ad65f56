// The layer registry: maps a layer type name from the model spec ("Conv2D") to the functions that
// check its parameters, infer its output shape and create it. To add a layer type, write its
// class and add one row to the table in layer_registry.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/layer.h"
#include "core/shape.h"
#include "proto/model.pb.h"

namespace convoy {

struct LayerType {
  std::string_view name;
  // Checks `spec` against input shape `in` and returns the output shape. Throws Error whose
  // message starts with `where` (for example "model.pbtxt: layer 'conv1' (Conv2D)").
  SampleShape (*infer)(const pb::LayerSpec& spec, const SampleShape& in, const std::string& where);
  // Creates the layer; `spec` has passed infer() for `in`.
  std::unique_ptr<Layer> (*create)(const pb::LayerSpec& spec, const SampleShape& in,
                                   const std::string& name);
  // Max pooling (its forward and backward commute with a ReLU before it).
  bool max_pooling = false;
  // Placed right before max pooling, the layer may run after it instead, on the pooled (smaller)
  // data, with the same values and gradients (Model does this). True for ReLU: max commutes with
  // a nondecreasing function, and where a window's maximum is not positive both orders give zero.
  bool may_run_after_max_pooling = false;
};

// nullptr when `type` is not registered.
const LayerType* find_layer_type(std::string_view type);
// "Conv2D, MaxPool2D, ..." for error messages and documentation.
std::string layer_type_names();

}  // namespace convoy
