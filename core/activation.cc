#include "core/activation.h"

#include <fmt/format.h>

#include "core/error.h"

namespace convoy {

std::vector<EltwiseStage> activation_stages(const pb::LayerSpec& spec, const std::string& where) {
  using alg = dnnl::algorithm;
  const std::string& type = spec.type();
  if (type == "ReLU") return {{alg::eltwise_relu, 0.f, 0.f}};
  if (type == "Sigmoid") return {{alg::eltwise_logistic, 0.f, 0.f}};
  if (type == "Tanh") return {{alg::eltwise_tanh, 0.f, 0.f}};
  if (type == "LeakyReLU") {
    // oneDNN's ReLU takes the slope for negative inputs as alpha.
    const float slope =
        spec.leaky_relu().has_negative_slope() ? spec.leaky_relu().negative_slope() : 0.01f;
    if (!(slope >= 0.f && slope < 1.f)) {
      throw Error::invalid_input(
          fmt::format("{}: leaky_relu.negative_slope must be in [0, 1), got {}", where, slope));
    }
    return {{alg::eltwise_relu, slope, 0.f}};
  }
  if (type == "ELU") {
    const float alpha = spec.elu().has_alpha() ? spec.elu().alpha() : 1.f;
    if (!(alpha > 0.f)) throw Error::invalid_input(fmt::format("{}: elu.alpha must be > 0", where));
    return {{alg::eltwise_elu, alpha, 0.f}};
  }
  if (type == "SELU") {
    // Klambauer et al. 2017, the constants PyTorch uses.
    constexpr float kAlpha = 1.6732632423543772f;
    constexpr float kScale = 1.0507009873554805f;
    return {{alg::eltwise_elu, kAlpha, 0.f}, {alg::eltwise_linear, kScale, 0.f}};
  }
  CONVOY_CHECK(false && "not an activation type");
}

void Activation::build_forward(BuildContext& ctx, const Tensor& src) {
  if (pass_through_) {
    dst_ = src;
    return;
  }
  const auto prop =
      ctx.training() ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  stage_src_ = {src};
  for (size_t i = 0; i < stages_.size(); ++i) {
    const EltwiseStage& s = stages_[i];
    dnnl::eltwise_forward::desc d(prop, s.algorithm, src.desc(), s.alpha, s.beta);
    forward_pds_.emplace_back(d, ctx.attr(), ctx.engine());
    Tensor out(src.desc(), ctx.engine());
    forward_ops_.push_back(
        ctx.make_op(forward_pds_.back(),
                    {{DNNL_ARG_SRC, stage_src_.back().memory()}, {DNNL_ARG_DST, out.memory()}}));
    if (i + 1 < stages_.size()) {
      stage_src_.push_back(out);
    } else {
      dst_ = out;
    }
  }
}

void Activation::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  if (!need_diff_src) return;
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  if (pass_through_) {
    diff_src_ = diff_dst;
    return;
  }
  Tensor grad = diff_dst;
  for (size_t i = stages_.size(); i-- > 0;) {
    const EltwiseStage& s = stages_[i];
    const dnnl::memory::desc desc = stage_src_[i].desc();
    dnnl::eltwise_backward::desc d(s.algorithm, desc, desc, s.alpha, s.beta);
    dnnl::eltwise_backward::primitive_desc pd(d, ctx.attr(), ctx.engine(), forward_pds_[i]);
    Tensor out(desc, ctx.engine());
    backward_ops_.push_back(ctx.make_op(pd, {{DNNL_ARG_SRC, stage_src_[i].memory()},
                                             {DNNL_ARG_DIFF_DST, grad.memory()},
                                             {DNNL_ARG_DIFF_SRC, out.memory()}}));
    grad = out;
  }
  diff_src_ = grad;
}

}  // namespace convoy
