#include "core/tensor.h"

#include <cstring>
#include <functional>
#include <numeric>

#include "core/error.h"

namespace convoy {

using tag = dnnl::memory::format_tag;

tag plain_tag(size_t rank) {
  switch (rank) {
    case 1:
      return tag::a;
    case 2:
      return tag::ab;
    case 3:
      return tag::abc;
    case 4:
      return tag::abcd;
    case 5:
      return tag::abcde;
    case 6:
      return tag::abcdef;
  }
  CONVOY_CHECK(false && "tensor rank must be 1..6");
}

dnnl::memory::desc plain_desc(const Dims& dims, dnnl::memory::data_type type) {
  return {dims, type, plain_tag(dims.size())};
}

dnnl::memory::desc any_desc(const Dims& dims, dnnl::memory::data_type type) {
  return {dims, type, tag::any};
}

dnnl::memory::desc with_type(const dnnl::memory::desc& desc, dnnl::memory::data_type type) {
  // oneDNN 2.x has no call for this; its blocking and strides count elements, not bytes, so the
  // layout carries over as it is. Only plain blocked layouts (no compensation extras, which
  // oneDNN adds for int8 weights only) are converted.
  dnnl_memory_desc_t d = desc.data;
  CONVOY_CHECK(d.format_kind == dnnl_blocked && d.extra.flags == dnnl_memory_extra_flag_none);
  d.data_type = static_cast<dnnl_data_type_t>(type);
  return dnnl::memory::desc(d);
}

int64_t element_count(const Dims& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

Tensor::Tensor(const dnnl::memory::desc& desc, const dnnl::engine& engine) : memory_(desc, engine) {
  zero();
}

int64_t Tensor::size() const {
  const dnnl_memory_desc_t& d = memory_.get_desc().data;
  int64_t n = 1;
  for (int i = 0; i < d.ndims; ++i) n *= d.dims[i];
  return n;
}

void Tensor::zero() {
  std::memset(memory_.get_data_handle(), 0, bytes());
}

void Tensor::copy_from_plain(std::span<const float> values) {
  CONVOY_CHECK(static_cast<int64_t>(values.size()) == size());
  const dnnl::engine engine = memory_.get_engine();
  dnnl::memory src(plain_desc(), engine, const_cast<float*>(values.data()));
  dnnl::stream stream(engine);
  dnnl::reorder(src, memory_).execute(stream, src, memory_);
  stream.wait();
}

std::vector<float> Tensor::to_plain() const {
  std::vector<float> out(static_cast<size_t>(size()));
  const dnnl::engine engine = memory_.get_engine();
  dnnl::memory dst(plain_desc(), engine, out.data());
  dnnl::stream stream(engine);
  dnnl::reorder(memory_, dst).execute(stream, const_cast<dnnl::memory&>(memory_), dst);
  stream.wait();
  return out;
}

}  // namespace convoy
