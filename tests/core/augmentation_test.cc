// Augmentation: a crop is a shift by at most the padding with zeros shifted in, a flip reverses
// the width, both follow the key (reproducible) and cover their range; in 1, 2 and 3 dimensions.
#include "core/augmentation.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>

#include "core/batch_loader.h"
#include "core/error.h"
#include "core/model_spec.h"
#include "core/random.h"
#include "testing/error_of.h"

namespace convoy {
namespace {

// Values 1, 2, 3, ... so every input position is recognisable in the output (0 = padding).
std::vector<float> numbered(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 1.f);
  return v;
}

struct Found {
  std::vector<int64_t> shift;  // per spatial dimension
  bool flipped = false;
};

// Checks `out` is `in` (numbered, one channel per plane) shifted by some offset within
// `padding`, optionally with the last dimension reversed, and zero elsewhere; returns which.
Found identify(const std::vector<float>& out, const SampleShape& shape, int64_t padding) {
  std::vector<int64_t> ext(shape.spatial);
  while (ext.size() < 3) ext.insert(ext.begin(), 1);
  const int64_t plane = ext[0] * ext[1] * ext[2];
  for (const bool flipped : {false, true}) {
    for (int64_t dz = -padding; dz <= padding; ++dz)
      for (int64_t dy = -padding; dy <= padding; ++dy)
        for (int64_t dx = -padding; dx <= padding; ++dx) {
          const int64_t shift[3] = {ext[0] == 1 ? 0 : dz, ext[1] == 1 ? 0 : dy, dx};
          bool match = true;
          for (int64_t c = 0; c < shape.channels && match; ++c)
            for (int64_t z = 0; z < ext[0] && match; ++z)
              for (int64_t y = 0; y < ext[1] && match; ++y)
                for (int64_t x = 0; x < ext[2] && match; ++x) {
                  const int64_t sz = z + shift[0], sy = y + shift[1];
                  const int64_t sx = (flipped ? ext[2] - 1 - x : x) + shift[2];
                  const bool inside =
                      sz >= 0 && sz < ext[0] && sy >= 0 && sy < ext[1] && sx >= 0 && sx < ext[2];
                  const float want =
                      inside ? static_cast<float>(c * plane + (sz * ext[1] + sy) * ext[2] + sx + 1)
                             : 0.f;
                  match =
                      out[static_cast<size_t>(c * plane + (z * ext[1] + y) * ext[2] + x)] == want;
                }
          if (match) {
            Found f{{}, flipped};
            for (size_t d = 3 - shape.spatial.size(); d < 3; ++d) f.shift.push_back(shift[d]);
            return f;
          }
        }
  }
  ADD_FAILURE() << "output is not a shifted (flipped) copy within padding " << padding;
  return {};
}

void check_shape(const SampleShape& shape, Augmentation a) {
  const auto n = static_cast<size_t>(shape.elements());
  std::vector<float> scratch(n);
  std::map<std::vector<int64_t>, int> shifts;
  int flips = 0;
  const int draws = 400;
  for (int k = 0; k < draws; ++k) {
    std::vector<float> v = numbered(shape.elements());
    a.apply(v, shape, mix_seed(5, static_cast<uint64_t>(k)), scratch);
    const Found f = identify(v, shape, a.crop_padding);
    ++shifts[f.shift];
    flips += f.flipped;
    // The same key, the same result.
    std::vector<float> again = numbered(shape.elements());
    a.apply(again, shape, mix_seed(5, static_cast<uint64_t>(k)), scratch);
    ASSERT_EQ(again, v);
  }
  // Every offset along each dimension shows up, flips about half the time.
  size_t combinations = 1;
  for (size_t d = 0; d < shape.spatial.size(); ++d) combinations *= 2 * a.crop_padding + 1;
  if (a.crop_padding > 0) {
    EXPECT_EQ(shifts.size(), combinations);
  }
  if (a.flip) {
    EXPECT_NEAR(flips, draws / 2, 60);
  } else {
    EXPECT_EQ(flips, 0);
  }
}

TEST(Augmentation, CropShiftsWithZerosAndFlipReversesWidth) {
  check_shape({2, {5, 6}}, {.crop_padding = 2, .flip = true});     // images
  check_shape({1, {9}}, {.crop_padding = 3, .flip = false});       // sequences
  check_shape({1, {3, 4, 4}}, {.crop_padding = 1, .flip = true});  // volumes
  check_shape({3, {4, 4}}, {.crop_padding = 0, .flip = true});     // flips only
}

TEST(Augmentation, FromTheModelSpec) {
  const pb::ModelSpec spec = parse_model_text(
      R"(input { channels: 1 spatial: [8, 8] } num_classes: 2
         augment { crop_padding: 3 horizontal_flip: true }
         layer { type: "Dense" dense { units: 2 } })",
      "m.pbtxt");
  const Augmentation a = Augmentation::from_spec(spec, "m.pbtxt");
  EXPECT_EQ(a.crop_padding, 3);
  EXPECT_TRUE(a.flip);
  pb::ModelSpec negative = spec;
  negative.mutable_augment()->set_crop_padding(-1);
  EXPECT_EQ(testing::kind_of([&] { Augmentation::from_spec(negative, "m.pbtxt"); }),
            ErrorKind::kInvalidInput);
}

