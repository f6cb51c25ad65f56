#include "core/batch_norm.h"

#include <fmt/format.h>

#include "core/error.h"

namespace convoy {

namespace {

// oneDNN 2.6 has optimized batch norm kernels for 2-D and 4-D/5-D data only; a sequence [N, C, L]
// gets its reference kernel, about 15x slower (measured 15.9 ms against 0.8 ms for 64x16x128).
// The same bytes viewed as [N, C, 1, L] (in any of the layouts a 3-D tensor can have) take the
// fast path, so sequences are normalized through that view.
dnnl::memory::desc kernel_view(const dnnl::memory::desc& desc) {
  const Dims dims = desc.dims();
  if (dims.size() != 3) return desc;
  return desc.reshape({dims[0], dims[1], 1, dims[2]});
}

dnnl::memory view(const dnnl::memory& memory) {
  const dnnl::memory::desc v = kernel_view(memory.get_desc());
  if (v == memory.get_desc()) return memory;
  return dnnl::memory(v, memory.get_engine(), memory.get_data_handle());
}

}  // namespace

BatchNormConfig BatchNormConfig::from_spec(const pb::LayerSpec& spec, const std::string& where) {
  BatchNormConfig c;
  const pb::BatchNormParams& p = spec.batch_norm();
  if (p.has_momentum()) c.momentum = p.momentum();
  if (p.has_epsilon()) c.epsilon = p.epsilon();
  if (!(c.momentum > 0.f && c.momentum <= 1.f)) {
    throw Error::invalid_input(
        fmt::format("{}: batch_norm.momentum must be in (0, 1], got {}", where, c.momentum));
  }
  if (!(c.epsilon > 0.f)) {
    throw Error::invalid_input(
        fmt::format("{}: batch_norm.epsilon must be > 0, got {}", where, c.epsilon));
  }
  return c;
}

void BatchNorm::build_forward(BuildContext& ctx, const Tensor& src) {
  using flags = dnnl::normalization_flags;
  const Dims dims = src.shape();
  channels_ = dims[1];
  values_per_channel_ = element_count(dims) / channels_;
  const Dims channel_dims{channels_};
  const dnnl::memory::desc channel_desc = plain_desc(channel_dims);

  parameters_.clear();
  parameters_.push_back({name() + ".weight", Tensor(channel_desc, ctx.engine()),
                         Tensor(channel_desc, ctx.engine()), 0, 0, 1.f});
  parameters_.push_back({name() + ".bias", Tensor(channel_desc, ctx.engine()),
                         Tensor(channel_desc, ctx.engine()), 0, 0, 0.f});
  buffers_.clear();
  buffers_.push_back({name() + ".running_mean", Tensor(channel_desc, ctx.engine()), 0.f});
  buffers_.push_back({name() + ".running_var", Tensor(channel_desc, ctx.engine()), 1.f});
  buffers_[1].value.copy_from_plain(std::vector<float>(static_cast<size_t>(channels_), 1.f));

  // The data stays in the layout the previous layer chose: batch norm works in any. oneDNN 2.6
  // has no fast bf16 kernel for 2-D data (after a dense layer): 6.5 ms forward against 0.11 ms in
  // f32 for 64x256 on the AMX Xeon, so there the layer converts its input and works in f32.
  src_in_desc_ = src.desc();
  std::vector<Op> prologue;
  const dnnl::memory input =
      dims.size() == 2 && src_in_desc_.data_type() != dnnl::memory::data_type::f32
          ? ctx.convert(src.memory(), plain_desc(dims), prologue)
          : src.memory();
  forward_ops_ = prologue;
  evaluation_ops_ = prologue;
  src_ = view(input);
  dst_ = Tensor(input.get_desc(), ctx.engine());
  const dnnl::memory dst = view(dst_.memory());
  const dnnl::memory& scale = parameters_[0].value.memory();
  const dnnl::memory& shift = parameters_[1].value.memory();

  const dnnl::batch_normalization_forward::desc inference_desc(
      dnnl::prop_kind::forward_inference, src_.get_desc(), config_.epsilon,
      flags::use_global_stats | flags::use_scale | flags::use_shift);
  const dnnl::batch_normalization_forward::primitive_desc inference_pd(inference_desc, ctx.attr(),
                                                                       ctx.engine());
  Op inference = ctx.make_op(inference_pd, {{DNNL_ARG_SRC, src_},
                                            {DNNL_ARG_MEAN, buffers_[0].value.memory()},
                                            {DNNL_ARG_VARIANCE, buffers_[1].value.memory()},
                                            {DNNL_ARG_SCALE, scale},
                                            {DNNL_ARG_SHIFT, shift},
                                            {DNNL_ARG_DST, dst}});
  if (!ctx.training()) {
    forward_ops_.push_back(std::move(inference));
    evaluation_ops_.clear();  // forward_ops_ are the evaluation
    return;
  }
  evaluation_ops_.push_back(std::move(inference));

  const dnnl::batch_normalization_forward::desc training_desc(dnnl::prop_kind::forward_training,
                                                              src_.get_desc(), config_.epsilon,
                                                              flags::use_scale | flags::use_shift);
  training_pd_ =
      dnnl::batch_normalization_forward::primitive_desc(training_desc, ctx.attr(), ctx.engine());
  batch_statistics_ = AlignedBuffer<float>(static_cast<size_t>(2 * channels_));
  mean_ = dnnl::memory(training_pd_.mean_desc(), ctx.engine(), batch_statistics_.data());
  variance_ = dnnl::memory(training_pd_.variance_desc(), ctx.engine(),
                           batch_statistics_.data() + channels_);
  forward_ops_.push_back(ctx.make_op(training_pd_, {{DNNL_ARG_SRC, src_},
                                                    {DNNL_ARG_MEAN, mean_},
                                                    {DNNL_ARG_VARIANCE, variance_},
                                                    {DNNL_ARG_SCALE, scale},
                                                    {DNNL_ARG_SHIFT, shift},
                                                    {DNNL_ARG_DST, dst}}));
}

void BatchNorm::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  using flags = dnnl::normalization_flags;
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  // The input gradient is computed even for a first layer: oneDNN computes both together.
  const dnnl::memory diff_dst_view = view(diff_dst.memory());
  const dnnl::batch_normalization_backward::desc d(
      dnnl::prop_kind::backward, diff_dst_view.get_desc(), src_.get_desc(), config_.epsilon,
      flags::use_scale | flags::use_shift);
  const dnnl::batch_normalization_backward::primitive_desc pd(d, ctx.attr(), ctx.engine(),
                                                              training_pd_);
  diff_src_ = Tensor(src_in_desc_, ctx.engine());
  std::vector<Op> after;
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src_},
      {DNNL_ARG_MEAN, mean_},
      {DNNL_ARG_VARIANCE, variance_},
      {DNNL_ARG_SCALE, parameters_[0].value.memory()},
      {DNNL_ARG_SHIFT, parameters_[1].value.memory()},  // oneDNN 2.6 asks for it
      {DNNL_ARG_DIFF_DST, ctx.convert(diff_dst_view, pd.diff_dst_desc(), backward_ops_)},
      {DNNL_ARG_DIFF_SRC, ctx.convert_into(view(diff_src_.memory()), pd.diff_src_desc(), after)},
      {DNNL_ARG_DIFF_SCALE, parameters_[0].grad.memory()},
      {DNNL_ARG_DIFF_SHIFT, parameters_[1].grad.memory()}};
  backward_ops_.push_back(ctx.make_op(pd, std::move(args)));
  for (Op& op : after) backward_ops_.push_back(std::move(op));
  if (!need_diff_src) diff_src_ = Tensor();
}

std::span<float> BatchNorm::batch_statistics() {
  return {batch_statistics_.data(), batch_statistics_.size()};
}

void BatchNorm::update_running_statistics() {
  const float m = config_.momentum;
  // PyTorch keeps the unbiased variance; oneDNN's batch variance is the biased one.
  const double n = static_cast<double>(values_per_channel_);
  const auto unbias = static_cast<float>(n > 1 ? n / (n - 1) : 1.0);
  float* mean = buffers_[0].value.data();
  float* var = buffers_[1].value.data();
  const float* batch_mean = batch_statistics_.data();
  const float* batch_var = batch_statistics_.data() + channels_;
  for (int64_t c = 0; c < channels_; ++c) {
    mean[c] = (1 - m) * mean[c] + m * batch_mean[c];
    var[c] = (1 - m) * var[c] + m * batch_var[c] * unbias;
  }
}

}  // namespace convoy
