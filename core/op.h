// Op: a oneDNN primitive bound to its argument memories once, when a model is built (or, for the
// few steps oneDNN has no primitive for, such as dropout's mask, a hand-written function).
//
// The training step only calls Op::run(): no primitive descriptors, no argument maps and no heap
// allocation happen per step. (dnnl::primitive::execute() converts its std::unordered_map of
// arguments into a fresh vector on every call, so run() goes through the C API with the argument
// array prepared here.)
//
// BuildContext carries what every layer needs while it creates its primitives: the engine, the
// primitive attributes (user-managed scratchpad) and the model's shared scratchpad.
#pragma once

#include <cstdint>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/precision.h"

namespace convoy {

class Op {
 public:
  Op(dnnl::primitive primitive, const std::unordered_map<int, dnnl::memory>& args);
  // A hand-written step; it must not allocate.
  explicit Op(std::function<void()> function) : function_(std::move(function)) {}
  void run(const dnnl::stream& stream) const;

 private:
  std::function<void()> function_;
  dnnl::primitive primitive_;
  std::vector<dnnl::memory> memories_;  // keeps every argument alive as long as the op
  std::vector<dnnl_exec_arg_t> args_;
};

// One scratchpad buffer shared by all primitives of a model. Primitives run one after another on
// one stream, so they can share it; its size is the largest any primitive asked for.
class Scratchpad {
 public:
  // A memory object for `desc` (a primitive's scratchpad_desc()) whose buffer is assigned by
  // allocate(). Call allocate() once after the last memory_for().
  dnnl::memory memory_for(const dnnl::memory::desc& desc, const dnnl::engine& engine);
  void allocate();
  size_t bytes() const { return buffer_.size(); }

 private:
  std::vector<dnnl::memory> users_;
  AlignedBuffer<unsigned char> buffer_;
  size_t needed_ = 0;
};

class BuildContext {
 public:
  // `training`: build for training (forward_training, backward primitives) or inference only.
  // `precision`: what convolutions and dense layers compute in (precision.h).
  BuildContext(dnnl::engine engine, bool training, Precision precision = Precision::kFloat32);

  const dnnl::engine& engine() const { return engine_; }
  bool training() const { return training_; }
  Precision precision() const { return precision_; }
  // The data type of the activations convolutions and dense layers read and write (f32 or bf16).
  dnnl::memory::data_type compute_type() const { return convoy::compute_type(precision_); }
  // Attributes every primitive descriptor is created with (user-managed scratchpad).
  const dnnl::primitive_attr& attr() const { return attr_; }
  Scratchpad& scratchpad() { return scratchpad_; }
  // One key per row of the batch, set before every training step (model.h): the seed of
  // everything random about that row in this step (dropout's mask). Sized by set_batch_size().
  void set_batch_size(int64_t batch) { row_keys_.assign(static_cast<size_t>(batch), 0); }
  std::span<uint64_t> row_keys() { return row_keys_; }

  // Creates the primitive for `pd` and binds it to `args` plus the scratchpad.
  Op make_op(const dnnl::primitive_desc_base& pd, std::unordered_map<int, dnnl::memory> args);

  // Returns `from` when it already has layout `want`; otherwise a new buffer of layout `want`,
  // and appends to `ops` the reorder that fills it from `from`.
  dnnl::memory convert(const dnnl::memory& from, const dnnl::memory::desc& want,
                       std::vector<Op>& ops);
  // The other direction, for a primitive that produces layout `produced` whose result belongs in
  // `target`: returns the memory the primitive should write (`target` itself when the layouts
  // match) and appends to `after` the reorder into `target` (nothing when they match). Run the
  // ops in `after` after the primitive.
  dnnl::memory convert_into(const dnnl::memory& target, const dnnl::memory::desc& produced,
                            std::vector<Op>& after);

 private:
  dnnl::engine engine_;
  bool training_;
  Precision precision_;
  std::vector<uint64_t> row_keys_;
  dnnl::primitive_attr attr_;
  Scratchpad scratchpad_;
};

}  // namespace convoy
