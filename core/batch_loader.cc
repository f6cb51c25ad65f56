#include "core/batch_loader.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/random.h"

namespace convoy {

BatchLoader::BatchLoader(const Dataset& data, int64_t batch_size)
    : data_(data), batch_size_(batch_size) {
  CONVOY_CHECK(batch_size > 0);
  for (Batch& b : batches_buf_) {
    b.samples = AlignedBuffer<float>(static_cast<size_t>(batch_size * data.shape.elements()));
    b.labels.assign(static_cast<size_t>(batch_size), 0);
    b.ids.assign(static_cast<size_t>(batch_size), -1);
  }
  scratch_ = AlignedBuffer<float>(static_cast<size_t>(data.shape.elements()));
  thread_ = std::thread([this] { run(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void BatchLoader::start(std::vector<int64_t> order, bool keep_partial, Augmentation augmentation,
                        uint64_t augmentation_key) {
  std::unique_lock lock(mutex_);
  ++generation_;
  // The thread may be filling a slot for the old order; wait until it lets go.
  changed_.wait(lock, [&] { return state_[0] != Slot::kFilling && state_[1] != Slot::kFilling; });
  state_ = {Slot::kFree, Slot::kFree};
  in_use_ = -1;
  order_ = std::move(order);
  augmentation_ = augmentation;
  augmentation_key_ = augmentation_key;
  const auto n = static_cast<int64_t>(order_.size());
  batches_ = keep_partial ? (n + batch_size_ - 1) / batch_size_ : n / batch_size_;
  produced_ = 0;
  consumed_ = 0;
  lock.unlock();
  changed_.notify_all();
}

const Batch* BatchLoader::next() {
  std::unique_lock lock(mutex_);
  if (in_use_ >= 0) {
    state_[static_cast<size_t>(in_use_)] = Slot::kFree;
    in_use_ = -1;
    changed_.notify_all();
  }
  if (consumed_ >= batches_) return nullptr;
  const auto slot = static_cast<size_t>(consumed_ % 2);
  changed_.wait(lock, [&] { return state_[slot] == Slot::kReady; });
  state_[slot] = Slot::kInUse;
  in_use_ = static_cast<int>(slot);
  ++consumed_;
  return &batches_buf_[slot];
}

void BatchLoader::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] {
      return stop_ ||
             (produced_ < batches_ && state_[static_cast<size_t>(produced_ % 2)] == Slot::kFree);
    });
    if (stop_) return;
    const int64_t index = produced_++;
    const auto slot = static_cast<size_t>(index % 2);
    const uint64_t generation = generation_;
    state_[slot] = Slot::kFilling;
    lock.unlock();
    fill(batches_buf_[slot], index);  // order_ does not change while a slot is being filled
    lock.lock();
    state_[slot] = generation == generation_ ? Slot::kReady : Slot::kFree;
    changed_.notify_all();
  }
}

void BatchLoader::fill(Batch& batch, int64_t index) const {
  const int64_t first = index * batch_size_;
  const int64_t count = std::min<int64_t>(batch_size_, static_cast<int64_t>(order_.size()) - first);
  const auto sample_size = static_cast<size_t>(data_.shape.elements());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t s = order_[static_cast<size_t>(first + i)];
    data_.copy_sample(s,
                      {batch.samples.data() + static_cast<size_t>(i) * sample_size, sample_size});
    batch.labels[static_cast<size_t>(i)] = data_.labels[static_cast<size_t>(s)];
    batch.ids[static_cast<size_t>(i)] = s;
    if (augmentation_.enabled()) {
      augmentation_.apply(
          {batch.samples.data() + static_cast<size_t>(i) * sample_size, sample_size}, data_.shape,
          mix_seed(augmentation_key_, static_cast<uint64_t>(s)),
          {scratch_.data(), scratch_.size()});
    }
  }
  if (count < batch_size_) {
    std::memset(batch.samples.data() + static_cast<size_t>(count) * sample_size, 0,
                static_cast<size_t>(batch_size_ - count) * sample_size * sizeof(float));
    std::fill(batch.labels.begin() + count, batch.labels.end(), 0);
    std::fill(batch.ids.begin() + count, batch.ids.end(), -1);
  }
  batch.count = count;
  batch.index = index;
}

}  // namespace convoy