TEST(Augmentation, DisabledLeavesSamplesAlone) {
  std::vector<float> v = numbered(12), scratch(12);
  Augmentation{}.apply(v, {1, {3, 4}}, 7, scratch);
  EXPECT_EQ(v, numbered(12));
  EXPECT_EQ(Augmentation{}.str(), "none");
  EXPECT_EQ((Augmentation{.crop_padding = 4, .flip = true}.str()), "crop 4 + flip");
}

TEST(Augmentation, LoaderAugmentsBySampleNotByPosition) {
  Dataset data;
  data.name = "d";
  data.shape = {1, {4, 4}};
  data.class_names = {"a", "b"};
  for (int i = 0; i < 8; ++i) {
    const std::vector<float> v = numbered(16);
    data.samples.insert(data.samples.end(), v.begin(), v.end());
    data.labels.push_back(i % 2);
  }
  const Augmentation a{.crop_padding = 1, .flip = true};
  // The same samples in two orders and batch sizes: each sample is augmented the same way.
  std::map<int64_t, std::vector<float>> first;
  BatchLoader one(data, 4), other(data, 2);
  one.start({0, 1, 2, 3, 4, 5, 6, 7}, false, a, 99);
  while (const Batch* b = one.next()) {
    for (int64_t r = 0; r < b->count; ++r) {
      first[b->ids[static_cast<size_t>(r)]].assign(b->samples.data() + r * 16,
                                                   b->samples.data() + (r + 1) * 16);
    }
  }
  other.start({7, 3, 5, 1, 0, 6, 2, 4}, false, a, 99);
  std::set<std::vector<float>> distinct;
  while (const Batch* b = other.next()) {
    for (int64_t r = 0; r < b->count; ++r) {
      const std::vector<float> v(b->samples.data() + r * 16, b->samples.data() + (r + 1) * 16);
      EXPECT_EQ(v, first[b->ids[static_cast<size_t>(r)]]);
      distinct.insert(v);
    }
  }
  EXPECT_GT(distinct.size(), 3u);  // identical inputs, different augmentations
}

TEST(Augmentation, MirrorReversesEveryRowOfTheLastDimension) {
  std::vector<float> v = numbered(12);  // two samples of 2x3, or any rows of 3
  mirror_last_dimension(v, 3);
  EXPECT_EQ(v, (std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
  mirror_last_dimension(v, 3);
  EXPECT_EQ(v, numbered(12));
}

}  // namespace
}  // namespace convoy
