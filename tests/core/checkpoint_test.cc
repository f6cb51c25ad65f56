// Checkpoint files: round trip through a model and optimizer, refusal of damaged files, and
// atomic replacement.
#include "core/checkpoint.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "testing/error_of.h"
#include "testing/layer_harness.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::read_file;
using testing::TempDir;

struct Trained {
  Trained()
      : engine(dnnl::engine::kind::cpu, 0),
        stream(engine),
        spec(load_model_spec("lenet5")),
        model(spec, 4, engine, Model::Mode::kTrain, "lenet5"),
        optimizer(model.parameters(),
                  {.learning_rate = 0.05f, .momentum = 0.9f, .weight_decay = 1e-4f}) {
    model.initialize(3);
    for (int step = 0; step < 3; ++step) {
      model.set_input(testing::random_values(4 * 784, step, 0.f, 1.f));
      model.forward(stream);
      model.loss(stream, std::vector<int32_t>{1, 2, 3, 4}, 4);
      model.backward(stream);
      optimizer.step();
    }
  }
  pb::Checkpoint checkpoint() {
    return make_checkpoint(model, &optimizer,
                           {.epoch = 1,
                            .step_in_epoch = 2,
                            .step = 3,
                            .seed = 3,
                            .batch_size = 4,
                            .world_size = 2,
                            .dataset = "fashion-mnist"});
  }
  dnnl::engine engine;
  dnnl::stream stream;
  pb::ModelSpec spec;
  Model model;
  Optimizer optimizer;
};

std::string error_of(const std::string& path) {
  return testing::error_of([&] { load_checkpoint(path); });
}

TEST(Checkpoint, RoundTripRestoresParametersMomentumAndPosition) {
  Trained t;
  TempDir dir;
  const std::string path = dir.file("a.ckpt");
  save_checkpoint(t.checkpoint(), path);

  const pb::Checkpoint loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.epoch(), 1);
  EXPECT_EQ(loaded.step_in_epoch(), 2);
  EXPECT_EQ(loaded.step(), 3);
  EXPECT_EQ(loaded.world_size(), 2);
  EXPECT_EQ(loaded.seed(), 3u);
  EXPECT_EQ(loaded.dataset(), "fashion-mnist");
  EXPECT_EQ(loaded.model().name(), "lenet5");
  EXPECT_FLOAT_EQ(loaded.optimizer().weight_decay(), 1e-4f);

  // A different batch size and inference mode: layouts may differ, values must not.
  Model other(loaded.model(), 7, t.engine, Model::Mode::kTrain, "ckpt");
  Optimizer other_sgd(other.parameters(), {});
  restore_checkpoint(loaded, other, &other_sgd, path);
  const auto a = t.model.parameters(), b = other.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->name, b[i]->name);
    EXPECT_EQ(a[i]->value.to_plain(), b[i]->value.to_plain()) << a[i]->name;
    EXPECT_EQ(t.optimizer.first_moment(i).to_plain(), other_sgd.first_moment(i).to_plain());
  }
  // A weight is named by layer and parameter, in plain [O, I, KH, KW] shape.
  EXPECT_EQ(loaded.parameter(0).name(), "conv1.weight");
  EXPECT_EQ(loaded.parameter(0).shape_size(), 4);
  EXPECT_EQ(loaded.parameter(0).shape(0), 6);
}

