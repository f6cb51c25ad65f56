// Data-parallel jobs under mpirun, end to end through the convoy binary:
//   - N ranks with per-rank batch B end with the parameters of one process with batch N*B
//     (relative difference <= 1e-5), for N = 2 and 3, on a training set that N*B does not divide;
//   - evaluation on 3 ranks gives exactly the single-process confusion matrix on 10,000 images;
//   - ranks started with different settings stop, all of them, with a message naming the field;
//   - a rank killed mid-training ends the whole job with a non-zero exit well within 30 s.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/checkpoint.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::CommandResult;
using testing::last_json_line;

constexpr const char* kData = testing::kFashionMnistDir;

const testing::ConvoyRunner convoy{.threads = 1};

CommandResult mpirun(int ranks, const std::vector<std::string>& args) {
  return testing::run_command(testing::mpirun_convoy(ranks, args), 600);
}

// ||a - b|| / ||b|| for every parameter; the largest.
double max_relative_difference(const pb::Checkpoint& a, const pb::Checkpoint& b) {
  EXPECT_EQ(a.parameter_size(), b.parameter_size());
  double worst = 0;
  for (int i = 0; i < a.parameter_size() && i < b.parameter_size(); ++i) {
    const auto& x = a.parameter(i).data();
    const auto& y = b.parameter(i).data();
    EXPECT_EQ(x.size(), y.size());
    double diff = 0, norm = 0;
    for (int j = 0; j < x.size() && j < y.size(); ++j) {
      diff += (double(x[j]) - y[j]) * (double(x[j]) - y[j]);
      norm += double(y[j]) * y[j];
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

class MpiJob : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kData))
        << kData << " is missing: deploy/install-deps.sh installs dataset-fashion-mnist";
  }
  // lenet5 (or `model`) on the first 1,000 training images (not a multiple of 32 or 48), 12 steps.
  std::vector<std::string> train_args(int64_t batch, const std::string& save,
                                      const std::string& model = "lenet5") {
    return {"train",         "--model",      model,
            "--limit-train", "1000",         "--limit-test",
            "500",           "--batch-size", std::to_string(batch),
            "--max-steps",   "12",           "--lr",
            "0.05",          "--threads",    "1",
            "--log-json",    "--save",       save};
  }
  testing::TempDir dir_;
};

void expect_equivalent(MpiJob& test, testing::TempDir& dir, int ranks,
                       const std::vector<std::string>& distributed,
                       const std::vector<std::string>& single,
                       const std::vector<std::string>& per_rank_batch_single,
                       double tolerance = 1e-5) {
  const CommandResult d = mpirun(ranks, distributed);
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const nlohmann::json final = last_json_line(d.out);
  EXPECT_EQ(final["world_size"], ranks);
  EXPECT_EQ(final["steps"], 12);
  const CommandResult s = convoy(single);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const CommandResult w = convoy(per_rank_batch_single);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  const pb::Checkpoint a = load_checkpoint(dir.file("distributed.ckpt"));
  const pb::Checkpoint b = load_checkpoint(dir.file("single.ckpt"));
  const pb::Checkpoint wrong = load_checkpoint(dir.file("per_rank.ckpt"));
  const double difference = max_relative_difference(a, b);
  EXPECT_LE(difference, tolerance) << ranks << " ranks";
  // The comparison can fail: one process with the per-rank batch trains another model.
  EXPECT_GT(max_relative_difference(wrong, b), 1e-3);
  std::printf("%d ranks vs one process with the global batch: max relative difference %.3g\n",
              ranks, difference);
  (void)test;
}

TEST_F(MpiJob, TwoRanksEqualOneProcessWithTheGlobalBatch) {
  expect_equivalent(*this, dir_, 2, train_args(16, dir_.file("distributed.ckpt")),
                    train_args(32, dir_.file("single.ckpt")),
                    train_args(16, dir_.file("per_rank.ckpt")));
}

