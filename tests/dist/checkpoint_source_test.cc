// The way back for checkpoints: a DirectoryCheckpointSource reads what a LocalCheckpointSink
// stored -- the newest valid one, nothing when there is none.
#include "dist/checkpoint_source.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/read_file.h"
#include "dist/checkpoint_sink.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

pb::CheckpointInfo at_step(int64_t step) {
  pb::CheckpointInfo header;
  header.set_job_id("j");
  header.set_step(step);
  return header;
}

TEST(CheckpointSource, DirectoryGivesTheNewestValidCheckpoint) {
  testing::TempDir dir;
  const std::string store = dir.file("checkpoints");
  EXPECT_FALSE(DirectoryCheckpointSource(store).latest().has_value()) << "nothing stored yet";
  {
    std::vector<std::string> warnings;
    LocalCheckpointSink sink(store, {.keep_last = 3, .max_bytes = 1 << 20},
                             [&](const std::string& w) { warnings.push_back(w); });
    sink.submit(at_step(5), "five");
    ASSERT_TRUE(sink.flush(10));
    sink.submit(at_step(10), "ten");
    ASSERT_TRUE(sink.flush(10));
    EXPECT_TRUE(warnings.empty());
  }
  std::optional<FetchedCheckpoint> latest = DirectoryCheckpointSource(store).latest();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->bytes, "ten");
  EXPECT_EQ(read_file(latest->origin), "ten") << latest->origin;

  // A damaged newest file is not served: the one before it is.
  std::ofstream(latest->origin, std::ios::trunc) << "t3n";
  latest = DirectoryCheckpointSource(store).latest();
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->bytes, "five");
}

}  // namespace
}  // namespace convoy