TEST(Checkpoint, AdamStateRoundTripsAndAnotherOptimizerIsRefused) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const dnnl::stream stream(engine);
  const pb::ModelSpec spec = load_model_spec("lenet5");
  Model model(spec, 4, engine, Model::Mode::kTrain, "lenet5");
  model.initialize(3);
  Optimizer adam(model.parameters(), {.kind = OptimizerConfig::Kind::kAdamW,
                                      .learning_rate = 1e-3f,
                                      .weight_decay = 0.01f,
                                      .beta2 = 0.99f});
  for (int step = 0; step < 2; ++step) {
    model.set_input(testing::random_values(4 * 784, step, 0.f, 1.f));
    model.forward(stream);
    model.loss(stream, std::vector<int32_t>{1, 2, 3, 4}, 4);
    model.backward(stream);
    adam.step();
  }
  const pb::Checkpoint checkpoint = make_checkpoint(model, &adam, {});
  EXPECT_EQ(checkpoint.optimizer().kind(), "adamw");
  EXPECT_EQ(checkpoint.optimizer().steps(), 2);
  EXPECT_FLOAT_EQ(checkpoint.optimizer().beta2(), 0.99f);

  Model other(spec, 4, engine, Model::Mode::kTrain, "lenet5");
  Optimizer other_adam(other.parameters(), {.kind = OptimizerConfig::Kind::kAdamW});
  restore_checkpoint(checkpoint, other, &other_adam, "a.ckpt");
  EXPECT_EQ(other_adam.steps(), 2);
  for (size_t i = 0; i < model.parameters().size(); ++i) {
    EXPECT_EQ(adam.first_moment(i).to_plain(), other_adam.first_moment(i).to_plain());
    EXPECT_EQ(adam.second_moment(i).to_plain(), other_adam.second_moment(i).to_plain());
  }

  Optimizer sgd(other.parameters(), {});
  try {
    restore_checkpoint(checkpoint, other, &sgd, "a.ckpt");
    ADD_FAILURE() << "an AdamW checkpoint was restored into SGD";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "a.ckpt: was trained with the adamw optimizer, not sgd");
  }
}

TEST(Checkpoint, RefusesCorruptTruncatedAndForeignFiles) {
  Trained t;
  TempDir dir;
  const std::string good = dir.file("good.ckpt");
  save_checkpoint(t.checkpoint(), good);
  const std::string bytes = read_file(good);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x40);
  const std::string corrupt = dir.write("corrupt.ckpt", flipped);
  EXPECT_EQ(error_of(corrupt), "'" + corrupt + "': corrupt checkpoint (checksum mismatch)");

  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t{10}, size_t{0}}) {
    const std::string cut = dir.write("cut.ckpt", bytes.substr(0, keep));
    EXPECT_EQ(error_of(cut), "'" + cut + "': not a convoy checkpoint, or truncated") << keep;
  }
  const std::string text = dir.write("model.pbtxt", "name: \"x\"\n");
  EXPECT_EQ(error_of(text), "'" + text + "': not a convoy checkpoint, or truncated");
  const std::string missing = dir.file("missing");
  EXPECT_EQ(error_of(missing), fmt::format("'{}': cannot open checkpoint", missing));
}

// Found by the checkpoint fuzz target's review: a resuming run computes with these counts (a
// negative step_in_epoch erased before the start of the epoch's order; Adam divided by zero at
// steps = -1). Such a file is refused as it is read, naming the field.
TEST(Checkpoint, ImpossibleCountsAreRefusedAsCorrupt) {
  Trained t;
  TempDir dir;
  const std::string path = dir.file("bad.ckpt");
  const auto write = [&](const std::function<void(pb::Checkpoint&)>& damage) {
    pb::Checkpoint ck = t.checkpoint();
    damage(ck);
    write_file_atomically(path, serialize_checkpoint(ck));  // save_checkpoint would refuse it
  };
  write([](pb::Checkpoint& ck) { ck.set_step_in_epoch(-2); });
  EXPECT_EQ(error_of(path), "'" + path + "': corrupt checkpoint (step_in_epoch is -2)");
  write([](pb::Checkpoint& ck) { ck.mutable_optimizer()->set_steps(-1); });
  EXPECT_EQ(error_of(path), "'" + path + "': corrupt checkpoint (optimizer.steps is -1)");
  write([](pb::Checkpoint& ck) { ck.set_step(std::numeric_limits<int64_t>::max()); });
  EXPECT_EQ(error_of(path), fmt::format("'{}': corrupt checkpoint (step is {})", path,
                                        std::numeric_limits<int64_t>::max()));
  write([](pb::Checkpoint& ck) { ck.set_world_size(-1); });
  EXPECT_EQ(testing::kind_of([&] { load_checkpoint(path); }), ErrorKind::kCorruption);
}

