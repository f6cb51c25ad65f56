#include "core/flatten.h"

#include "core/error.h"

namespace convoy {

void Flatten::build_forward(BuildContext& ctx, const Tensor& src) {
  src_desc_ = src.desc();
  const Dims dims = src.shape();
  const dnnl::memory::data_type type = src_desc_.data_type();
  const dnnl::memory plain = ctx.convert(src.memory(), plain_desc(dims, type), forward_ops_);
  const Dims flat{dims[0], element_count(dims) / dims[0]};
  dst_ = Tensor(dnnl::memory(plain_desc(flat, type), ctx.engine(), plain.get_data_handle()));
  keep_alive_ = plain;
}

void Flatten::build_backward(BuildContext& ctx, const Tensor& diff_dst, bool need_diff_src) {
  if (!need_diff_src) return;
  CONVOY_CHECK(diff_dst.desc() == dst_.desc());
  const dnnl::memory unflat(plain_desc(src_desc_.dims(), src_desc_.data_type()), ctx.engine(),
                            diff_dst.memory().get_data_handle());
  diff_src_ = Tensor(ctx.convert(unflat, src_desc_, backward_ops_));
}

}  // namespace convoy
