#include "dist/gradient_reducer.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string_view>

#include "core/crc32.h"
#include "core/error.h"
#include "core/stopwatch.h"

namespace convoy {

namespace {

// Identifies a memory layout (dims, blocking, padding) so ranks can compare theirs.
uint32_t layout_signature(const dnnl::memory::desc& desc, uint32_t crc) {
  const dnnl_memory_desc_t& d = desc.data;
  return crc32({reinterpret_cast<const char*>(&d), sizeof d}, crc);
}

}  // namespace

GradientReducer::GradientReducer(Communicator& comm, Model& model, const dnnl::stream& stream,
                                 size_t bucket_bytes)
    : comm_(comm), stream_(stream), ctx_(stream.get_engine(), /*training=*/false) {
  // Gradients in the order backward produces them: last layer first.
  std::vector<Parameter*> ready;
  layer_gradients_.resize(model.layer_count());
  for (size_t l = model.layer_count(); l-- > 0;) {
    for (Parameter& p : model.layer(l).parameters()) {
      layer_gradients_[l].push_back(ready.size());
      ready.push_back(&p);
    }
  }
  // Zero-copy needs every rank to lay out every gradient identically.
  uint32_t signature = 0;
  for (const Parameter* p : ready) signature = layout_signature(p->grad.desc(), signature);
  bool same_layouts = true;
  for (const std::string& s : comm.allgather(fmt::format("{:08x}", signature))) {
    same_layouts = same_layouts && s == fmt::format("{:08x}", signature);
  }

  // Bucket slots: the raw buffer (block padding included) in zero-copy mode, plain otherwise.
  std::vector<size_t> elements;
  for (const Parameter* p : ready) {
    elements.push_back(same_layouts ? p->grad.bytes() / sizeof(float)
                                    : static_cast<size_t>(p->grad.size()));
  }
  buckets_ = assign_buckets(elements, bucket_bytes);
  bucket_of_.resize(ready.size());
  std::vector<float*> slot(ready.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    // The last bucket carries the step's totals in extra slots after its gradients.
    const bool last = b + 1 == buckets_.size();
    data_.emplace_back(buckets_[b].elements + (last ? ProcessGroup::kMaxTotals : 0));
    for (size_t m = 0; m < buckets_[b].members.size(); ++m) {
      bucket_of_[buckets_[b].members[m]] = b;
      slot[buckets_[b].members[m]] = data_[b].data() + buckets_[b].offsets[m];
    }
  }
  const dnnl::engine& engine = ctx_.engine();
  for (size_t i = 0; i < ready.size(); ++i) {
    Tensor& grad = ready[i]->grad;
    if (same_layouts) {
      // The gradient moves into its bucket; every primitive bound to it follows the handle.
      std::memcpy(slot[i], grad.data(), grad.bytes());
      grad.memory().set_data_handle(slot[i]);
      continue;
    }
    dnnl::memory plain(grad.plain_desc(), engine, slot[i]);
    pack_.push_back(ctx_.make_op(
        dnnl::reorder::primitive_desc(engine, grad.desc(), engine, plain.get_desc(), ctx_.attr()),
        {{DNNL_ARG_FROM, grad.memory()}, {DNNL_ARG_TO, plain}}));
    unpack_.push_back(ctx_.make_op(
        dnnl::reorder::primitive_desc(engine, plain.get_desc(), engine, grad.desc(), ctx_.attr()),
        {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, grad.memory()}}));
  }
  ctx_.scratchpad().allocate();
  pending_.resize(buckets_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].members.size();
  thread_ = std::thread([this] { communicate(); });
}

GradientReducer::~GradientReducer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

size_t GradientReducer::bytes_per_step() const {
  size_t n = 0;
  for (const Bucket& b : buckets_) n += b.elements * sizeof(float);
  return n;
}

void GradientReducer::set_timeline(Timeline* timeline) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !in_mpi_; });
  timeline_ = timeline;
}

