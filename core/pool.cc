#include "core/pool.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/implementation_choice.h"

namespace convoy {

PoolConfig PoolConfig::from_spec(const pb::LayerSpec& spec, dnnl::algorithm max_or_avg,
                                 const SampleShape& in, const std::string& where) {
  if (!spec.has_pool()) throw Error::invalid_input(where + ": missing 'pool { kernel: ... }'");
  const pb::PoolParams& p = spec.pool();
  if (p.kernel().empty()) throw Error::invalid_input(where + ": pool.kernel is required");
  const size_t rank = in.spatial.size();
  PoolConfig c;
  c.window.kernel = expand_dims(p.kernel(), rank, 1, 1, where, "pool.kernel");
  // PyTorch's convention: without a stride, windows do not overlap.
  c.window.stride = p.stride().empty() ? c.window.kernel
                                       : expand_dims(p.stride(), rank, 1, 1, where, "pool.stride");
  c.window.pad = expand_dims(p.pad(), rank, 0, 0, where, "pool.pad");
  for (size_t i = 0; i < rank; ++i) {
    if (c.window.pad[i] >= c.window.kernel[i]) {
      throw Error::invalid_input(
          fmt::format("{}: pool.pad ({}) must be smaller than pool.kernel ({})", where,
                      c.window.pad[i], c.window.kernel[i]));
    }
  }
  c.algorithm = max_or_avg;
  if (max_or_avg != dnnl::algorithm::pooling_max) {
    c.algorithm = p.exclude_padding() ? dnnl::algorithm::pooling_avg_exclude_padding
                                      : dnnl::algorithm::pooling_avg_include_padding;
  } else if (p.exclude_padding()) {
    throw Error::invalid_input(where + ": pool.exclude_padding applies to average pooling only");
  }
  return c;
}

SampleShape PoolConfig::output_shape(const SampleShape& in, const std::string& where) const {
  SampleShape out{in.channels, window.output(in.spatial)};
  for (int64_t extent : out.spatial) {
    if (extent <= 0) {
      throw Error::invalid_input(fmt::format(
          "{}: output size would be {} (input {}, kernel {}, stride {})", where, out.str(),
          in.str(), fmt::join(window.kernel, "x"), fmt::join(window.stride, "x")));
    }
  }
  return out;
}

void Pool::build_forward(BuildContext& ctx, const Tensor& src) {
  const Dims src_dims = src.shape();
  const SampleShape in{src_dims[1], {src_dims.begin() + 2, src_dims.end()}};
  const Dims dst_dims = config_.output_shape(in, name()).batch_dims(src_dims[0]);
  padding_r_ = config_.window.right_padding(in.spatial);
  src_desc_ = src.desc();
  if (config_.algorithm == dnnl::algorithm::pooling_max) {
    window_max_ = WindowMaxPool::create(src_desc_, config_.window);
  }
  if (window_max_) {
    CONVOY_CHECK(window_max_->dst_desc().dims() == dst_dims);
    dst_ = Tensor(window_max_->dst_desc(), ctx.engine());
    argmax_ = AlignedBuffer<uint8_t>(window_max_->argmax_bytes());
    const bool relu = relu_offered_;
    forward_ops_.emplace_back([this, in = src.memory(), out = dst_.memory(), relu] {
      window_max_->forward(in.get_data_handle(), out.get_data_handle(), argmax_.data(), relu);
    });
    return;
  }

  const auto prop =
      ctx.training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::pooling_forward::desc d(prop, config_.algorithm, src_desc_,
                                any_desc(dst_dims, src_desc_.data_type()), config_.window.stride,
                                config_.window.kernel, config_.window.pad, padding_r_);
  forward_pd_ = ctx.training() && config_.algorithm == dnnl::algorithm::pooling_max
                    ? max_pooling_forward_for_training(d, ctx.attr(), ctx.engine())
                    : dnnl::pooling_forward::primitive_desc(d, ctx.attr(), ctx.engine());
  dst_ = Tensor(forward_pd_.dst_desc(), ctx.engine());
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src.memory()},
                                             {DNNL_ARG_DST, dst_.memory()}};
  if (forward_pd_.workspace_desc().get_size() > 0) {
    workspace_ = dnnl::memory(forward_pd_.workspace_desc(), ctx.engine());
    args.emplace(DNNL_ARG_WORKSPACE, workspace_);
  }
  forward_ops_.push_back(ctx.make_op(forward_pd_, std::move(args)));
}

void Pool::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  if (!need_diff_src) return;  // no parameters: nothing to compute
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  if (window_max_) {
    diff_src_ = Tensor(src_desc_, ctx.engine());
    backward_ops_.emplace_back([this, grad = diff_dst.memory(), out = diff_src_.memory()] {
      window_max_->backward(grad.get_data_handle(), argmax_.data(), out.get_data_handle());
    });
    return;
  }
  dnnl::pooling_backward::desc d(config_.algorithm, src_desc_, diff_dst.desc(),
                                 config_.window.stride, config_.window.kernel, config_.window.pad,
                                 padding_r_);
  dnnl::pooling_backward::primitive_desc pd(d, ctx.attr(), ctx.engine(), forward_pd_);
  diff_src_ = Tensor(src_desc_, ctx.engine());
  std::vector<Op> after;
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_DIFF_DST, ctx.convert(diff_dst.memory(), pd.diff_dst_desc(), backward_ops_)},
      {DNNL_ARG_DIFF_SRC, ctx.convert_into(diff_src_.memory(), pd.diff_src_desc(), after)}};
  if (workspace_) args.emplace(DNNL_ARG_WORKSPACE, workspace_);
  backward_ops_.push_back(ctx.make_op(pd, std::move(args)));
  for (Op& op : after) backward_ops_.push_back(std::move(op));
}

}  // namespace convoy
