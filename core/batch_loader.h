// BatchLoader: assembles batches on a background thread while the caller trains on the previous
// one (double buffering). Batches are gathered from a Dataset in a given order of sample indices.
//
// Contract: start() and next() are called from one thread (the training loop). A Batch returned
// by next() stays valid until the following next() or start() call. The loader never allocates
// after construction. Destroying it stops the thread.
#pragma once

#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/augmentation.h"
#include "core/dataset.h"

namespace convoy {

struct Batch {
  AlignedBuffer<float> samples;  // batch_size x sample size; rows >= count are zero
  std::vector<int32_t> labels;   // batch_size; rows >= count are 0
  std::vector<int64_t> ids;      // the samples' indices in the data set; rows >= count are -1
  int64_t count = 0;  // real samples in this batch (< batch_size only for a last partial batch)
  int64_t index = 0;  // position of the batch in the epoch
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& data, int64_t batch_size);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Serves `order` (sample indices) in batches. With `keep_partial`, a last incomplete batch is
  // served zero-padded; without, its samples are skipped. Abandons any batches not yet taken.
  // With an enabled `augmentation`, every sample is augmented with the key
  // mix_seed(augmentation_key, sample index).
  void start(std::vector<int64_t> order, bool keep_partial, Augmentation augmentation = {},
             uint64_t augmentation_key = 0);
  // The next batch, or nullptr when the order is exhausted. Blocks while it is being prepared.
  const Batch* next();
  int64_t batches() const { return batches_; }

 private:
  enum class Slot { kFree, kFilling, kReady, kInUse };
  void run();
  void fill(Batch& batch, int64_t index) const;

  const Dataset& data_;
  const int64_t batch_size_;
  std::array<Batch, 2> batches_buf_;
  std::array<Slot, 2> state_{Slot::kFree, Slot::kFree};
  std::vector<int64_t> order_;
  Augmentation augmentation_;
  uint64_t augmentation_key_ = 0;
  AlignedBuffer<float> scratch_;  // one sample, for the augmentation (loader thread only)
  int64_t batches_ = 0;
  int64_t produced_ = 0;     // next batch index the thread will fill
  int64_t consumed_ = 0;     // next batch index next() will return
  int in_use_ = -1;          // slot handed out by the last next()
  uint64_t generation_ = 0;  // bumped by start(): batches filled for an older order are dropped
  bool stop_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread thread_;
};

}  // namespace convoy
