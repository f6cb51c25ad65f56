#include "core/layer_registry.h"

#include <fmt/format.h>

#include <array>

#include "core/activation.h"
#include "core/batch_norm.h"
#include "core/conv.h"
#include "core/dense.h"
#include "core/dropout.h"
#include "core/error.h"
#include "core/flatten.h"
#include "core/pool.h"

namespace convoy {

namespace {

void require_spatial_rank(const SampleShape& in, size_t rank, const std::string& where) {
  if (in.spatial.size() != rank) {
    throw Error::invalid_input(fmt::format(
        "{}: needs an input with {} spatial dimension(s), got shape {}", where, rank, in.str()));
  }
}

template <size_t Rank>
SampleShape infer_conv(const pb::LayerSpec& spec, const SampleShape& in, const std::string& where) {
  require_spatial_rank(in, Rank, where);
  return ConvConfig::from_spec(spec, in, where).output_shape(in, where);
}
std::unique_ptr<Layer> create_conv(const pb::LayerSpec& spec, const SampleShape& in,
                                   const std::string& name) {
  return std::make_unique<Conv>(name, ConvConfig::from_spec(spec, in, name));
}

template <size_t Rank, dnnl::algorithm Alg>
SampleShape infer_pool(const pb::LayerSpec& spec, const SampleShape& in, const std::string& where) {
  require_spatial_rank(in, Rank, where);
  return PoolConfig::from_spec(spec, Alg, in, where).output_shape(in, where);
}
template <dnnl::algorithm Alg>
std::unique_ptr<Layer> create_pool(const pb::LayerSpec& spec, const SampleShape& in,
                                   const std::string& name) {
  return std::make_unique<Pool>(name, PoolConfig::from_spec(spec, Alg, in, name));
}

SampleShape infer_dense(const pb::LayerSpec& spec, const SampleShape&, const std::string& where) {
  return {DenseConfig::from_spec(spec, where).units, {}};
}
std::unique_ptr<Layer> create_dense(const pb::LayerSpec& spec, const SampleShape&,
                                    const std::string& name) {
  return std::make_unique<Dense>(name, DenseConfig::from_spec(spec, name));
}

SampleShape infer_activation(const pb::LayerSpec& spec, const SampleShape& in,
                             const std::string& where) {
  activation_stages(spec, where);
  return in;
}
std::unique_ptr<Layer> create_activation(const pb::LayerSpec& spec, const SampleShape&,
                                         const std::string& name) {
  return std::make_unique<Activation>(name, activation_stages(spec, name));
}

SampleShape infer_batch_norm(const pb::LayerSpec& spec, const SampleShape& in,
                             const std::string& where) {
  BatchNormConfig::from_spec(spec, where);
  return in;
}
std::unique_ptr<Layer> create_batch_norm(const pb::LayerSpec& spec, const SampleShape&,
                                         const std::string& name) {
  return std::make_unique<BatchNorm>(name, BatchNormConfig::from_spec(spec, name));
}

SampleShape infer_dropout(const pb::LayerSpec& spec, const SampleShape& in,
                          const std::string& where) {
  dropout_rate(spec, where);
  return in;
}
std::unique_ptr<Layer> create_dropout(const pb::LayerSpec& spec, const SampleShape&,
                                      const std::string& name) {
  return std::make_unique<Dropout>(name, dropout_rate(spec, name));
}

SampleShape infer_flatten(const pb::LayerSpec&, const SampleShape& in, const std::string&) {
  return {in.elements(), {}};
}
std::unique_ptr<Layer> create_flatten(const pb::LayerSpec&, const SampleShape&,
                                      const std::string& name) {
  return std::make_unique<Flatten>(name);
}

constexpr dnnl::algorithm kMax = dnnl::algorithm::pooling_max;
constexpr dnnl::algorithm kAvg = dnnl::algorithm::pooling_avg_include_padding;

const std::array kLayerTypes{
    LayerType{"Conv1D", infer_conv<1>, create_conv},
    LayerType{"Conv2D", infer_conv<2>, create_conv},
    LayerType{"Conv3D", infer_conv<3>, create_conv},
    LayerType{.name = "MaxPool1D",
              .infer = infer_pool<1, kMax>,
              .create = create_pool<kMax>,
              .max_pooling = true},
    LayerType{.name = "MaxPool2D",
              .infer = infer_pool<2, kMax>,
              .create = create_pool<kMax>,
              .max_pooling = true},
    LayerType{.name = "MaxPool3D",
              .infer = infer_pool<3, kMax>,
              .create = create_pool<kMax>,
              .max_pooling = true},
    LayerType{"AvgPool1D", infer_pool<1, kAvg>, create_pool<kAvg>},
    LayerType{"AvgPool2D", infer_pool<2, kAvg>, create_pool<kAvg>},
    LayerType{"AvgPool3D", infer_pool<3, kAvg>, create_pool<kAvg>},
    LayerType{"Dense", infer_dense, create_dense},
    LayerType{"BatchNorm", infer_batch_norm, create_batch_norm},
    LayerType{"Dropout", infer_dropout, create_dropout},
    LayerType{.name = "ReLU",
              .infer = infer_activation,
              .create = create_activation,
              .may_run_after_max_pooling = true},
    LayerType{"LeakyReLU", infer_activation, create_activation},
    LayerType{"ELU", infer_activation, create_activation},
    LayerType{"SELU", infer_activation, create_activation},
    LayerType{"Sigmoid", infer_activation, create_activation},
    LayerType{"Tanh", infer_activation, create_activation},
    LayerType{"Flatten", infer_flatten, create_flatten},
};

}  // namespace

const LayerType* find_layer_type(std::string_view type) {
  for (const LayerType& t : kLayerTypes) {
    if (t.name == type) return &t;
  }
  return nullptr;
}

std::string layer_type_names() {
  std::string names;
  for (const LayerType& t : kLayerTypes) {
    if (!names.empty()) names += ", ";
    names += t.name;
  }
  return names;
}

}  // namespace convoy
