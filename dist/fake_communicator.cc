#include "dist/fake_communicator.h"

#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

#include "core/error.h"

namespace convoy {

namespace {

template <typename T>
std::function<void(FakeWorld::Slot&)> summing() {
  return [](auto& slot) {
    const size_t n = slot.buffers[0].size() / sizeof(T);
    std::vector<T> total(n, T{});
    for (const auto& b : slot.buffers) {
      const T* v = reinterpret_cast<const T*>(b.data());
      for (size_t i = 0; i < n; ++i) total[i] += v[i];
    }
    for (auto& b : slot.buffers) std::memcpy(b.data(), total.data(), n * sizeof(T));
  };
}

}  // namespace

void FakeWorld::run(const std::function<void(Communicator&)>& body) {
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    threads.emplace_back([&, r] {
      FakeCommunicator comm(*this, r);
      try {
        body(comm);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void FakeWorld::arrive(int64_t sequence, int rank, std::span<std::byte> buffer, std::string text,
                       const std::function<void(Slot&)>& combine) {
  std::lock_guard lock(mutex_);
  Slot& slot = slots_[sequence];
  if (slot.buffers.empty()) {
    slot.buffers.resize(static_cast<size_t>(size_));
    slot.strings.resize(static_cast<size_t>(size_));
  }
  if (slot.arrived > 0 && slot.buffers[0].size() != buffer.size() && !buffer.empty() &&
      !slot.buffers[0].empty()) {
    throw Error::internal("collective called with different sizes on different ranks");
  }
  slot.buffers[static_cast<size_t>(rank)] = buffer;
  slot.strings[static_cast<size_t>(rank)] = std::move(text);
  if (combine) slot.combine = combine;
  if (++slot.arrived == size_) {
    if (slot.combine) slot.combine(slot);
    slot.done = true;
    changed_.notify_all();
  }
}

void FakeWorld::wait_done(int64_t sequence) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return slots_[sequence].done; });
}

void FakeWorld::leave(int64_t sequence) {
  std::lock_guard lock(mutex_);
  if (++slots_[sequence].left == size_) slots_.erase(sequence);
}

template <typename T>
void FakeCommunicator::sum_blocking(std::span<T> values) {
  const int64_t seq = sequence_++;
  world_.arrive(seq, rank_, std::as_writable_bytes(values), {}, summing<T>());
  world_.wait_done(seq);
  world_.leave(seq);
}

void FakeCommunicator::allreduce_sum(std::span<float> values) {
  sum_blocking(values);
}
void FakeCommunicator::allreduce_sum(std::span<double> values) {
  sum_blocking(values);
}
void FakeCommunicator::allreduce_sum(std::span<int64_t> values) {
  sum_blocking(values);
}

void FakeCommunicator::broadcast(std::span<std::byte> data, int root) {
  const int64_t seq = sequence_++;
  world_.arrive(seq, rank_, data, {}, [root](FakeWorld::Slot& slot) {
    const auto& src = slot.buffers[static_cast<size_t>(root)];
    for (auto& b : slot.buffers) {
      if (b.data() != src.data()) std::memcpy(b.data(), src.data(), src.size());
    }
  });
  world_.wait_done(seq);
  world_.leave(seq);
}

std::vector<std::string> FakeCommunicator::allgather(const std::string& mine) {
  const int64_t seq = sequence_++;
  std::vector<std::string> out;
  world_.arrive(seq, rank_, {}, mine, nullptr);
  world_.wait_done(seq);
  {
    std::lock_guard lock(world_.mutex_);
    out = world_.slots_[seq].strings;
  }
  world_.leave(seq);
  return out;
}

void FakeCommunicator::abort(int exit_code) {
  throw Error::internal("FakeCommunicator::abort(" + std::to_string(exit_code) + ")");
}

}  // namespace convoy
