// CheckpointStore against what a careless or hostile disk holds: names from the manifest, damaged
// and emptied manifests, stray temporaries, values retention cannot compare, names that collide
// with the store's own files.
#include "dist/checkpoint_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/checkpoint.h"
#include "core/read_file.h"
#include "testing/error_of.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;
using testing::kind_of;

// The bytes of a real (tiny) convoy checkpoint at `step`.
std::string checkpoint_bytes(int64_t step) {
  pb::Checkpoint checkpoint;
  checkpoint.set_step(step);
  checkpoint.set_epoch(step / 10);
  return serialize_checkpoint(checkpoint);
}

pb::CheckpointInfo at(int64_t step, double accuracy = -1, const std::string& name = "") {
  pb::CheckpointInfo h;
  h.set_step(step);
  h.set_name(name);
  if (accuracy >= 0 || std::isnan(accuracy)) {
    h.set_test_accuracy(accuracy);
    h.set_has_test_accuracy(true);
  }
  return h;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc | std::ios::binary) << text;
}

TEST(CheckpointStore, ManifestNamesAreCheckedAsStrictlyAsNetworkNames) {
  testing::TempDir dir;
  const std::string store_dir = dir.file("a/b/store");
  fs::create_directories(store_dir);
  write(dir.file("a/secret.ckpt"), "keep me");
  write(store_dir + "/manifest.pbtxt",
        "checkpoint { name: \"../../secret\" size: 7 step: 1 }\n"
        "checkpoint { name: \"../../secret\" size: 7 step: 2 }\n");
  CheckpointStore store(store_dir, {.keep_last = 1, .max_bytes = 1 << 20});
  EXPECT_TRUE(store.list().empty());
  EXPECT_EQ(kind_of([&] { store.find("../../secret"); }), ErrorKind::kNotFound);
  ASSERT_FALSE(store.notes().empty());
  EXPECT_NE(store.notes()[0].find("not an allowed name"), std::string::npos) << store.notes()[0];
  // Retention after new uploads never reaches outside the directory.
  store.put(at(3), checkpoint_bytes(3));
  store.put(at(4), checkpoint_bytes(4));
  EXPECT_EQ(read_file(dir.file("a/secret.ckpt")), "keep me");
}

TEST(CheckpointStore, DamagedOrEmptiedManifestIsRebuiltFromTheFilesThatVerify) {
  testing::TempDir dir;
  const std::string store_dir = dir.file("store");
  {
    CheckpointStore store(store_dir, {.keep_last = 3, .max_bytes = 1 << 20});
    store.put(at(10), checkpoint_bytes(10));
    store.put(at(20), checkpoint_bytes(20));
  }
  write(store_dir + "/stranger.ckpt", "not a checkpoint");
  for (const std::string manifest : {"garbage {{{", ""}) {
    write(store_dir + "/manifest.pbtxt", manifest);
    CheckpointStore store(store_dir, {.keep_last = 3, .max_bytes = 1 << 20});
    const std::vector<pb::CheckpointInfo> list = store.list();
    ASSERT_EQ(list.size(), 2u) << "manifest '" << manifest << "'";
    EXPECT_EQ(list[0].step(), 10);
    EXPECT_EQ(list[1].step(), 20);
    EXPECT_EQ(store.find("latest").name(), "step-000000020");
    std::string notes;
    for (const std::string& n : store.notes()) notes += n + "\n";
    EXPECT_NE(notes.find("stranger.ckpt': not in the manifest and not a valid checkpoint"),
              std::string::npos)
        << notes;
    EXPECT_TRUE(fs::exists(store_dir + "/stranger.ckpt")) << "left alone";
  }
  // The rebuilt manifest is written back: the next opening has nothing to repair but the stranger.
  CheckpointStore again(store_dir, {.keep_last = 3, .max_bytes = 1 << 20});
  EXPECT_EQ(again.list().size(), 2u);
  EXPECT_EQ(again.notes().size(), 1u);
}

TEST(CheckpointStore, RetentionIgnoresAccuracyThatIsNotANumber) {
  testing::TempDir dir;
  CheckpointStore store(dir.file("s"), {.keep_last = 1, .max_bytes = 1 << 20});
  EXPECT_EQ(kind_of([&] { store.put(at(1, std::nan("")), checkpoint_bytes(1)); }),
            ErrorKind::kInvalidInput);
  // The real best stays beside the newest.
  store.put(at(2, 0.95), checkpoint_bytes(2));
  for (int64_t step = 3; step <= 5; ++step) store.put(at(step, 0.5), checkpoint_bytes(step));
  std::vector<std::string> names;
  for (const pb::CheckpointInfo& c : store.list()) names.push_back(c.name());
  EXPECT_EQ(names, (std::vector<std::string>{"step-000000002", "step-000000005"}));
}

TEST(CheckpointStore, NamesThatCollideWithTheStoresOwnAreRefused) {
  testing::TempDir dir;
  CheckpointStore store(dir.file("s"), {.keep_last = 3, .max_bytes = 1 << 20});
  for (const std::string name : {"ok.upload-123", "latest", "m.tmp.1.0", "../x"}) {
    EXPECT_EQ(kind_of([&] { store.put(at(1, -1, name), checkpoint_bytes(1)); }),
              ErrorKind::kInvalidInput)
        << name;
  }
  EXPECT_EQ(kind_of([&] { store.put(at(1), ""); }), ErrorKind::kInvalidInput) << "0 bytes";
  EXPECT_TRUE(store.list().empty());
}

TEST(CheckpointStore, StrayTemporariesAreRemovedWhenTheStoreOpens) {
  testing::TempDir dir;
  const std::string store_dir = dir.file("s");
  fs::create_directories(store_dir);
  for (const std::string stray :
       {"step-000000001.ckpt.tmp.4242.0", "manifest.pbtxt.tmp.4242.1", "x.upload-0000abcd"}) {
    write(store_dir + "/" + stray, "half");
  }
  CheckpointStore store(store_dir, {.keep_last = 3, .max_bytes = 1 << 20});
  EXPECT_TRUE(fs::is_empty(store_dir)) << "nothing but temporaries was there";
}

}  // namespace
}  // namespace convoy
