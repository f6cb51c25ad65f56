// AlignedBuffer: a heap buffer aligned to a cache line (64 bytes), the alignment oneDNN's kernels
// prefer for user-provided memory. Move-only; zero-filled on allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>

namespace convoy {

template <typename T>
class AlignedBuffer {
 public:
  static constexpr std::align_val_t kAlignment{64};

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t count)
      : data_(static_cast<T*>(::operator new(std::max<size_t>(count, 1) * sizeof(T), kAlignment))),
        size_(count) {
    std::memset(static_cast<void*>(data_.get()), 0, count * sizeof(T));
  }

  T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Deleter {
    void operator()(T* p) const { ::operator delete(static_cast<void*>(p), kAlignment); }
  };
  std::unique_ptr<T, Deleter> data_;
  size_t size_ = 0;
};

}  // namespace convoy
