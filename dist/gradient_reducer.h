// GradientReducer: sums every parameter gradient over the ranks of a job while the backward pass
// is still running. Two calls per step, as in Flashlight's reducers:
//
//   layer_ready(i)  after layer i's backward: its gradients are final. When that completes a
//                   bucket, the bucket is handed to the reducer's communication thread, which
//                   all-reduces buckets one after another with blocking MPI_Allreduce while the
//                   training thread goes on with the backward pass of earlier layers.
//   finish()        after backward: reduces on the training thread whatever buckets the
//                   communication thread has not taken yet -- always the last one, which is
//                   complete only when backward is over -- then waits for the rest.
//
// The reducer sums; the trainer makes each rank's gradient 1/size of its local mean (through the
// loss gradient), so the sum is the mean over the global batch.
//
// Buckets come from assign_buckets() over the gradients in the order backward produces them, so
// they complete, and are reduced, in the same order on every rank (PyTorch's c10d habit). When
// every rank stores every gradient in the same memory layout (checked collectively at
// construction), the gradients live inside the bucket buffers and nothing is copied; otherwise
// (ranks on different CPUs may block differently) each gradient is packed into its bucket in
// plain layout and unpacked after the reduction.
//
// Threads: MPI is called by the communication thread while a step's buckets are in flight and by
// the training thread only between steps, never both at once (MPI_THREAD_SERIALIZED). Nothing is
// allocated per step.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/model.h"
#include "core/op.h"
#include "core/process_group.h"
#include "core/timeline.h"
#include "dist/bucket_assignment.h"
#include "dist/communicator.h"

namespace convoy {

class GradientReducer {
 public:
  // `model` must outlive the reducer; its parameters are fixed from here on. Collective: every
  // rank constructs its reducer at the same point.
  GradientReducer(Communicator& comm, Model& model, const dnnl::stream& stream,
                  size_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void layer_ready(size_t layer);
  // `totals` (at most ProcessGroup::kMaxTotals values) are summed along with the last bucket.
  void finish(std::span<double> totals = {});

  struct Stats {
    int64_t steps = 0;
    int64_t buckets_reduced = 0;
    int64_t buckets_done_before_finish = 0;  // reduced while backward was still running
    double reduce_seconds = 0.0;             // time the communication thread spent in all-reduce
    double finish_wait_seconds = 0.0;        // time finish() blocked: communication not hidden
    double pack_seconds = 0.0;  // copying gradients in and out of buckets (copy mode only)
  };
  // Totals since construction. Read between steps.
  Stats stats() const;
  // Records each bucket's all-reduce there (on the lane of the thread doing it); null: nothing.
  // Waits until the communication thread is outside a reduction. Not owned.
  void set_timeline(Timeline* timeline);
  const std::vector<Bucket>& buckets() const { return buckets_; }
  size_t bytes_per_step() const;
  // True when gradients live in the buckets (no copies).
  bool zero_copy() const { return pack_.empty(); }

 private:
  void communicate();  // the communication thread
  // One bucket's all-reduce, on whichever thread claimed it (`lane` names that thread).
  void reduce(size_t bucket, Timeline::Lane lane);

  Communicator& comm_;
  dnnl::stream stream_;
  BuildContext ctx_;
  std::vector<Bucket> buckets_;
  std::vector<AlignedBuffer<float>> data_;  // one buffer per bucket
  std::vector<size_t> pending_;             // per bucket: gradients not yet ready this step
  std::vector<std::vector<size_t>> layer_gradients_;  // per layer: gradient indices (ready order)
  std::vector<size_t> bucket_of_;                     // per gradient
  std::vector<Op> pack_, unpack_;                     // per gradient; empty in zero-copy mode
  size_t next_ready_ = 0;  // buckets handed to the communication thread this step

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  size_t queued_ = 0;    // buckets ready to be reduced this step (a prefix, in order)
  size_t taken_ = 0;     // buckets claimed for reduction by either thread
  size_t reduced_ = 0;   // buckets reduced this step
  bool in_mpi_ = false;  // the communication thread is inside a collective
  bool stop_ = false;
  Stats stats_;
  Timeline* timeline_ = nullptr;
  std::thread thread_;
};

}  // namespace convoy
