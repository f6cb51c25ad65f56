// The convoy binary on bad input: every case ends with exit code 2 and exactly one line on
// stderr that names the flag, file or field -- never a crash, a hang or a core dump.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "core/checkpoint.h"
#include "core/precision.h"
#include "testing/idx_files.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::CommandResult;
using testing::last_json_line;
using testing::TempDir;

const testing::ConvoyRunner convoy{.threads = 1, .timeout_seconds = 120};

// Runs convoy and checks the bad-input contract; returns stderr for further checks. Errors found
// before any work starts are the only line on stderr; errors found during training
// (`after_progress`) are the last line, after the progress lines.
std::string expect_bad_input(const std::vector<std::string>& args, const std::string& needle,
                             bool after_progress = false) {
  const CommandResult r = convoy(args);
  std::string joined;
  for (const std::string& a : args) joined += a + " ";
  EXPECT_FALSE(r.timed_out) << joined;
  EXPECT_EQ(r.signal, 0) << joined;
  EXPECT_EQ(r.exit_code, 2) << joined << "\nstderr: " << r.err;
  std::string line = r.err;
  if (after_progress) {
    const size_t start = r.err.rfind('\n', r.err.size() >= 2 ? r.err.size() - 2 : 0);
    line = start == std::string::npos ? r.err : r.err.substr(start + 1);
  }
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << joined << "\nstderr: " << r.err;
  EXPECT_EQ(line.rfind("convoy: ", 0), 0u) << r.err;
  EXPECT_NE(line.find(needle), std::string::npos)
      << joined << "\nexpected '" << needle << "' in: " << r.err;
  return line;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_mnist_dir(data_.path(), 64, 20); }
  std::vector<std::string> train(std::vector<std::string> extra) {
    std::vector<std::string> args = {"train",      "--model",  "lenet5", "--data",
                                     data_.path(), "--epochs", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  TempDir data_;
  TempDir work_;
};

TEST_F(Cli, UsageErrors) {
  expect_bad_input({}, "subcommand");
  expect_bad_input({"fly"}, "fly");
  expect_bad_input({"train"}, "--model");
  expect_bad_input(train({"--frobnicate"}), "--frobnicate");
  for (const std::string decay : {"1", "-0.5", "nan", "x", "0.99999999"}) {
    expect_bad_input(train({"--ema-decay", decay}), "--ema-decay");
  }
}

// bf16 is refused where the CPU lacks it; ONEDNN_MAX_CPU_ISA makes any CPU such a CPU.
TEST_F(Cli, Bf16WithoutCpuSupportOrAnUnknownPrecisionIsRefused) {
  expect_bad_input(train({"--precision", "fp16"}), "--precision");
  for (const std::string command : {"train", "bench", "evaluate"}) {
    std::vector<std::string> argv = {testing::convoy_binary()};
    if (command == "train") {
      for (const std::string& a : train({})) argv.push_back(a);
    } else if (command == "bench") {
      argv.insert(argv.end(), {"bench", "--model", "lenet5"});
    } else {
      argv.insert(argv.end(), {"evaluate", "--checkpoint", work_.file("missing.ckpt")});
    }
    argv.insert(argv.end(), {"--precision", "bf16"});
    const CommandResult r =
        testing::run_command(argv, 120, {"ONEDNN_MAX_CPU_ISA=AVX2", "OMP_NUM_THREADS=1"});
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    EXPECT_EQ(r.err,
              "convoy: --precision: bf16 needs a CPU with AVX512-BF16 or AMX; this one runs oneDNN "
              "at AVX2 (see ONEDNN_MAX_CPU_ISA)\n")
        << command;
  }
}

// Where the CPU has bf16: a bf16 run's checkpoint is an fp32 checkpoint (evaluate reads it in
// either precision), and bench says which precision it timed.
TEST_F(Cli, Bf16CheckpointsEvaluateInEitherPrecision) {
  if (!testing::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16 (nor AMX)";
  const std::string save = work_.file("bf16.ckpt");
  const CommandResult trained = convoy(train({"--precision", "bf16", "--save", save}));
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  double accuracy[2];
  int i = 0;
  for (const char* precision : {"fp32", "bf16"}) {
    const CommandResult r = convoy({"evaluate", "--checkpoint", save, "--data", data_.path(),
                                    "--precision", precision, "--log-json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    accuracy[i++] = last_json_line(r.out)["test_accuracy"].get<double>();
  }
  EXPECT_NEAR(accuracy[0], accuracy[1], 0.1);  // 20 test samples: two may flip
  const CommandResult bench = convoy(
      {"bench", "--model", "lenet5", "--steps", "3", "--warmup", "1", "--precision", "bf16"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_EQ(last_json_line(bench.out)["precision"], "bf16");
}

// A checkpoint records how its run evaluated (precision, test flip), so evaluate repeats the final
// report unasked; flags override (the last one wins), and a bf16 checkpoint still evaluates, in
// fp32, where the CPU has no bf16.
TEST_F(Cli, EvaluateRepeatsHowTheRunEvaluated) {
  const std::string precision = testing::cpu_has_bf16() ? "bf16" : "fp32";
  const std::string save = work_.file("flip.ckpt");
  const CommandResult trained =
      convoy(train({"--test-flip", "--precision", precision, "--save", save, "--log-json"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const double final_loss = last_json_line(trained.out)["test_loss"].get<double>();
  const pb::TrainSpec recorded = load_checkpoint(save).model().train();
  EXPECT_TRUE(recorded.test_flip());
  EXPECT_EQ(recorded.precision(), precision);

  const auto evaluate = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"evaluate",   "--checkpoint", save, "--data",
                                     data_.path(), "--batch-size", "64", "--log-json"};
    args.insert(args.end(), flags.begin(), flags.end());
    const CommandResult r = convoy(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return last_json_line(r.out)["test_loss"].get<double>();
  };
  EXPECT_NEAR(evaluate({}), final_loss, 1e-4);
  const double unflipped = evaluate({"--test-flip=false"});
  EXPECT_GT(std::abs(unflipped - final_loss), 1e-4)
      << "flipped and unflipped evaluate alike: the comparison cannot fail";
  EXPECT_NEAR(evaluate({"--test-flip=false", "--test-flip"}), final_loss, 1e-4);
  EXPECT_NEAR(evaluate({"--test-flip", "--test-flip=false"}), unflipped, 1e-4);

  if (precision == "bf16") {
    const CommandResult fp32 =
        testing::run_command({testing::convoy_binary(), "evaluate", "--checkpoint", save, "--data",
                              data_.path(), "--log-json"},
                             120, {"ONEDNN_MAX_CPU_ISA=AVX2", "OMP_NUM_THREADS=1"});
    EXPECT_EQ(fp32.exit_code, 0) << fp32.err;
    EXPECT_NE(fp32.err.find("evaluating in fp32, not the bf16 the checkpoint was trained in"),
              std::string::npos)
        << fp32.err;
    EXPECT_NEAR(last_json_line(fp32.out)["test_loss"].get<double>(), final_loss, 0.05);
  }
}

// fashion_fast carries its recipe: the start event shows the model's values, except those the
// command line gives, and `auto` resolved to the precision that ran.
TEST_F(Cli, AModelsRecipeSetsTheDefaultsAndFlagsWin) {
  const CommandResult r = convoy({"train", "--model", "fashion_fast", "--data", data_.path(),
                                  "--global-batch-size", "32", "--epochs", "1", "--log-json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json start;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"event\":\"start\"") != std::string::npos) start = nlohmann::json::parse(line);
  }
  EXPECT_EQ(start["epochs"], 1);              // given
  EXPECT_EQ(start["global_batch_size"], 32);  // given
  EXPECT_EQ(start["lr"], 0.1);                // the recipe's
  EXPECT_EQ(start["label_smoothing"], 0.1);
  EXPECT_EQ(start["test_flip"], true);
  EXPECT_EQ(start["augment"], "flip");  // the model's augment block
  // The rule for auto is checked against the CPU's flags in Precision.AutoIsBf16WithAmx....
  EXPECT_EQ(start["precision"], precision_name(preferred_precision()));
}

// Augmentation flags replace what the model's augment block asks for, either way.
TEST_F(Cli, AugmentationFlagsTurnTheModelsChoicesOffAndOn) {
  const std::string model =
      work_.write("augmented.pbtxt",
                  "input { channels: 1 spatial: [28, 28] } num_classes: 10\n"
                  "augment { crop_padding: 2 horizontal_flip: true }\n"
                  "layer { name: \"fc\" type: \"Dense\" dense { units: 10 } }\n");
  const auto augment = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"train",      "--model",     model, "--data",
                                     data_.path(), "--max-steps", "1",   "--log-json"};
    args.insert(args.end(), flags.begin(), flags.end());
    const CommandResult r = convoy(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"start\"") != std::string::npos) {
        return nlohmann::json::parse(line)["augment"].get<std::string>();
      }
    }
    return std::string("no start event");
  };
  EXPECT_EQ(augment({"--flip=false"}), "crop 2");
  EXPECT_EQ(augment({"--random-crop", "0"}), "flip");
  EXPECT_EQ(augment({"--random-crop", "0", "--flip=false"}), "none");
  EXPECT_EQ(augment({"--flip=false", "--flip"}), "crop 2 + flip");  // the last one wins
  EXPECT_EQ(augment({"--no-augment", "--flip"}), "none");
  EXPECT_EQ(augment({"--random-crop", "3"}), "crop 3 + flip");
  EXPECT_EQ(augment({}), "crop 2 + flip");
}

TEST_F(Cli, NonPositiveNumbers) {
  expect_bad_input(train({"--batch-size", "0"}), "--batch-size");
  expect_bad_input(train({"--batch-size", "-3"}), "--batch-size");
  expect_bad_input(train({"--epochs", "0"}), "--epochs");
  expect_bad_input(train({"--lr", "0"}), "--lr");
  expect_bad_input(train({"--lr", "-0.1"}), "--lr");
  expect_bad_input(train({"--lr", "nan"}), "--lr");
  expect_bad_input(train({"--lr", "fast"}), "--lr");
}

TEST_F(Cli, BadModels) {
  expect_bad_input(train({"--model", "resnet"}), "unknown model 'resnet'");
  const std::string malformed = work_.write("bad.pbtxt",
                                            "input { channels: 1 spatial: [28, 28]\n"
                                            "num_classes: 10\n");
  expect_bad_input(train({"--model", malformed}), malformed + ":");
  const std::string unknown =
      work_.write("unknown.pbtxt", R"(input { channels: 1 spatial: [28, 28] } num_classes: 10
                                      layer { name: "x" type: "Convolution" })");
  expect_bad_input(train({"--model", unknown}), "unknown layer type 'Convolution'");
  const std::string zero =
      work_.write("zero.pbtxt", R"(input { channels: 1 spatial: [28, 28] } num_classes: 10
                                   layer { name: "c" type: "Conv2D" conv { filters: 4 kernel: 29 } }
                                   layer { type: "Dense" dense { units: 10 } })");
  expect_bad_input(train({"--model", zero}), "output size would be 4x0x0");
  expect_bad_input(train({"--model", work_.file("missing.pbtxt")}), "cannot read model file");
}

TEST_F(Cli, CifarTrainsAndNpyOrCifarDataThatDoNotFitFailClearly) {
  TempDir npy;
  const CommandResult made = testing::run_command(
      {"/usr/bin/python3", "-c",
       "import numpy as np, sys, os\n"
       "for s in ('train', 'test'):\n"
       "    np.save(os.path.join(sys.argv[1], s + '_x.npy'), np.zeros((40, 1, 64), np.float32))\n"
       "    np.save(os.path.join(sys.argv[1], s + '_y.npy'), np.zeros(40, np.int64))\n",
       npy.path()},
      60);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  expect_bad_input(
      {"train", "--model", "conv1d_seq", "--dataset", "npy", "--data", npy.path()},
      "--data: '" + npy.path() + "' holds 1x64 samples but model 'conv1d_seq' expects 1x128");
  expect_bad_input({"train", "--model", "lenet5", "--dataset", "npy"},
                   "--data: required with --dataset npy");
  expect_bad_input({"train", "--model", "lenet5", "--dataset", "imagenet"}, "--dataset");
  expect_bad_input(train({"--random-crop", "-1"}), "--random-crop");
  expect_bad_input(train({"--optimizer", "rmsprop"}), "--optimizer");
  expect_bad_input(train({"--optimizer", "adam", "--beta1", "1.5"}), "--beta1");

  TempDir cifar;
  for (const char* name : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                           "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}) {
    cifar.write(name, std::string(3073 * 2, '\0'));
  }
  // Good files train alexnet_cifar (two steps of 4 images) and evaluate on all test records.
  const CommandResult ok =
      convoy({"train", "--model", "alexnet_cifar", "--dataset", "cifar10", "--data", cifar.path(),
              "--batch-size", "4", "--max-steps", "2", "--log-json", "--progress", "none"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(testing::last_json_line(ok.out)["test_samples"], 2);
  cifar.write("data_batch_3.bin", std::string(3073 * 2 - 1, '\0'));
  expect_bad_input(
      {"train", "--model", "alexnet_cifar", "--dataset", "cifar10", "--data", cifar.path()},
      "data_batch_3.bin': 6145 bytes is not a whole number of 3073-byte CIFAR-10 records");
}

TEST_F(Cli, BadDataDirectories) {
  expect_bad_input(train({"--data", "/nonexistent/dir"}), "'/nonexistent/dir' does not exist");
  expect_bad_input({"train", "--model", "lenet5", "--dataset", "mnist"},
                   "--data: required with --dataset mnist");

  TempDir missing;
  testing::write_mnist_dir(missing.path(), 64, 20);
  std::filesystem::remove(missing.file("t10k-labels-idx1-ubyte.gz"));
  expect_bad_input(train({"--data", missing.path()}), "t10k-labels-idx1-ubyte");

  TempDir magic;
  testing::write_mnist_dir(magic.path(), 64, 20);
  magic.write("train-images-idx3-ubyte.gz", testing::gzip(testing::idx_labels({1, 2})));
  expect_bad_input(train({"--data", magic.path()}), "wrong IDX magic 2049");

  TempDir truncated;
  testing::write_mnist_dir(truncated.path(), 64, 20);
  const std::string images = testing::idx_images(64, 28, 28);
  truncated.write("train-images-idx3-ubyte.gz", testing::gzip(images.substr(0, 5000)));
  expect_bad_input(train({"--data", truncated.path()}), "truncated IDX file");

  TempDir cut_gzip;
  testing::write_mnist_dir(cut_gzip.path(), 64, 20);
  const std::string zipped = testing::gzip(images);
  cut_gzip.write("train-images-idx3-ubyte.gz", zipped.substr(0, zipped.size() / 2));
  expect_bad_input(train({"--data", cut_gzip.path()}), "gzip");

  TempDir counts;
  testing::write_mnist_dir(counts.path(), 64, 20);
  counts.write("train-labels-idx1-ubyte.gz", testing::gzip(testing::idx_labels({1, 2, 3})));
  expect_bad_input(train({"--data", counts.path()}), "holds 64 images but");

  TempDir label;
  testing::write_mnist_dir(label.path(), 64, 20);
  std::vector<uint8_t> labels(64, 3);
  labels[17] = 12;
  label.write("train-labels-idx1-ubyte.gz", testing::gzip(testing::idx_labels(labels)));
  expect_bad_input(train({"--data", label.path()}), "label 12 of sample 17");

  TempDir small;
  testing::write_mnist_dir(small.path(), 64, 20, 8, 8);
  expect_bad_input(train({"--data", small.path()}), "holds 1x8x8 samples but model 'lenet5'");
}

TEST_F(Cli, BatchLargerThanTheTrainingSet) {
  expect_bad_input(train({"--batch-size", "65"}),
                   "--batch-size: a global batch of 65 is larger than the training");
}

TEST_F(Cli, UnwritableOutputsFailBeforeWork) {
  expect_bad_input(train({"--save", "/nonexistent/dir/m.ckpt"}), "--save");
  expect_bad_input({"export", "--checkpoint", work_.file("x"), "--out", "/nonexistent/d/x.npz"},
                   "--out");
}

TEST_F(Cli, CorruptCheckpoints) {
  const std::string garbage = work_.write("garbage.ckpt", "this is not a checkpoint");
  expect_bad_input({"evaluate", "--checkpoint", garbage, "--data", data_.path()},
                   "not a convoy checkpoint");
  expect_bad_input({"export", "--checkpoint", garbage, "--out", work_.file("x.npz")},
                   "not a convoy checkpoint");
  EXPECT_FALSE(std::filesystem::exists(work_.file("x.npz")));

  // A real checkpoint with one byte flipped.
  const std::string good = work_.file("good.ckpt");
  const CommandResult r = convoy(train({"--max-steps", "2", "--save", good}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string bytes = testing::read_file(good);
  bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 1);
  const std::string flipped = work_.write("flipped.ckpt", bytes);
  expect_bad_input({"evaluate", "--checkpoint", flipped, "--data", data_.path()},
                   "corrupt checkpoint (checksum mismatch)");
  expect_bad_input({"evaluate", "--checkpoint", work_.file("none.ckpt")}, "cannot open");
}

TEST_F(Cli, DivergingLossStopsWithTheStep) {
  const std::string err = expect_bad_input(
      train({"--lr", "1e30", "--batch-size", "8", "--epochs", "3"}), "training diverged",
      /*after_progress=*/true);
  EXPECT_NE(err.find("at step "), std::string::npos) << err;
}

TEST_F(Cli, HelpAndVersionSucceed) {
  CommandResult r = convoy({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("train"), std::string::npos);
  r = convoy({"train", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--batch-size"), std::string::npos);
  r = convoy({"--version"});
  EXPECT_EQ(r.exit_code, 0);
}

TEST_F(Cli, ModelsListsAndPrintsBuiltins) {
  CommandResult r = convoy({"models"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("fashion_cnn: input 1x28x28, 10 classes"), std::string::npos) << r.out;
  r = convoy({"models", "lenet5"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find(R"(layer { name: "conv1" type: "Conv2D")"), std::string::npos) << r.out;
  expect_bad_input({"models", "vgg"}, "unknown model 'vgg'");
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

TEST_F(Cli, CoordinatorAndCheckpointFlags) {
  expect_bad_input(train({"--resume"}), "--resume: needs --coordinator or --checkpoint-dir");
  expect_bad_input(train({"--checkpoint-every", "5"}),
                   "--checkpoint-every: needs --coordinator or --checkpoint-dir");
  expect_bad_input(train({"--coordinator", "127.0.0.1:1", "--checkpoint-dir", work_.path()}),
                   "--checkpoint-dir: not with --coordinator");
  expect_bad_input(train({"--coordinator", "127.0.0.1:1", "--job-id", "../x"}),
                   "--job-id: '../x' is not allowed");
  expect_bad_input(train({"--coordinator", "127.0.0.1:1", "--auth-token-file", "/nonexistent"}),
                   "--auth-token-file: cannot read '/nonexistent'");
  expect_bad_input({"coordinator", "--listen", "127.0.0.1:0"}, "--state-dir");
  expect_bad_input({"coordinator", "--listen", "not an address", "--state-dir", work_.path()},
                   "--listen: cannot listen on 'not an address'");
  expect_bad_input(
      {"coordinator", "--listen", "127.0.0.1:0", "--state-dir", work_.path(), "--tls-cert", "x"},
      "--tls-cert and --tls-key go together");
  expect_bad_input({"coordinator", "--listen", "127.0.0.1:0", "--state-dir", work_.file("s1"),
                    "--http-listen", "nonsense"},
                   "--http-listen: expected host:port, got 'nonsense'");
  expect_bad_input({"coordinator", "--listen", "127.0.0.1:0", "--state-dir", work_.file("s2"),
                    "--http-listen", "192.0.2.1:0"},
                   "--http-listen: cannot listen on '192.0.2.1:0'");
  expect_bad_input({"monitor", "127.0.0.1:1", "metrics", "--out", "/nonexistent/d/m.csv"}, "--out");
}

TEST_F(Cli, ValuesThatWouldWrapOrVanishAreRefused) {
  expect_bad_input(train({"--seed", "-1"}), "--seed");
  expect_bad_input(train({"--seed", "99999999999999999999999"}), "--seed");
  expect_bad_input(train({"--save", ""}), "--save");
  expect_bad_input(train({"--bucket-mb", "1e30"}), "--bucket-mb");
  expect_bad_input({"bench", "--model", "lenet5", "--threads", "100000"}, "--threads");
  expect_bad_input({"coordinator", "--listen", "127.0.0.1:0", "--state-dir", work_.path(),
                    "--max-checkpoint-mb", "1e30"},
                   "--max-checkpoint-mb");
  expect_bad_input(train({"--data", "/etc/passwd"}), "--data: '/etc/passwd' is not a directory");
}

TEST_F(Cli, LayerNamesMustBeSafeAsFileAndArchiveNames) {
  for (const std::string name : {"a/../b", "\\xff\\xfe\\x80", ".hidden"}) {
    const std::string model =
        work_.write("m.pbtxt",
                    "input { channels: 1 spatial: [28, 28] } num_classes: 10\n"
                    "layer { name: \"" +
                        name + "\" type: \"Dense\" dense { units: 10 } }\n");
    const std::string err = expect_bad_input({"train", "--model", model, "--data", data_.path(),
                                              "--epochs", "1", "--save", work_.file("m.ckpt")},
                                             "is not allowed");
    EXPECT_FALSE(std::filesystem::exists(work_.file("m.ckpt"))) << name;
    EXPECT_EQ(err.find('\xff'), std::string::npos) << "raw bytes echoed: " << err;
  }
}

// The disk filling up under the final --save: an I/O error (exit 1, not the user's 2), and the
// trained model is kept elsewhere, named in the message. A 64 KiB file system in a private mount
// namespace plays the full disk (it needs root; the namespace and its mount end with the process).
TEST_F(Cli, AFullDiskOnTheFinalSaveKeepsTheModelAndExitsOne) {
  if (::geteuid() != 0 || std::system("unshare --mount true 2>/dev/null") != 0) {
    GTEST_SKIP() << "needs root and mount namespaces to make a small file system";
  }
  const std::string full = work_.file("full");
  std::filesystem::create_directories(full);
  std::string command = "mount -t tmpfs -o size=64k convoy-test-full '" + full + "' && exec '" +
                        testing::convoy_binary() + "'";
  for (const std::string& a : train({"--save", full + "/m.ckpt", "--progress", "none"})) {
    command += " '" + a + "'";
  }
  const CommandResult r =
      testing::run_command({"/usr/bin/unshare", "--mount", "/bin/sh", "-c", command}, 120,
                           {"OMP_NUM_THREADS=1", "TMPDIR=" + work_.path()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  const std::string kept = work_.file("convoy-lenet5-");
  const size_t at = r.err.find("kept at '" + kept);
  ASSERT_NE(at, std::string::npos) << r.err;
  const std::string path = r.err.substr(at + 9, r.err.find('\'', at + 9) - at - 9);
  EXPECT_GT(load_checkpoint(path).step(), 0) << path;
}

TEST_F(Cli, ModelsTooLargeForTheMachineAreRefusedBeforeBuilding) {
  const std::string header = "input { channels: 1 spatial: [28, 28] } num_classes: 10\n";
  const std::string huge = work_.write(
      "huge.pbtxt", header +
                        "layer { name: \"wide\" type: \"Conv2D\" conv { filters: 1000000000 "
                        "kernel: 3 pad: 1 } }\n"
                        "layer { name: \"fc\" type: \"Dense\" dense { units: 10 } }\n");
  const std::string err =
      expect_bad_input({"train", "--model", huge, "--data", data_.path(), "--epochs", "1"},
                       "more than this machine's");
  EXPECT_NE(err.find("layer 'wide'"), std::string::npos) << err;

  std::string many = header;
  for (int i = 0; i < 10001; ++i) many += "layer { type: \"ReLU\" }\n";
  many += "layer { type: \"Dense\" dense { units: 10 } }\n";
  expect_bad_input({"train", "--model", work_.write("many.pbtxt", many), "--data", data_.path()},
                   "layers (at most 10000)");

  expect_bad_input(
      {"train", "--model", work_.write("big.pbtxt", header + std::string(17 << 20, ' ')), "--data",
       data_.path()},
      "(at most 16 MiB)");
}

TEST_F(Cli, LaunchStartsTheJobUnderMpirunAndEndsWithItsExitCode) {
  const CommandResult ok = convoy({"launch", "-np", "2", "--state-dir", work_.file("state"), "--",
                                   "train", "--model", "lenet5", "--data", data_.path(), "--epochs",
                                   "1", "--batch-size", "16", "--log-json", "--progress", "none"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("\nconvoy launch: mpirun -np 2 "), std::string::npos) << ok.err;
  EXPECT_NE(ok.err.find("convoy monitor 127.0.0.1:"), std::string::npos) << ok.err;
  EXPECT_EQ(last_json_line(ok.out)["world_size"], 2);
  const CommandResult bad = convoy({"launch", "--", "train", "--model", "nope"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--model: unknown model 'nope'"), std::string::npos) << bad.err;
}

// convoy launch reads a model's recipe as the ranks will: fashion_fast's global batch of 128 lets
// a job that may shrink start, on the most ranks that divide it.
TEST_F(Cli, LaunchTakesTheModelsRecipe) {
  const CommandResult r = convoy({"launch", "--dry-run", "--min-np", "1", "-np", "3", "--", "train",
                                  "--model", "fashion_fast"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mpirun -np 2 "), std::string::npos) << r.out;
}

TEST_F(Cli, LaunchBadInput) {
  expect_bad_input({"launch", "-np", "0", "--", "train", "--model", "lenet5"}, "--np");
  expect_bad_input({"launch", "--hostfile", "/nonexistent", "--", "train", "--model", "lenet5"},
                   "--hostfile: cannot read '/nonexistent'");
  expect_bad_input({"launch", "--hostfile", work_.write("hosts", "a slots=two\n"), "--", "train"},
                   "--hostfile: '" + work_.file("hosts") + "' line 1");
  expect_bad_input({"launch", "--dry-run"}, "launch runs train, evaluate or bench");
  expect_bad_input({"launch", "--host-discovery-script", "echo broken >&2; exit 3", "--", "train",
                    "--model", "lenet5"},
                   "--host-discovery-script: 'echo broken >&2; exit 3' exited with code 3: broken");
  expect_bad_input(
      {"launch", "--host-discovery-script", "echo node-a:x", "--", "train", "--model", "lenet5"},
      "--host-discovery-script: output of 'echo node-a:x' line 1: expected 'host:slots'");
  expect_bad_input({"launch", "--host-discovery-script", "true", "--", "train", "--model", "x"},
                   "output of 'true' printed no host");
  expect_bad_input({"launch", "--hostfile", work_.write("h", "a\n"), "--host-discovery-script",
                    "true", "--", "train", "--model", "lenet5"},
                   "excludes");
  expect_bad_input({"launch", "--max-restarts", "-1", "--", "train", "--model", "lenet5"},
                   "--max-restarts");
  expect_bad_input({"launch", "--hang-timeout", "0", "--", "train", "--model", "lenet5"},
                   "--hang-timeout");
  expect_bad_input({"launch", "--", "train", "--model", "lenet5", "--epochs", "x"},
                   "train: --epochs");
  expect_bad_input({"launch", "--min-np", "1", "--", "train", "--model", "lenet5"},
                   "--min-np: a job that may restart on fewer ranks needs train's "
                   "--global-batch-size");
  expect_bad_input({"launch", "--", "train", "--model", "lenet5", "--checkpoint-dir", "d"},
                   "--checkpoint-dir: convoy launch keeps");
  expect_bad_input({"launch", "--fresh", "--", "train", "--model", "lenet5", "--resume"},
                   "--fresh: not with train's --resume");
  expect_bad_input({"launch", "--hostfile", "/dev/zero", "--", "train", "--model", "lenet5"},
                   "--hostfile: '/dev/zero' is not a regular file");
  expect_bad_input({"launch", "--host-discovery-script", "yes localhost | head -c 1100000", "--",
                    "train", "--model", "lenet5"},
                   "printed more than 1 MiB");
  expect_bad_input({"launch", "--backoff", "nan", "--", "train", "--model", "lenet5"}, "--backoff");
  expect_bad_input({"launch", "--", "train", "--model", "lenet5", "--progress", "bar"},
                   "--progress bar: not under convoy launch");
  expect_bad_input({"launch", "--min-np", "1", "--", "bench", "--model", "lenet5"},
                   "--min-np: only for train");
  const std::string file = work_.write("not-a-dir", "x");
  expect_bad_input({"launch", "--state-dir", file + "/sub", "--", "train", "--model", "lenet5"},
                   "--state-dir");
}

// --fresh starts the job over and keeps the earlier run, as a job of its own; a state directory
// in use by another coordinator is refused.
TEST_F(Cli, LaunchFreshKeepsTheEarlierRunAndAStateDirHasOneOwner) {
  const std::vector<std::string> job = {"--",           "train",      "--model",    "lenet5",
                                        "--data",       data_.path(), "--epochs",   "1",
                                        "--batch-size", "16",         "--progress", "none"};
  const auto launch = [&](std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"launch", "-np", "2", "--state-dir", work_.file("state")});
    flags.insert(flags.end(), job.begin(), job.end());
    return convoy(flags);
  };
  ASSERT_EQ(launch({}).exit_code, 0);
  const CommandResult again = launch({});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming job 'lenet5'"), std::string::npos) << again.err;
  const CommandResult fresh = launch({"--fresh"});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(fresh.err.find("resuming job"), std::string::npos) << fresh.err;
  std::smatch kept;
  ASSERT_TRUE(std::regex_search(fresh.err, kept,
                                std::regex("the earlier run of 'lenet5' is kept as job '([^']+)'")))
      << fresh.err;
  EXPECT_TRUE(std::filesystem::exists(work_.file("state") + "/checkpoints/" + kept[1].str()));
  EXPECT_TRUE(std::filesystem::exists(work_.file("state") + "/checkpoints/lenet5"));

  testing::ChildProcess coordinator({testing::convoy_binary(), "coordinator", "--listen",
                                     "127.0.0.1:0", "--state-dir", work_.file("state")},
                                    work_.file("c.out"), work_.file("c.err"));
  for (int i = 0; i < 400 && testing::read_file(work_.file("c.out")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  std::vector<std::string> args = {"launch", "--state-dir", work_.file("state")};
  args.insert(args.end(), job.begin(), job.end());
  expect_bad_input(args, "--state-dir: '" + work_.file("state") + "' is in use by another convoy");
}

// Bad input found by the ranks ends the job with exit code 2 at once: it is never restarted.
TEST_F(Cli, LaunchNeverRestartsAJobThatFoundBadInput) {
  const CommandResult r = convoy({"launch", "-np", "2", "--state-dir", work_.file("state"), "--",
                                  "train", "--model", "lenet5", "--data", work_.file("nothing")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.find("restart"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("mpirun noticed"), std::string::npos) << r.err;  // no mpirun banner
  EXPECT_EQ(r.err.find("-----"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[rank 0] convoy: --data: "), std::string::npos) << r.err;
}

// Resuming a job that already finished trains nothing: its --save and its checkpoints keep the
// finished position (not step 0 of a fresh run).
TEST_F(Cli, ResumingAFinishedJobKeepsItsPosition) {
  const std::string store = work_.file("store");
  const auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args =
        train({"--batch-size", "16", "--checkpoint-dir", store, "--progress", "none"});
    args.insert(args.end(), extra.begin(), extra.end());
    return convoy(args);
  };
  ASSERT_EQ(run({}).exit_code, 0);
  const CommandResult again = run({"--resume", "--save", work_.file("final.ckpt")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(load_checkpoint(work_.file("final.ckpt")).step(), 4);
  EXPECT_FALSE(std::filesystem::exists(store + "/step-000000000.ckpt"));
}

// A run's average of the weights goes on with it: resuming without it, or with another decay, is
// refused; switching one on where a finished job had none saves no empty average.
TEST_F(Cli, ResumingKeepsTheAverageOfTheWeights) {
  const auto run = [&](const std::string& store, std::vector<std::string> extra) {
    std::vector<std::string> args = train(
        {"--batch-size", "16", "--checkpoint-dir", store, "--progress", "none", "--log-json"});
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::string averaged = work_.file("averaged");
  ASSERT_EQ(convoy(run(averaged, {"--ema-decay", "0.9"})).exit_code, 0);
  expect_bad_input(run(averaged, {"--resume"}), "--ema-decay 0.9, this run has 0 (none)");
  expect_bad_input(run(averaged, {"--resume", "--ema-decay", "0.5"}),
                   "--ema-decay 0.9, this run has 0.5");
  const CommandResult same =
      convoy(run(averaged, {"--resume", "--ema-decay", "0.9", "--save", work_.file("a.ckpt")}));
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(load_checkpoint(work_.file("a.ckpt")).average().updates(), 4);

  const std::string plain = work_.file("plain");
  const CommandResult first = convoy(run(plain, {}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const CommandResult on =
      convoy(run(plain, {"--resume", "--ema-decay", "0.9", "--save", work_.file("b.ckpt")}));
  ASSERT_EQ(on.exit_code, 0) << on.err;
  EXPECT_FALSE(load_checkpoint(work_.file("b.ckpt")).has_average());
  // No step was left to average: the report is the model's own, not an empty average's.
  EXPECT_EQ(last_json_line(on.out)["test_loss"], last_json_line(first.out)["test_loss"]);
}

TEST_F(Cli, DevicesAreNotReadAsCheckpoints) {
  expect_bad_input({"evaluate", "--checkpoint", "/dev/zero"}, "not a regular file");
}

TEST_F(Cli, MonitorOptionsMayFollowTheAction) {
  // Before and after the action alike: the token file is read (and refused) either way.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"monitor", "127.0.0.1:1", "--auth-token-file", "/nonexistent", "status"},
           {"monitor", "127.0.0.1:1", "status", "--auth-token-file", "/nonexistent"},
           {"monitor", "127.0.0.1:1", "checkpoints", "--json", "--job", "j", "--auth-token-file",
            "/nonexistent"}}) {
    expect_bad_input(args, "--auth-token-file: cannot read '/nonexistent'");
  }
}

TEST_F(Cli, MonitorWithoutACoordinatorFailsClearly) {
  const CommandResult r = convoy({"monitor", "127.0.0.1:1", "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("cannot reach the coordinator at 127.0.0.1:1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace convoy