GradientReducer::Stats GradientReducer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void GradientReducer::layer_ready(size_t layer) {
  const std::vector<size_t>& gradients = layer_gradients_[layer];
  if (gradients.empty()) return;
  if (!pack_.empty()) {
    const Stopwatch start;
    for (size_t i : gradients) pack_[i].run(stream_);
    stream_.wait();
    stats_.pack_seconds += start.seconds();
  }
  for (size_t i : gradients) {
    CONVOY_CHECK(pending_[bucket_of_[i]] > 0);
    --pending_[bucket_of_[i]];
  }
  // Hand over complete buckets in bucket order, the same sequence on every rank.
  size_t ready = next_ready_;
  while (ready < buckets_.size() && pending_[ready] == 0) ++ready;
  if (ready == next_ready_) return;
  next_ready_ = ready;
  // The last bucket completes with the last layer, when backward is over: finish() reduces it on
  // this thread rather than paying a hand-over to the communication thread and back.
  const size_t hand_over = std::min(ready, buckets_.size() - 1);
  {
    std::lock_guard lock(mutex_);
    if (hand_over <= queued_) return;
    queued_ = hand_over;
  }
  changed_.notify_all();
}

void GradientReducer::reduce(size_t bucket, Timeline::Lane lane) {
  const Stopwatch start;
  {
    const Timeline::Scope span(
        timeline_, lane,
        timeline_ != nullptr
            ? fmt::format("all-reduce bucket {} ({} values)", bucket, data_[bucket].size())
            : std::string(),
        "allreduce");
    comm_.allreduce_sum({data_[bucket].data(), data_[bucket].size()});
  }
  const double seconds = start.seconds();
  std::lock_guard lock(mutex_);
  stats_.reduce_seconds += seconds;
  ++stats_.buckets_reduced;
  ++reduced_;
}

void GradientReducer::communicate() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || taken_ < queued_; });
    if (stop_) return;
    const size_t bucket = taken_++;
    in_mpi_ = true;
    lock.unlock();
    reduce(bucket, Timeline::kCommunication);
    lock.lock();
    in_mpi_ = false;
    changed_.notify_all();
  }
}

void GradientReducer::finish(std::span<double> totals) {
  CONVOY_CHECK(totals.size() <= ProcessGroup::kMaxTotals && !buckets_.empty());
  // The last bucket is never handed to the communication thread: its slots are ours to fill.
  float* slots = data_.back().data() + buckets_.back().elements;
  for (size_t i = 0; i < ProcessGroup::kMaxTotals; ++i) {
    slots[i] = i < totals.size() ? static_cast<float>(totals[i]) : 0.f;
  }
  CONVOY_CHECK(next_ready_ == buckets_.size());  // every layer reported its gradients
  const Stopwatch start;
  size_t first = 0, last = 0;
  {
    // MPI_THREAD_SERIALIZED: let the communication thread leave MPI, then take what it has not.
    std::unique_lock lock(mutex_);
    stats_.buckets_done_before_finish += static_cast<int64_t>(reduced_);
    changed_.wait(lock, [&] { return !in_mpi_; });
    first = taken_;
    last = buckets_.size();
    taken_ = last;
  }
  for (size_t b = first; b < last; ++b) reduce(b, Timeline::kTrain);
  for (size_t i = 0; i < totals.size(); ++i) totals[i] = slots[i];
  {
    std::lock_guard lock(mutex_);
    CONVOY_CHECK(reduced_ == buckets_.size());
    stats_.finish_wait_seconds += start.seconds();
    reduced_ = taken_ = queued_ = 0;
    ++stats_.steps;
  }
  if (!unpack_.empty()) {
    const Stopwatch unpack_start;
    for (const Op& op : unpack_) op.run(stream_);
    stream_.wait();
    stats_.pack_seconds += unpack_start.seconds();
  }
  next_ready_ = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].members.size();
}

}  // namespace convoy
