// Assigning gradients to all-reduce buckets: a pure function, identical on every rank.
//
// Gradients arrive in the order backward produces them (the last layer's first). Buckets are
// filled in that order and a bucket closes as soon as it holds at least `bucket_bytes` (PyTorch
// DDP's rule), so every bucket holds consecutive gradients, completes as soon as its last gradient
// is ready, and is at least `bucket_bytes` large except perhaps the last. A gradient larger than
// `bucket_bytes` closes the bucket it joins, which holds nothing after it. bucket_bytes = 0 puts
// every gradient in its own bucket; a huge value puts them all in one. (Fewer, larger buckets
// cost fewer collective start-ups; more buckets start earlier and overlap more of the backward.)
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
std::vector<Bucket> assign_buckets(std::span<const size_t> elements, size_t bucket_bytes);

}  // namespace convoy
