#include "core/op.h"

#include <algorithm>
#include <stdexcept>

#include "core/error.h"

namespace convoy {

Op::Op(dnnl::primitive primitive, const std::unordered_map<int, dnnl::memory>& args)
    : primitive_(std::move(primitive)) {
  memories_.reserve(args.size());
  args_.reserve(args.size());
  for (const auto& [index, memory] : args) {
    memories_.push_back(memory);
    args_.push_back({index, memory.get()});
  }
}

void Op::run(const dnnl::stream& stream) const {
  if (function_) {
    function_();
    return;
  }
  const dnnl_status_t status = dnnl_primitive_execute(primitive_.get(), stream.get(),
                                                      static_cast<int>(args_.size()), args_.data());
  if (status != dnnl_success) {
    throw Error::internal("oneDNN primitive execution failed (status " +
                          std::to_string(static_cast<int>(status)) + ")");
  }
}

dnnl::memory Scratchpad::memory_for(const dnnl::memory::desc& desc, const dnnl::engine& engine) {
  CONVOY_CHECK(buffer_.empty());
  dnnl::memory memory(desc, engine, DNNL_MEMORY_NONE);
  needed_ = std::max(needed_, desc.get_size());
  users_.push_back(memory);
  return memory;
}

void Scratchpad::allocate() {
  CONVOY_CHECK(buffer_.empty());
  buffer_ = AlignedBuffer<unsigned char>(needed_);
  for (dnnl::memory& memory : users_) memory.set_data_handle(buffer_.data());
}

BuildContext::BuildContext(dnnl::engine engine, bool training, Precision precision)
    : engine_(std::move(engine)), training_(training), precision_(precision) {
  attr_.set_scratchpad_mode(dnnl::scratchpad_mode::user);
}

Op BuildContext::make_op(const dnnl::primitive_desc_base& pd,
                         std::unordered_map<int, dnnl::memory> args) {
  const dnnl::memory::desc scratch = pd.scratchpad_desc();
  if (scratch.get_size() > 0) {
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(scratch, engine_));
  }
  return Op(dnnl::primitive(pd.get()), args);
}

dnnl::memory BuildContext::convert(const dnnl::memory& from, const dnnl::memory::desc& want,
                                   std::vector<Op>& ops) {
  if (from.get_desc() == want) return from;
  dnnl::memory to(want, engine_);
  dnnl::reorder::primitive_desc pd(engine_, from.get_desc(), engine_, want, attr_);
  ops.push_back(make_op(pd, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}));
  return to;
}

dnnl::memory BuildContext::convert_into(const dnnl::memory& target,
                                        const dnnl::memory::desc& produced,
                                        std::vector<Op>& after) {
  if (target.get_desc() == produced) return target;
  dnnl::memory from(produced, engine_);
  dnnl::reorder::primitive_desc pd(engine_, produced, engine_, target.get_desc(), attr_);
  after.push_back(make_op(pd, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, target}}));
  return from;
}

}  // namespace convoy
