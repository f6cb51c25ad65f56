#include "core/weighted_layer.h"

#include "core/error.h"

namespace convoy {

void WeightedLayer::bind_forward(BuildContext& ctx, const Tensor& src,
                                 const dnnl::primitive_desc& fwd, const Dims& weight_dims,
                                 int64_t outputs, int64_t fan_in, int64_t fan_out) {
  src_in_desc_ = src.desc();
  src_ = ctx.convert(src.memory(), fwd.src_desc(0), forward_ops_);

  parameters_.clear();
  const dnnl::memory::desc weight_desc = fwd.weights_desc(0);
  const bool reshaped = weight_desc.dims() != weight_dims;
  CONVOY_CHECK(element_count(weight_desc.dims()) == element_count(weight_dims));
  // The master weights are f32 in the layout the primitive chose (in its dims, with the layer's
  // dims as their logical shape); in bf16 the primitive reads a bf16 copy of them, converted at
  // the start of every forward pass (the optimizer changed them).
  const dnnl::memory::desc master_desc = with_type(weight_desc, dnnl::memory::data_type::f32);
  parameters_.push_back({name() + ".weight", Tensor(master_desc, ctx.engine()),
                         Tensor(master_desc, ctx.engine()), fan_in, fan_out, std::nullopt,
                         reshaped ? weight_dims : Dims{}});
  weight_compute_ = ctx.convert(weight().value.memory(), weight_desc, forward_ops_);
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src_},
                                             {DNNL_ARG_WEIGHTS, weight_compute_}};
  if (has_bias_) {
    const dnnl::memory::desc bias_desc = plain_desc({outputs});
    parameters_.push_back({name() + ".bias", Tensor(bias_desc, ctx.engine()),
                           Tensor(bias_desc, ctx.engine()), 0, 0, std::nullopt});
    args.emplace(DNNL_ARG_BIAS, bias().value.memory());
  }
  dst_ = Tensor(fwd.dst_desc(0), ctx.engine());
  args.emplace(DNNL_ARG_DST, dst_.memory());
  forward_ops_.push_back(ctx.make_op(fwd, std::move(args)));
}

void WeightedLayer::bind_backward(BuildContext& ctx, const Tensor& diff_dst,
                                  const dnnl::primitive_desc& bwd_weights,
                                  const dnnl::primitive_desc* bwd_data) {
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  std::vector<Op> after;

  // Backward-weights first: its gradients can be handed on while backward-data runs.
  const dnnl::memory src = ctx.convert(src_, bwd_weights.src_desc(0), backward_ops_);
  const dnnl::memory dd_w =
      ctx.convert(diff_dst.memory(), bwd_weights.diff_dst_desc(0), backward_ops_);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DIFF_DST, dd_w},
      {DNNL_ARG_DIFF_WEIGHTS,
       ctx.convert_into(weight().grad.memory(), bwd_weights.diff_weights_desc(0), after)}};
  if (has_bias_) args.emplace(DNNL_ARG_DIFF_BIAS, bias().grad.memory());
  backward_ops_.push_back(ctx.make_op(bwd_weights, std::move(args)));
  for (Op& op : after) backward_ops_.push_back(std::move(op));
  after.clear();

  if (bwd_data == nullptr) return;
  const dnnl::memory w = ctx.convert(weight_compute_, bwd_data->weights_desc(0), backward_ops_);
  const dnnl::memory dd_d =
      bwd_data->diff_dst_desc(0) == dd_w.get_desc()
          ? dd_w
          : ctx.convert(diff_dst.memory(), bwd_data->diff_dst_desc(0), backward_ops_);
  diff_src_ = Tensor(src_in_desc_, ctx.engine());
  const dnnl::memory ds = ctx.convert_into(diff_src_.memory(), bwd_data->diff_src_desc(0), after);
  backward_ops_.push_back(ctx.make_op(
      *bwd_data, {{DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_DST, dd_d}, {DNNL_ARG_DIFF_SRC, ds}}));
  for (Op& op : after) backward_ops_.push_back(std::move(op));
}

}  // namespace convoy
