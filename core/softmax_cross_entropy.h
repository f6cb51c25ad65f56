// SoftmaxCrossEntropy: the training loss over a batch of logits.
//
// log-softmax runs on oneDNN's logsoftmax primitive (it subtracts the row maximum, so large
// logits neither overflow nor lose precision). For the first `count` rows (the real samples of a
// possibly padded batch):
//   loss      = mean_i -log_softmax(z_i)[y_i]
//   gradient  = (softmax(z_i) - onehot(y_i)) / divisor, and 0 for padding rows.
// With divisor = count the gradient is d loss/dz. Data-parallel training passes the global batch
// size instead, so that summing the gradients of all processes gives the global mean's.
// With label smoothing e (as PyTorch's CrossEntropyLoss(label_smoothing=e)) the target is
// (1 - e) on the true class plus e / classes on every class:
//   loss      = mean_i -(1 - e) log_softmax(z_i)[y_i] - (e / classes) sum_j log_softmax(z_i)[j]
//   gradient  = (softmax(z_i) - (1 - e) onehot(y_i) - e / classes) / divisor.
// The gradient is written into the tensor given at construction, ready for the backward pass.
#pragma once

#include <span>
#include <vector>

#include "core/op.h"
#include "core/tensor.h"

namespace convoy {

struct LossResult {
  double loss = 0.0;    // mean over the counted rows
  int64_t correct = 0;  // rows whose argmax equals the label
};

class SoftmaxCrossEntropy {
 public:
  // `logits` and `diff_logits`: plain [batch, classes] tensors that outlive this object.
  SoftmaxCrossEntropy(BuildContext& ctx, const Tensor& logits, const Tensor& diff_logits);

  // Labels must lie in [0, classes). Rows >= count get a zero gradient and no prediction use.
  // divisor 0 means `count`. `smoothing` in [0, 1).
  LossResult compute(const dnnl::stream& stream, std::span<const int32_t> labels, int64_t count,
                     int64_t divisor = 0, float smoothing = 0.f);
  // argmax of each row's logits from the last compute() (first maximum on ties).
  std::span<const int32_t> predictions() const { return predictions_; }

 private:
  Tensor logits_, diff_logits_, log_probs_;
  int64_t batch_, classes_;
  std::vector<Op> ops_;
  std::vector<int32_t> predictions_;
};

}  // namespace convoy
