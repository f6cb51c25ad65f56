#include "dist/bucket_assignment.h"

namespace convoy {

std::vector<Bucket> assign_buckets(std::span<const size_t> elements, size_t bucket_bytes) {
  constexpr size_t kElementBytes = 4;
  std::vector<Bucket> buckets;
  for (size_t i = 0; i < elements.size(); ++i) {
    if (buckets.empty() || buckets.back().elements * kElementBytes >= bucket_bytes) {
      buckets.emplace_back();
    }
    Bucket& b = buckets.back();
    b.members.push_back(i);
    b.offsets.push_back(b.elements);
    b.elements += elements[i];
  }
  return buckets;
}

}  // namespace convoy