// In bf16 the gradients are all-reduced in fp32, but each rank's activations are rounded to bf16
// from a convolution run on its own part of the batch: where oneDNN sums in another order for
// another batch size, a rounding can flip. On the AMX Xeon the difference was 6e-8 (fp32: 9e-7);
// the test allows 1e-4 for CPUs whose kernels do differ (one flip moves a few 1e-5).
TEST_F(MpiJob, TwoRanksInBf16MatchOneProcessToBf16Rounding) {
  if (!testing::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16 (nor AMX)";
  const auto bf16 = [](std::vector<std::string> args) {
    args.insert(args.end(), {"--precision", "bf16"});
    return args;
  };
  expect_equivalent(*this, dir_, 2, bf16(train_args(16, dir_.file("distributed.ckpt"))),
                    bf16(train_args(32, dir_.file("single.ckpt"))),
                    bf16(train_args(16, dir_.file("per_rank.ckpt"))), 1e-4);
}

TEST_F(MpiJob, ThreeRanksEqualOneProcessWithTheGlobalBatch) {
  expect_equivalent(*this, dir_, 3, train_args(16, dir_.file("distributed.ckpt")),
                    train_args(48, dir_.file("single.ckpt")),
                    train_args(16, dir_.file("per_rank.ckpt")));
}

// lenet5 with dropout after each dense layer: the mask follows the sample, not the rank.
constexpr const char* kLenetDropout = R"pb(
  input {
    channels: 1
    spatial: [ 28, 28 ]
  }
  num_classes: 10
  layer {
    type: "Conv2D"
    conv { filters: 6 kernel: 5 pad: 2 }
  }
  layer { type: "ReLU" }
  layer {
    type: "MaxPool2D"
    pool { kernel: 2 }
  }
  layer {
    type: "Conv2D"
    conv { filters: 16 kernel: 5 }
  }
  layer { type: "ReLU" }
  layer {
    type: "MaxPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "fc1"
    type: "Dense"
    dense { units: 120 }
  }
  layer { type: "ReLU" }
  layer {
    name: "drop1"
    type: "Dropout"
    dropout { rate: 0.5 }
  }
  layer {
    name: "fc2"
    type: "Dense"
    dense { units: 84 }
  }
  layer { type: "ReLU" }
  layer {
    name: "drop2"
    type: "Dropout"
    dropout { rate: 0.3 }
  }
  layer {
    name: "fc3"
    type: "Dense"
    dense { units: 10 }
  }
)pb";

TEST_F(MpiJob, TwoRanksWithDropoutEqualOneProcessWithTheGlobalBatch) {
  const std::string model = dir_.file("dropout.pbtxt");
  std::ofstream(model) << kLenetDropout;
  expect_equivalent(*this, dir_, 2, train_args(16, dir_.file("distributed.ckpt"), model),
                    train_args(32, dir_.file("single.ckpt"), model),
                    train_args(16, dir_.file("per_rank.ckpt"), model));
}

