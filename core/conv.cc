#include "core/conv.h"

#include <fmt/format.h>

#include "core/error.h"

namespace convoy {

ConvConfig ConvConfig::from_spec(const pb::LayerSpec& spec, const SampleShape& in,
                                 const std::string& where) {
  if (!spec.has_conv())
    throw Error::invalid_input(where + ": missing 'conv { filters: ... kernel: ... }'");
  const pb::ConvParams& p = spec.conv();
  if (p.filters() <= 0) {
    throw Error::invalid_input(
        fmt::format("{}: conv.filters must be > 0, got {}", where, p.filters()));
  }
  if (p.kernel().empty()) throw Error::invalid_input(where + ": conv.kernel is required");
  const size_t rank = in.spatial.size();
  ConvConfig c;
  c.filters = p.filters();
  c.window.kernel = expand_dims(p.kernel(), rank, 1, 1, where, "conv.kernel");
  c.window.stride = expand_dims(p.stride(), rank, 1, 1, where, "conv.stride");
  c.window.pad = expand_dims(p.pad(), rank, 0, 0, where, "conv.pad");
  c.bias = !p.no_bias();
  return c;
}

SampleShape ConvConfig::output_shape(const SampleShape& in, const std::string& where) const {
  SampleShape out{filters, window.output(in.spatial)};
  for (int64_t extent : out.spatial) {
    if (extent <= 0) {
      throw Error::invalid_input(
          fmt::format("{}: output size would be {} (input {}, kernel {}, stride {}, pad {})", where,
                      out.str(), in.str(), fmt::join(window.kernel, "x"),
                      fmt::join(window.stride, "x"), fmt::join(window.pad, "x")));
    }
  }
  return out;
}

void Conv::build_forward(BuildContext& ctx, const Tensor& src) {
  src_dims_ = src.shape();
  const SampleShape in{src_dims_[1], {src_dims_.begin() + 2, src_dims_.end()}};
  const SampleShape out = config_.output_shape(in, name());
  dst_dims_ = out.batch_dims(src_dims_[0]);
  weight_dims_ = {config_.filters, in.channels};
  weight_dims_.insert(weight_dims_.end(), config_.window.kernel.begin(),
                      config_.window.kernel.end());
  padding_r_ = config_.window.right_padding(in.spatial);
  const dnnl::memory::data_type type = ctx.compute_type();

  const dnnl::memory::desc bias_desc =
      config_.bias ? plain_desc({config_.filters}) : dnnl::memory::desc();
  const auto prop =
      ctx.training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::convolution_forward::desc d(prop, dnnl::algorithm::convolution_direct,
                                    any_desc(src_dims_, type), any_desc(weight_dims_, type),
                                    bias_desc, any_desc(dst_dims_, type), config_.window.stride,
                                    config_.window.pad, padding_r_);
  forward_pd_ = dnnl::convolution_forward::primitive_desc(d, ctx.attr(), ctx.engine());

  int64_t kernel_volume = 1;
  for (int64_t k : config_.window.kernel) kernel_volume *= k;
  bind_forward(ctx, src, forward_pd_, weight_dims_, config_.filters, in.channels * kernel_volume,
               config_.filters * kernel_volume);
}

void Conv::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  // Weight gradients are f32 whatever the compute type: they go to the f32 master weights.
  const dnnl::memory::data_type type = ctx.compute_type();
  const dnnl::memory::desc bias_desc =
      config_.bias ? plain_desc({config_.filters}) : dnnl::memory::desc();
  // The first layer (no input gradient needed) reads the model's plain input: keeping that layout
  // spares a per-step reorder of the input into channel blocks (padded from 1 channel to 8).
  // Deeper layers let oneDNN choose, which favours its blocked direct kernels.
  dnnl::convolution_backward_weights::desc wd(
      dnnl::algorithm::convolution_direct,
      need_diff_src ? any_desc(src_dims_, type) : forward_pd_.src_desc(), any_desc(weight_dims_),
      bias_desc, any_desc(dst_dims_, type), config_.window.stride, config_.window.pad, padding_r_);
  dnnl::convolution_backward_weights::primitive_desc weights_pd(wd, ctx.attr(), ctx.engine(),
                                                                forward_pd_);
  if (!need_diff_src) {
    bind_backward(ctx, diff_dst, weights_pd, nullptr);
    return;
  }
  dnnl::convolution_backward_data::desc dd(
      dnnl::algorithm::convolution_direct, any_desc(src_dims_, type), any_desc(weight_dims_, type),
      any_desc(dst_dims_, type), config_.window.stride, config_.window.pad, padding_r_);
  dnnl::convolution_backward_data::primitive_desc data_pd(dd, ctx.attr(), ctx.engine(),
                                                          forward_pd_);
  bind_backward(ctx, diff_dst, weights_pd, &data_pd);
}

}  // namespace convoy
