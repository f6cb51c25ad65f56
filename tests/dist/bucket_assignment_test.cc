// Bucket assignment, table-driven.
#include "dist/bucket_assignment.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

struct Case {
  std::string name;
  std::vector<size_t> elements;  // in ready order
  size_t cap_bytes;
  std::vector<std::vector<size_t>> buckets;  // members of each bucket
};

TEST(BucketAssignment, Table) {
  const Case cases[] = {
      {"closes once it reaches the size", {10, 20, 30, 40}, 4 * 30, {{0, 1}, {2}, {3}}},
      {"exactly the size closes", {10, 20, 30, 5}, 4 * 60, {{0, 1, 2}, {3}}},
      {"one short stays open", {10, 20, 29, 5}, 4 * 60, {{0, 1, 2, 3}}},
      {"a large gradient closes its bucket", {5, 1000, 5, 5}, 4 * 20, {{0, 1}, {2, 3}}},
      {"a large gradient first", {1000, 5}, 4 * 20, {{0}, {1}}},
      {"everything in one bucket", {3, 1000, 7}, 1 << 30, {{0, 1, 2}}},
      {"size zero: one each", {3, 4, 5}, 0, {{0}, {1}, {2}}},
      {"no gradients", {}, 100, {}},
  };
  for (const Case& c : cases) {
    const std::vector<Bucket> buckets = assign_buckets(c.elements, c.cap_bytes);
    ASSERT_EQ(buckets.size(), c.buckets.size()) << c.name;
    for (size_t b = 0; b < buckets.size(); ++b) {
      EXPECT_EQ(buckets[b].members, c.buckets[b]) << c.name << " bucket " << b;
      size_t offset = 0;
      for (size_t m = 0; m < buckets[b].members.size(); ++m) {
        EXPECT_EQ(buckets[b].offsets[m], offset) << c.name;
        offset += c.elements[buckets[b].members[m]];
      }
      EXPECT_EQ(buckets[b].elements, offset) << c.name;
    }
  }
}

TEST(BucketAssignment, EveryGradientOnceInReadyOrder) {
  std::vector<size_t> elements;
  for (size_t i = 0; i < 50; ++i) elements.push_back(1 + (i * 7919) % 1000);
  for (size_t cap : {0u, 100u, 4000u, 40000u, 1u << 30}) {
    size_t next = 0;
    for (const Bucket& b : assign_buckets(elements, cap)) {
      for (size_t m : b.members) EXPECT_EQ(m, next++) << "cap " << cap;
    }
    EXPECT_EQ(next, elements.size());
  }
}

}  // namespace
}  // namespace convoy
