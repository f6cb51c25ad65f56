#include "core/dropout.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"
#include "core/random.h"

namespace convoy {

float dropout_rate(const pb::LayerSpec& spec, const std::string& where) {
  const float rate = spec.dropout().rate();
  if (!(rate >= 0.f && rate < 1.f)) {
    throw Error::invalid_input(
        fmt::format("{}: dropout.rate must be in [0, 1), got {}", where, rate));
  }
  return rate;
}

namespace {

// FNV-1a: a stable hash of the layer's name (std::hash may differ between library versions).
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

Dropout::Dropout(std::string name, float rate)
    : Layer(std::move(name)), rate_(rate), salt_(name_hash(this->name())) {}

float Dropout::mask_value(uint64_t row_key, uint64_t index) const {
  // 24 random bits: a uniform draw in [0, 1) on a grid of 2^-24, exact in float.
  const float u = static_cast<float>(mix_seed(row_key ^ salt_, index) >> 40) * 0x1.0p-24f;
  return u < rate_ ? 0.f : 1.f / (1.f - rate_);
}

void Dropout::build_forward(BuildContext& ctx, const Tensor& src) {
  src_desc_ = src.desc();
  const Dims dims = src.shape();
  rows_ = dims[0];
  row_size_ = element_count(dims) / rows_;
  // Plain layout, so that an element's position (and so its mask) does not depend on the layout
  // a previous layer chose.
  std::vector<Op> to_plain;
  src_plain_ = ctx.convert(src.memory(), plain_desc(dims), to_plain);
  dst_ = Tensor(plain_desc(dims), ctx.engine());
  const size_t bytes = dst_.bytes();
  Op pass_through([this, bytes] { std::memcpy(dst_.data(), src_plain_.get_data_handle(), bytes); });
  evaluation_ops_ = to_plain;
  evaluation_ops_.push_back(pass_through);
  forward_ops_ = to_plain;
  if (!ctx.training()) {
    forward_ops_.push_back(pass_through);
    return;
  }
  row_keys_ = ctx.row_keys();
  mask_ = AlignedBuffer<float>(static_cast<size_t>(rows_ * row_size_));
  forward_ops_.emplace_back([this] { draw_and_apply(); });
}

void Dropout::draw_and_apply() {
  const auto* src = static_cast<const float*>(src_plain_.get_data_handle());
  float* dst = dst_.data();
  float* mask = mask_.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows_; ++r) {
    const uint64_t key = row_keys_[static_cast<size_t>(r)];
    for (int64_t j = 0; j < row_size_; ++j) {
      const int64_t i = r * row_size_ + j;
      mask[i] = mask_value(key, static_cast<uint64_t>(j));
      dst[i] = src[i] * mask[i];
    }
  }
}

void Dropout::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  if (!need_diff_src) return;
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  diff_src_ = Tensor(src_desc_, ctx.engine());
  std::vector<Op> after;
  const dnnl::memory plain = ctx.convert_into(diff_src_.memory(), dst_.desc(), after);
  const int64_t n = rows_ * row_size_;
  const float* mask = mask_.data();
  const float* dd = diff_dst.data();
  auto* ds = static_cast<float*>(plain.get_data_handle());
  backward_ops_.emplace_back([=] {
#pragma omp parallel for simd schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; ++i) ds[i] = dd[i] * mask[i];
  });
  for (Op& op : after) backward_ops_.push_back(std::move(op));
}

}  // namespace convoy
