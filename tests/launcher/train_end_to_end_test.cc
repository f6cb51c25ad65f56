// End to end on the real Fashion-MNIST data: lenet5 trained on a few thousand images for two
// epochs must reach an accuracy that a broken gradient cannot (chance is 0.10); the checkpoint it
// saves must evaluate to the same accuracy, export to NumPy, and a second run with the same seed
// must end with the same loss. A run with an average of the weights reports, evaluates and exports
// the average.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/checkpoint.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::CommandResult;
using testing::last_json_line;

constexpr const char* kData = testing::kFashionMnistDir;

const testing::ConvoyRunner convoy{.threads = 2};

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kData))
        << kData << " is missing: deploy/install-deps.sh installs dataset-fashion-mnist";
  }
  testing::TempDir dir_;
};

TEST_F(EndToEnd, Lenet5LearnsFashionMnist) {
  const std::string ckpt = dir_.file("lenet5.ckpt");
  const CommandResult r =
      convoy({"train", "--model", "lenet5", "--limit-train", "4000", "--limit-test", "2000",
              "--epochs", "2", "--threads", "2", "--log-json", "--save", ckpt});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json final = last_json_line(r.out);
  ASSERT_EQ(final["event"], "final") << r.out;
  const double accuracy = final["test_accuracy"];
  EXPECT_GT(accuracy, 0.70) << r.out;
  EXPECT_EQ(final["steps"], 2 * (4000 / 64));
  EXPECT_EQ(final["epochs"], 2);
  EXPECT_EQ(final["precision"].size(), 10u);
  EXPECT_EQ(final["recall"].size(), 10u);
  EXPECT_EQ(final["f1"].size(), 10u);
  EXPECT_GT(final["train_images_per_second"].get<double>(), 0.0);
  // Every stdout line is JSON: start, steps, epochs, final.
  std::istringstream lines(r.out);
  std::string line;
  int events = 0;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << line;
    ++events;
  }
  EXPECT_GE(events, 4);

  // The saved checkpoint evaluates to the same accuracy (different batch size, same model).
  const CommandResult e = convoy(
      {"evaluate", "--checkpoint", ckpt, "--limit-test", "2000", "--threads", "2", "--log-json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const nlohmann::json eval = last_json_line(e.out);
  EXPECT_NEAR(eval["test_accuracy"].get<double>(), accuracy, 1.0 / 2000);
  EXPECT_NEAR(eval["test_loss"].get<double>(), final["test_loss"].get<double>(), 1e-4);

  // Export, read back by NumPy.
  const std::string npz = dir_.file("lenet5.npz");
  const CommandResult x = convoy({"export", "--checkpoint", ckpt, "--out", npz});
  ASSERT_EQ(x.exit_code, 0) << x.err;
  if (testing::run_command({"/usr/bin/python3", "-c", "import numpy"}).exit_code == 0) {
    const CommandResult py = testing::run_command(
        {"/usr/bin/python3", "-c",
         "import numpy as np, sys\n"
         "z = np.load(sys.argv[1])\n"
         "shapes = {k: z[k].shape for k in z.files}\n"
         "assert shapes['conv1.weight'] == (6, 1, 5, 5), shapes\n"
         "assert shapes['conv2.weight'] == (16, 6, 5, 5), shapes\n"
         "assert shapes['fc1.weight'] == (120, 16, 5, 5), shapes\n"
         "assert shapes['fc3.bias'] == (10,), shapes\n"
         "assert len(z.files) == 10, z.files\n"
         "assert all(np.isfinite(z[k]).all() and z[k].dtype == np.float32 for k in z.files)\n"
         "print(sum(z[k].size for k in z.files))\n",
         npz});
    EXPECT_EQ(py.exit_code, 0) << py.err;
    EXPECT_EQ(py.out, "61706\n");  // lenet5's parameter count
  }
}

// With --ema-decay the run reports on the average of the weights, and its checkpoint evaluates
// and exports the average: without it the same checkpoint evaluates otherwise.
TEST_F(EndToEnd, TheAverageOfTheWeightsIsWhatIsReportedEvaluatedAndExported) {
  const std::string ckpt = dir_.file("ema.ckpt");
  const CommandResult r = convoy({"train", "--model", "lenet5", "--limit-train", "2000",
                                  "--limit-test", "1000", "--epochs", "2", "--ema-decay", "0.98",
                                  "--threads", "2", "--log-json", "--save", ckpt});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json final = last_json_line(r.out);
  const pb::Checkpoint checkpoint = load_checkpoint(ckpt);
  ASSERT_EQ(checkpoint.average().parameter_size(), checkpoint.parameter_size());
  EXPECT_EQ(checkpoint.average().updates(), checkpoint.step());

  const auto evaluate = [&](const std::string& path) {
    const CommandResult e = convoy(
        {"evaluate", "--checkpoint", path, "--limit-test", "1000", "--threads", "2", "--log-json"});
    EXPECT_EQ(e.exit_code, 0) << e.err;
    return last_json_line(e.out);
  };
  const nlohmann::json averaged = evaluate(ckpt);
  EXPECT_NEAR(averaged["test_loss"].get<double>(), final["test_loss"].get<double>(), 1e-4);
  EXPECT_NEAR(averaged["test_accuracy"].get<double>(), final["test_accuracy"].get<double>(),
              1.0 / 1000);
  pb::Checkpoint own = checkpoint;
  own.clear_average();
  save_checkpoint(own, dir_.file("own.ckpt"));
  EXPECT_GT(std::abs(evaluate(dir_.file("own.ckpt"))["test_loss"].get<double>() -
                     final["test_loss"].get<double>()),
            1e-4)
      << "the model's own weights evaluate as the average does: the comparison cannot fail";

  const std::string npz = dir_.file("ema.npz");
  ASSERT_EQ(convoy({"export", "--checkpoint", ckpt, "--out", npz}).exit_code, 0);
  {  // numpy is a dependency (deploy/install-deps.sh)
    // fc3.bias (the last parameter): the average's values, not the weights'.
    const pb::TensorData& bias = checkpoint.average().parameter(checkpoint.parameter_size() - 1);
    const pb::TensorData& own_bias = checkpoint.parameter(checkpoint.parameter_size() - 1);
    std::string average_values, own_values;
    for (const float v : bias.data()) average_values += fmt::format("{:.9g},", v);
    for (const float v : own_bias.data()) own_values += fmt::format("{:.9g},", v);
    const CommandResult py = testing::run_command(
        {"/usr/bin/python3", "-c",
         "import numpy as np, sys\n"
         "z = np.load(sys.argv[1])['fc3.bias']\n"
         "want = np.array([float(v) for v in sys.argv[2].rstrip(',').split(',')], np.float32)\n"
         "other = np.array([float(v) for v in sys.argv[3].rstrip(',').split(',')], np.float32)\n"
         "assert np.array_equal(z, want), (z, want)\n"
         "assert not np.array_equal(z, other)\n",
         npz, average_values, own_values});
    EXPECT_EQ(py.exit_code, 0) << py.err;
  }
}

TEST_F(EndToEnd, SameSeedSameResult) {
  auto run = [&] {
    const CommandResult r =
        convoy({"train", "--model", "lenet5", "--limit-train", "2000", "--limit-test", "500",
                "--max-steps", "20", "--threads", "2", "--seed", "9", "--log-json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return last_json_line(r.out);
  };
  const nlohmann::json a = run(), b = run();
  EXPECT_EQ(a["test_loss"], b["test_loss"]);
  EXPECT_EQ(a["confusion_matrix"], b["confusion_matrix"]);
}

}  // namespace
}  // namespace convoy
