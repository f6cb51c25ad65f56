// Assigning gradients to all-reduce buckets: a pure function, identical on every rank.
//
// Gradients arrive in the order backward produces them (the last layer's first). Buckets are
// filled in that order: a bucket closes when the next gradient would push it past `cap_bytes`,
// so every bucket holds consecutive gradients and completes as soon as its last gradient is ready.
// A gradient larger than the cap gets a bucket of its own. cap_bytes = 0 puts every gradient in
// its own bucket; a huge cap puts them all in one.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace convoy {

struct Bucket {
  std::vector<size_t> members;  // indices into the ready-ordered gradient list
  std::vector<size_t> offsets;  // element offset of each member within the bucket
  size_t elements = 0;
};

// `elements[i]`: element count of the i-th gradient to become ready; 4-byte elements.
std::vector<Bucket> assign_buckets(std::span<const size_t> elements, size_t cap_bytes);

}  // namespace convoy