TEST(Checkpoint, RestoreIntoTheWrongModelIsRefused) {
  Trained t;
  const pb::Checkpoint ck = t.checkpoint();
  Model other(load_model_spec("fashion_cnn"), 2, t.engine, Model::Mode::kInference, "fashion_cnn");
  EXPECT_EQ(testing::kind_of([&] { restore_checkpoint(ck, other, nullptr, "x"); }),
            ErrorKind::kInvalidInput);
}

TEST(Checkpoint, SaveReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  Trained t;
  TempDir dir;
  const std::string path = dir.file("a.ckpt");
  save_checkpoint(t.checkpoint(), path);
  const pb::Checkpoint second = make_checkpoint(
      t.model, &t.optimizer, {.epoch = 2, .step = 6, .seed = 3, .batch_size = 4, .dataset = "d"});
  save_checkpoint(second, path);
  EXPECT_EQ(load_checkpoint(path).step(), 6);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++files;
  EXPECT_EQ(files, 1);
  // An unwritable destination fails cleanly and leaves the old file alone.
  EXPECT_EQ(testing::kind_of([&] { save_checkpoint(second, dir.file("no/such/dir/a.ckpt")); }),
            ErrorKind::kInvalidInput);  // a missing directory is the user's, not the disk's
  EXPECT_EQ(load_checkpoint(path).step(), 6);
}

TEST(Checkpoint, TemporariesOfKilledWritersAreRemovedByTheNextSave) {
  Trained t;
  TempDir dir;
  const std::string path = dir.file("a.ckpt");
  // A pid that certainly ended: a child that has exited and been reaped.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  const std::string stale = dir.write(fmt::format("a.ckpt.tmp.{}.0", dead), "half a checkpoint");
  const std::string live = dir.write(fmt::format("a.ckpt.tmp.{}.3", getppid()), "in progress");
  const std::string other = dir.write(fmt::format("b.ckpt.tmp.{}.0", dead), "not ours");
  save_checkpoint(t.checkpoint(), path);
  EXPECT_FALSE(std::filesystem::exists(stale)) << "its writer is gone";
  EXPECT_TRUE(std::filesystem::exists(live)) << "its writer may still be writing";
  EXPECT_TRUE(std::filesystem::exists(other)) << "another target's";
}

TEST(Checkpoint, ACheckpointThatWouldNotReadBackIsNeverWritten) {
  Trained t;
  TempDir dir;
  const std::string path = dir.file("a.ckpt");
  save_checkpoint(t.checkpoint(), path);
  pb::Checkpoint bad = t.checkpoint();
  bad.set_step(99);
  bad.mutable_parameter(0)->set_name("\xff\xfe\x80");  // not UTF-8: protobuf cannot parse it back
  EXPECT_EQ(testing::kind_of([&] { save_checkpoint(bad, path); }), ErrorKind::kInternal);
  EXPECT_EQ(load_checkpoint(path).step(), t.checkpoint().step()) << "the good file stays";
}

TEST(Checkpoint, LoadingRefusesDevicesAndFilesLargerThanACheckpointCanBe) {
  EXPECT_EQ(testing::kind_of([] { load_checkpoint("/dev/zero"); }), ErrorKind::kInvalidInput);
  TempDir dir;
  const std::string sparse = dir.file("huge.ckpt");
  std::filesystem::resize_file(dir.write("huge.ckpt", ""), kMaxCheckpointBytes + 1);  // sparse
  EXPECT_EQ(testing::kind_of([&] { load_checkpoint(sparse); }), ErrorKind::kLimitExceeded);
}

}  // namespace
}  // namespace convoy
