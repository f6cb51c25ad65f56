#include "core/dense.h"

#include <fmt/format.h>

#include "core/error.h"

namespace convoy {

DenseConfig DenseConfig::from_spec(const pb::LayerSpec& spec, const std::string& where) {
  if (!spec.has_dense()) throw Error::invalid_input(where + ": missing 'dense { units: ... }'");
  if (spec.dense().units() <= 0) {
    throw Error::invalid_input(
        fmt::format("{}: dense.units must be > 0, got {}", where, spec.dense().units()));
  }
  return {spec.dense().units(), !spec.dense().no_bias()};
}

void Dense::build_forward(BuildContext& ctx, const Tensor& src) {
  const dnnl::memory::data_type type = ctx.compute_type();
  Dims full_weight_dims = src.shape();
  full_weight_dims[0] = config_.units;
  Tensor input = src;
  flattened_ = src.shape().size() > 2 && type == dnnl::memory::data_type::bf16;
  if (flattened_) {
    const Dims dims = src.shape();
    unflat_desc_ = src.desc();
    flat_input_ = ctx.convert(src.memory(), plain_desc(dims, type), forward_ops_);
    input = Tensor(dnnl::memory(plain_desc({dims[0], element_count(dims) / dims[0]}, type),
                                ctx.engine(), flat_input_.get_data_handle()));
  }
  src_dims_ = input.shape();
  weight_dims_ = src_dims_;
  weight_dims_[0] = config_.units;
  dst_dims_ = {src_dims_[0], config_.units};
  const dnnl::memory::desc bias_desc =
      config_.bias ? plain_desc({config_.units}) : dnnl::memory::desc();
  const auto prop =
      ctx.training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::inner_product_forward::desc d(prop, any_desc(src_dims_, type), any_desc(weight_dims_, type),
                                      bias_desc, any_desc(dst_dims_, type));
  forward_pd_ = dnnl::inner_product_forward::primitive_desc(d, ctx.attr(), ctx.engine());
  const int64_t fan_in = element_count(src_dims_) / src_dims_[0];
  bind_forward(ctx, input, forward_pd_, full_weight_dims, config_.units, fan_in, config_.units);
}

void Dense::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  // Weight gradients are f32 whatever the compute type: they go to the f32 master weights.
  const dnnl::memory::data_type type = ctx.compute_type();
  const dnnl::memory::desc bias_desc =
      config_.bias ? plain_desc({config_.units}) : dnnl::memory::desc();
  dnnl::inner_product_backward_weights::desc wd(any_desc(src_dims_, type), any_desc(weight_dims_),
                                                bias_desc, any_desc(dst_dims_, type));
  dnnl::inner_product_backward_weights::primitive_desc weights_pd(wd, ctx.attr(), ctx.engine(),
                                                                  forward_pd_);
  if (!need_diff_src) {
    bind_backward(ctx, diff_dst, weights_pd, nullptr);
    return;
  }
  dnnl::inner_product_backward_data::desc dd(
      any_desc(src_dims_, type), any_desc(weight_dims_, type), any_desc(dst_dims_, type));
  dnnl::inner_product_backward_data::primitive_desc data_pd(dd, ctx.attr(), ctx.engine(),
                                                            forward_pd_);
  bind_backward(ctx, diff_dst, weights_pd, &data_pd);
  if (flattened_) {
    // The 2-D gradient, as the input's shape and then its layout.
    flat_diff_src_ = diff_src_;
    const dnnl::memory unflat(plain_desc(unflat_desc_.dims(), flat_diff_src_.desc().data_type()),
                              ctx.engine(), flat_diff_src_.memory().get_data_handle());
    diff_src_ = Tensor(ctx.convert(unflat, unflat_desc_, backward_ops_));
  }
}

}  // namespace convoy
