#include "core/softmax_cross_entropy.h"

#include <cmath>

#include "core/error.h"

namespace convoy {

SoftmaxCrossEntropy::SoftmaxCrossEntropy(BuildContext& ctx, const Tensor& logits,
                                         const Tensor& diff_logits)
    : logits_(logits), diff_logits_(diff_logits) {
  const Dims dims = logits.shape();
  CONVOY_CHECK(dims.size() == 2 && logits.is_plain() && diff_logits.desc() == logits.desc());
  batch_ = dims[0];
  classes_ = dims[1];
  log_probs_ = Tensor(logits.desc(), ctx.engine());
  dnnl::logsoftmax_forward::desc d(dnnl::prop_kind::forward_inference, logits.desc(), 1);
  dnnl::logsoftmax_forward::primitive_desc pd(d, ctx.attr(), ctx.engine());
  ops_.push_back(
      ctx.make_op(pd, {{DNNL_ARG_SRC, logits_.memory()}, {DNNL_ARG_DST, log_probs_.memory()}}));
  predictions_.assign(static_cast<size_t>(batch_), 0);
}

LossResult SoftmaxCrossEntropy::compute(const dnnl::stream& stream, std::span<const int32_t> labels,
                                        int64_t count, int64_t divisor, float smoothing) {
  CONVOY_CHECK(count > 0 && count <= batch_ && static_cast<int64_t>(labels.size()) >= count);
  CONVOY_CHECK(smoothing >= 0.f && smoothing < 1.f);
  for (const Op& op : ops_) op.run(stream);
  dnnl::stream(stream).wait();  // a handle copy: wait() is not const
  const float* logp = log_probs_.data();
  const float* z = logits_.data();
  float* grad = diff_logits_.data();
  const float scale = 1.0f / static_cast<float>(divisor > 0 ? divisor : count);
  LossResult result;
  for (int64_t i = 0; i < batch_; ++i) {
    const float* row = logp + i * classes_;
    float* g = grad + i * classes_;
    if (i >= count) {
      for (int64_t j = 0; j < classes_; ++j) g[j] = 0.f;
      continue;
    }
    const int32_t y = labels[static_cast<size_t>(i)];
    CONVOY_CHECK(y >= 0 && y < classes_);
    int32_t best = 0;
    if (smoothing == 0.f) {
      result.loss -= row[y];
      for (int64_t j = 0; j < classes_; ++j) {
        g[j] = (std::exp(row[j]) - (j == y ? 1.f : 0.f)) * scale;
        if (z[i * classes_ + j] > z[i * classes_ + best]) best = static_cast<int32_t>(j);
      }
    } else {
      const float spread = smoothing / static_cast<float>(classes_);
      double sum = 0.0;
      for (int64_t j = 0; j < classes_; ++j) {
        sum += row[j];
        g[j] = (std::exp(row[j]) - (j == y ? 1.f - smoothing : 0.f) - spread) * scale;
        if (z[i * classes_ + j] > z[i * classes_ + best]) best = static_cast<int32_t>(j);
      }
      result.loss -= (1.0 - smoothing) * row[y] + spread * sum;
    }
    predictions_[static_cast<size_t>(i)] = best;
    if (best == y) ++result.correct;
  }
  result.loss /= static_cast<double>(count);
  return result;
}

}  // namespace convoy
