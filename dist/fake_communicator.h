// FakeWorld: N ranks of a job as threads of one process, for tests of everything built on
// Communicator (the gradient reducer, sharding, consistency checks) without mpirun.
//
//   FakeWorld world(3);
//   world.run([](Communicator& comm) { ... });   // runs the function on 3 threads, one per rank
//
// Collectives match up by their position in each rank's sequence of calls, as with MPI.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

#include "dist/communicator.h"

namespace convoy {

class FakeWorld {
 public:
  explicit FakeWorld(int size) : size_(size) {}

  int size() const { return size_; }
  // Runs `body` once per rank, each on its own thread with its own Communicator; rethrows the
  // first exception any rank threw.
  void run(const std::function<void(Communicator&)>& body);

 private:
  friend class FakeCommunicator;

 public:
  // One collective in progress (an implementation detail shared with FakeCommunicator).
  struct Slot {
    int arrived = 0;
    int left = 0;
    bool done = false;
    std::vector<std::span<std::byte>> buffers;  // each rank's buffer, indexed by rank
    std::vector<std::string> strings;
    std::function<void(Slot&)> combine;  // run by the last rank to arrive
  };

 private:
  // Deposits `buffer` for collective number `sequence`; the last rank runs `combine`.
  void arrive(int64_t sequence, int rank, std::span<std::byte> buffer, std::string text,
              const std::function<void(Slot&)>& combine);
  void wait_done(int64_t sequence);
  // Called by each rank once it has read its result; frees the slot after the last one.
  void leave(int64_t sequence);

  int size_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Slot> slots_;
};

class FakeCommunicator final : public Communicator {
 public:
  FakeCommunicator(FakeWorld& world, int rank) : world_(world), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return world_.size(); }
  int local_rank() const override { return rank_; }
  int local_size() const override { return world_.size(); }

  void allreduce_sum(std::span<float> values) override;
  void allreduce_sum(std::span<double> values) override;
  void allreduce_sum(std::span<int64_t> values) override;
  void broadcast(std::span<std::byte> data, int root) override;
  std::vector<std::string> allgather(const std::string& mine) override;

  [[noreturn]] void abort(int exit_code) override;

 private:
  template <typename T>
  void sum_blocking(std::span<T> values);

  FakeWorld& world_;
  int rank_;
  int64_t sequence_ = 0;
};

}  // namespace convoy