TEST_F(MpiJob, BatchNormRanksKeepTheSameRunningStatisticsAndEvaluateExactly) {
  // Batch norm normalizes with each rank's own batch (as PyTorch DDP does), so the parameters are
  // not those of one process with the global batch; but the running statistics are averaged
  // over the ranks every step: every replica holds the same ones (the job checks all parameters
  // and buffers agree at its end, and would fail otherwise), and the job's evaluation equals a
  // single-process evaluation of the checkpoint it saved.
  const std::string ckpt = dir_.file("bn.ckpt");
  const CommandResult d = mpirun(2, train_args(16, ckpt, "fashion_bn"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const nlohmann::json trained = last_json_line(d.out);
  const pb::Checkpoint checkpoint = load_checkpoint(ckpt);
  ASSERT_EQ(checkpoint.buffer_size(), 6);  // running mean and variance of bn1, bn2, bn3
  EXPECT_EQ(checkpoint.buffer(0).name(), "bn1.running_mean");
  const CommandResult one =
      convoy({"evaluate", "--checkpoint", ckpt, "--limit-test", "500", "--log-json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const nlohmann::json evaluated = last_json_line(one.out);
  EXPECT_EQ(evaluated["test_accuracy"], trained["test_accuracy"]);
  EXPECT_EQ(evaluated["confusion_matrix"], trained["confusion_matrix"]);
}

TEST_F(MpiJob, Conv1dSeqLearnsWaveFrequenciesFromNpyOnTwoRanks) {
  // Noisy sine waves of 128 steps whose class is the frequency (2, 4, 6 or 8 cycles), written
  // by NumPy as a .npy data set.
  const CommandResult made =
      testing::run_command({"/usr/bin/python3", "-c",
                            "import numpy as np, sys, os\n"
                            "rng = np.random.default_rng(7)\n"
                            "for split, n in (('train', 1024), ('test', 256)):\n"
                            "    y = rng.integers(0, 4, n)\n"
                            "    t = np.arange(128) / 128.0\n"
                            "    phase = rng.uniform(0, 2 * np.pi, (n, 1))\n"
                            "    x = np.sin(2 * np.pi * 2 * (y[:, None] + 1) * t + phase)\n"
                            "    x = x + 0.6 * rng.standard_normal((n, 128))\n"
                            "    np.save(os.path.join(sys.argv[1], split + '_x.npy'), x[:, None, "
                            ":].astype(np.float32))\n"
                            "    np.save(os.path.join(sys.argv[1], split + '_y.npy'), y)\n",
                            dir_.path()},
                           60);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const CommandResult r =
      mpirun(2, {"train", "--model", "conv1d_seq", "--dataset", "npy", "--data", dir_.path(),
                 "--epochs", "3", "--batch-size", "16", "--threads", "1", "--log-json", "--save",
                 dir_.file("seq.ckpt")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json final = last_json_line(r.out);
  EXPECT_EQ(final["world_size"], 2);
  EXPECT_GT(final["test_accuracy"].get<double>(), 0.9) << "chance is 0.25";
  // The checkpoint remembers its data set: evaluating needs only the directory.
  const CommandResult e = convoy(
      {"evaluate", "--checkpoint", dir_.file("seq.ckpt"), "--data", dir_.path(), "--log-json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(last_json_line(e.out)["test_accuracy"], final["test_accuracy"]);
}

// Everything a resumed run must restore: batch norm's running statistics, Adam's moments and step
// count, dropout masks and augmentation draws (functions of the seed, epoch and sample).
constexpr const char* kResumeModel = R"pb(
  input {
    channels: 1
    spatial: [ 28, 28 ]
  }
  num_classes: 10
  augment { crop_padding: 2 horizontal_flip: true }
  layer {
    name: "conv1"
    type: "Conv2D"
    conv { filters: 8 kernel: 5 stride: 2 no_bias: true }
  }
  layer { name: "bn1" type: "BatchNorm" }
  layer { type: "LeakyReLU" }
  layer {
    type: "MaxPool2D"
    pool { kernel: 2 }
  }
  layer {
    name: "fc1"
    type: "Dense"
    dense { units: 32 }
  }
  layer {
    name: "drop1"
    type: "Dropout"
    dropout { rate: 0.3 }
  }
  layer { type: "ReLU" }
  layer {
    name: "fc2"
    type: "Dense"
    dense { units: 10 }
  }
)pb";

TEST_F(MpiJob, KilledJobWithBatchNormDropoutAdamAugmentationAndAWeightAverageResumesBitwise) {
  const std::string model = dir_.file("resume.pbtxt");
  std::ofstream(model) << kResumeModel;
  const auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {
        "train", "--model",    model,   "--limit-train",  "3000", "--limit-test",
        "200",   "--epochs",   "3",     "--batch-size",   "16",   "--optimizer",
        "adamw", "--lr",       "0.002", "--weight-decay", "0.01", "--threads",
        "1",     "--progress", "none",  "--ema-decay",    "0.99"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const CommandResult full = mpirun(2, args({"--save", dir_.file("full.ckpt")}));
  ASSERT_EQ(full.exit_code, 0) << full.err;

  const std::string checkpoints = dir_.file("checkpoints");
  std::filesystem::create_directories(checkpoints);
  const std::vector<std::string> interrupted = args(
      {"--checkpoint-dir", checkpoints, "--checkpoint-every", "100", "--keep-checkpoints", "1000"});
  {
    testing::ChildProcess job(testing::mpirun_convoy(2, interrupted), dir_.file("job.out"),
                              dir_.file("job.err"));
    bool stored = false;
    // A generous deadline: under the sanitizers on a slow machine 100 steps take tens of seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    while (!stored && std::chrono::steady_clock::now() < deadline) {
      for (const auto& entry : std::filesystem::directory_iterator(checkpoints)) {
        stored = stored || entry.path().filename().string().starts_with("step-000000100");
      }
      if (!stored) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(stored) << testing::read_file(dir_.file("job.err"));
    job.kill_group();
    ASSERT_TRUE(job.wait_for(30));
  }
  // Killed before its end (checkpoints are all kept): the resumed run repeats the rest.
  const std::string last =
      fmt::format("step-{:09d}", load_checkpoint(dir_.file("full.ckpt")).step());
  for (const auto& entry : std::filesystem::directory_iterator(checkpoints)) {
    ASSERT_FALSE(entry.path().filename().string().starts_with(last))
        << "the first attempt ended before it was killed";
  }
  std::vector<std::string> again = interrupted;
  again.insert(again.end(), {"--resume", "--save", dir_.file("resumed.ckpt")});
  const CommandResult resumed = mpirun(2, again);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const pb::Checkpoint a = load_checkpoint(dir_.file("full.ckpt"));
  const pb::Checkpoint b = load_checkpoint(dir_.file("resumed.ckpt"));
  EXPECT_GT(b.step(), 100);
  EXPECT_EQ(a.step(), b.step());
  ASSERT_EQ(a.parameter_size(), b.parameter_size());
  for (int i = 0; i < a.parameter_size(); ++i) {
    // (EXPECT_TRUE: a failure names the tensor instead of printing megabytes of bytes.)
    EXPECT_TRUE(a.parameter(i).SerializeAsString() == b.parameter(i).SerializeAsString())
        << a.parameter(i).name() << " differs: the resumed run is not bitwise the same";
  }
  ASSERT_EQ(a.buffer_size(), 2);
  for (int i = 0; i < a.buffer_size(); ++i) {
    EXPECT_TRUE(a.buffer(i).SerializeAsString() == b.buffer(i).SerializeAsString())
        << a.buffer(i).name() << " differs";
  }
  EXPECT_TRUE(a.optimizer().SerializeAsString() == b.optimizer().SerializeAsString())
      << "the optimizer state differs";
  // The moving average of the weights, too (its first update after resuming is not a copy).
  ASSERT_EQ(a.average().parameter_size(), a.parameter_size());
  EXPECT_EQ(a.average().updates(), a.step());
  EXPECT_TRUE(a.average().SerializeAsString() == b.average().SerializeAsString())
      << "the average of the weights differs";
  EXPECT_FALSE(a.average().parameter(0).SerializeAsString() == a.parameter(0).SerializeAsString());
}

TEST_F(MpiJob, ThreeRankEvaluationEqualsOneProcessExactly) {
  const std::string ckpt = dir_.file("model.ckpt");
  const CommandResult t = convoy({"train", "--model", "lenet5", "--limit-train", "2000",
                                  "--limit-test", "100", "--max-steps", "20", "--save", ckpt});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const CommandResult one = convoy({"evaluate", "--checkpoint", ckpt, "--log-json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const CommandResult three = mpirun(3, {"evaluate", "--checkpoint", ckpt, "--log-json"});
  ASSERT_EQ(three.exit_code, 0) << three.err;
  const nlohmann::json a = last_json_line(one.out), b = last_json_line(three.out);
  EXPECT_EQ(a["world_size"], 1);
  EXPECT_EQ(b["world_size"], 3);
  EXPECT_EQ(b["test_samples"], 10000);  // 3,333 + 3,333 + 3,334: each image once
  EXPECT_EQ(a["confusion_matrix"], b["confusion_matrix"]);
  EXPECT_EQ(a["test_accuracy"], b["test_accuracy"]);
  EXPECT_NEAR(a["test_loss"].get<double>(), b["test_loss"].get<double>(), 1e-9);
}

TEST_F(MpiJob, RanksWithDifferentSettingsStopWithTheFieldNamed) {
  // mpirun's MPMD form: rank 0 with one learning rate, rank 1 with another.
  std::vector<std::string> argv = testing::mpirun_convoy(1, train_args(16, dir_.file("a.ckpt")));
  argv.insert(argv.end(), {"--lr", "0.1", ":", "-np", "1", testing::convoy_binary()});
  const std::vector<std::string> second = train_args(16, dir_.file("b.ckpt"));
  argv.insert(argv.end(), second.begin(), second.end());
  const auto start = std::chrono::steady_clock::now();
  const CommandResult r = testing::run_command(argv, 120);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("convoy: ranks disagree on --lr: rank 0 has 0.1, rank 1 has 0.05"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("a.ckpt")));
}

// --flip=false and no --flip are the same flag value but not the same training when the model asks
// for flips: the ranks compare the augmentation itself.
TEST_F(MpiJob, RanksAugmentingDifferentlyStop) {
  std::vector<std::string> argv =
      testing::mpirun_convoy(1, train_args(16, dir_.file("a.ckpt"), "fashion_fast"));
  argv.insert(argv.end(), {"--flip=false", ":", "-np", "1", testing::convoy_binary()});
  const std::vector<std::string> second = train_args(16, dir_.file("b.ckpt"), "fashion_fast");
  argv.insert(argv.end(), second.begin(), second.end());
  const CommandResult r = testing::run_command(argv, 120);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("convoy: ranks disagree on augmentation: rank 0 has none, rank 1 has flip"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.file("a.ckpt")));
}

TEST_F(MpiJob, KilledRankEndsTheJob) {
  // Train for long enough that the kill lands mid-training.
  const std::string out = dir_.file("out"), err = dir_.file("err");
  testing::ChildProcess job(testing::mpirun_convoy(2, {"train", "--model", "lenet5", "--epochs",
                                                       "50", "--threads", "1", "--log-json"}),
                            out, err);
  // Wait for training to start: the first step line.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    started = testing::read_file(out).find("\"event\":\"step\"") != std::string::npos;
    if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(started) << testing::read_file(err);
  const std::vector<int> ranks = testing::child_pids(job.pid());
  ASSERT_EQ(ranks.size(), 2u) << "mpirun should have two convoy children";
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(ranks[1], SIGKILL);
  ASSERT_TRUE(job.wait_for(30)) << "the job was still running 30 s after a rank died";
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_NE(job.exit_code(), 0);
  EXPECT_TRUE(testing::child_pids(job.pid()).empty());
  std::printf("job ended %.2f s after a rank was killed, exit code %d\n", seconds, job.exit_code());
}

// A job of 2 ranks stopped at step 40 (of 62) continues in 1 process with the same global batch:
// sharding gives every step the same samples whatever the number of ranks, so it ends where an
// uninterrupted 2-rank run ends, up to float rounding (sums over ranks in another order).
TEST_F(MpiJob, AJobResumesOnAnotherNumberOfRanksWithTheSameGlobalBatch) {
  const auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {
        "train", "--model",   "lenet5", "--limit-train", "1000",       "--limit-test",
        "500",   "--epochs",  "2",      "--lr-schedule", "constant",   "--global-batch-size",
        "32",    "--threads", "1",      "--log-json",    "--progress", "none"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const CommandResult full = mpirun(2, args({"--save", dir_.file("full.ckpt")}));
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_EQ(last_json_line(full.out)["steps"], 62);
  const std::string store = dir_.file("checkpoints");
  const CommandResult first = mpirun(2, args({"--max-steps", "40", "--checkpoint-dir", store}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const CommandResult rest =
      convoy(args({"--checkpoint-dir", store, "--resume", "--save", dir_.file("resumed.ckpt")}));
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  EXPECT_NE(rest.err.find("(epoch 2, step 40)"), std::string::npos) << rest.err;
  EXPECT_EQ(last_json_line(rest.out)["world_size"], 1);
  const pb::Checkpoint resumed = load_checkpoint(dir_.file("resumed.ckpt"));
  const pb::Checkpoint reference = load_checkpoint(dir_.file("full.ckpt"));
  EXPECT_EQ(resumed.step(), 62);
  const double difference = max_relative_difference(resumed, reference);
  EXPECT_LE(difference, 1e-5);
  std::printf("2 ranks to step 40, then 1 process: max relative difference %.3g\n", difference);

  // Another global batch is another trajectory: refused. A global batch the ranks cannot divide
  // too.
  const CommandResult other =
      convoy(args({"--global-batch-size", "64", "--checkpoint-dir", store, "--resume"}));
  EXPECT_EQ(other.exit_code, 2) << other.err;
  EXPECT_NE(other.err.find("global batch of 32 (32 x 1 rank(s)), this run has 64"),
            std::string::npos)
      << other.err;
  const CommandResult odd = mpirun(2, args({"--global-batch-size", "33"}));
  EXPECT_EQ(odd.exit_code, 2) << odd.err;
  EXPECT_NE(odd.err.find("--global-batch-size: 33 is not divisible by the 2 ranks"),
            std::string::npos)
      << odd.err;
}

}  // namespace
}  // namespace convoy
