// `convoy train --trace`: each rank's Chrome trace holds exactly the last --trace-steps steps, with
// every layer's forward and backward, the loss, the batch wait, the gradient finish and the
// optimizer on the training lane, in order and without overlap, and the buckets' all-reduce on the
// communication lane; timestamps on the wall clock, so that ranks' files line up.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

const std::vector<std::string> kLenet5Layers = {
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1", "relu3", "fc2", "relu4", "fc3"};

double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

// Checks one rank's trace; returns the names of the communication lane's spans.
std::vector<std::string> check_trace(const nlohmann::json& trace, int rank, int64_t first_step,
                                     int64_t last_step, double start_us, double end_us) {
  std::map<int64_t, std::vector<const nlohmann::json*>> train;  // by step, in order
  std::vector<std::string> communication;
  std::map<int64_t, int> buckets;  // all-reduces per step, on either lane
  std::set<std::string> lanes;
  for (const nlohmann::json& e : trace["traceEvents"]) {
    EXPECT_EQ(e["pid"], rank);
    if (e["ph"] == "M") {
      if (e["name"] == "thread_name") lanes.insert(e["args"]["name"].get<std::string>());
      continue;
    }
    EXPECT_EQ(e["ph"], "X");
    const int64_t step = e["args"]["step"];
    EXPECT_GE(step, first_step);
    EXPECT_LE(step, last_step);
    const double ts = e["ts"], dur = e["dur"];
    EXPECT_GE(ts, start_us);
    EXPECT_LE(ts + dur, end_us);
    EXPECT_GE(dur, 0);
    if (e["tid"] == 1) train[step].push_back(&e);
    if (e["tid"] == 2) communication.push_back(e["name"]);
    if (e["name"].get<std::string>().rfind("all-reduce bucket", 0) == 0) ++buckets[step];
  }
  EXPECT_EQ(lanes, (std::set<std::string>{"train", "communication"}));
  EXPECT_EQ(static_cast<int64_t>(train.size()), last_step - first_step + 1);
  // Every step reduces the same buckets, whichever thread takes each.
  std::set<int> per_step;
  for (const auto& [step, count] : buckets) per_step.insert(count);
  EXPECT_LE(per_step.size(), 1u);
  double previous_end = 0;
  for (const auto& [step, events] : train) {
    std::vector<std::string> names;
    for (const nlohmann::json* e : events) {
      names.push_back((*e)["name"]);
      // Buckets not handed to the communication thread are reduced inside the finish.
      if (names.back().rfind("all-reduce bucket", 0) == 0) continue;
      // One after another on the training thread (within the rounding of microseconds since
      // 1970 in a double: a quarter of one).
      EXPECT_GE((*e)["ts"].get<double>(), previous_end - 0.5) << (*e)["name"];
      previous_end = (*e)["ts"].get<double>() + (*e)["dur"].get<double>();
    }
    // Every layer forward once, in the order the model runs them (it may run a max pool before
    // the ReLU it commutes with), and backward in the reverse order.
    std::vector<std::string> forward;
    for (const std::string& n : names) {
      if (n.rfind("forward ", 0) == 0) forward.push_back(n.substr(8));
    }
    EXPECT_EQ(std::set<std::string>(forward.begin(), forward.end()),
              std::set<std::string>(kLenet5Layers.begin(), kLenet5Layers.end()));
    EXPECT_EQ(forward.size(), kLenet5Layers.size());
    std::vector<std::string> expected = {"wait for batch", "input"};
    for (const std::string& l : forward) expected.push_back("forward " + l);
    expected.push_back("loss");
    for (size_t i = forward.size(); i-- > 0;) expected.push_back("backward " + forward[i]);
    expected.push_back("finish gradients");
    std::vector<std::string> rest(names.begin(), names.end());
    std::erase_if(rest, [](const std::string& n) { return n.rfind("all-reduce bucket", 0) == 0; });
    expected.push_back("optimizer");
    EXPECT_EQ(rest, expected) << "step " << step;
  }
  return communication;
}

TEST(Timeline, EachRankKeepsItsLastStepsWithEveryLayerAndTheAllReduce) {
  testing::TempDir dir;
  const double start = now_us();
  // Small buckets: several, so that the communication thread reduces some during backward.
  const testing::CommandResult r =
      testing::run_command(testing::mpirun_convoy(2, {"train",
                                                      "--model",
                                                      "lenet5",
                                                      "--limit-train",
                                                      "3200",
                                                      "--limit-test",
                                                      "200",
                                                      "--epochs",
                                                      "1",
                                                      "--max-steps",
                                                      "12",
                                                      "--threads",
                                                      "1",
                                                      "--bucket-mb",
                                                      "0.02",
                                                      "--progress",
                                                      "none",
                                                      "--trace",
                                                      dir.file("trace.json"),
                                                      "--trace-steps",
                                                      "5"}),
                           300);
  const double end = now_us();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("trace.json")));
  for (int rank = 0; rank < 2; ++rank) {
    const nlohmann::json trace = read_json(dir.file(fmt::format("trace.rank{}.json", rank)));
    const std::vector<std::string> communication = check_trace(trace, rank, 8, 12, start, end);
    // lenet5 has 61,706 parameters: 0.02 MiB buckets make several; the communication thread
    // takes those complete during backward (how many depends on timing).
    EXPECT_GE(communication.size(), 1u) << "rank " << rank;
    for (const std::string& name : communication) {
      EXPECT_EQ(name.rfind("all-reduce bucket", 0), 0u) << name;
    }
  }
}

TEST(Timeline, OneProcessWritesTheFileNamedAndBadPathsAreRefused) {
  testing::TempDir dir;
  const testing::CommandResult r = testing::run_convoy(
      {"train", "--model", "lenet5", "--limit-train", "640", "--limit-test", "100", "--epochs", "1",
       "--progress", "none", "--trace", dir.file("t.json")},
      1, 300);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The 10 steps there are (640 / 64), all kept; no communication without other ranks.
  EXPECT_TRUE(check_trace(read_json(dir.file("t.json")), 0, 1, 10, 0, now_us()).empty());

  const testing::CommandResult missing = testing::run_convoy(
      {"train", "--model", "lenet5", "--trace", dir.file("no/such/dir/t.json")}, 1, 60);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--trace: directory"), std::string::npos) << missing.err;
  const testing::CommandResult zero = testing::run_convoy(
      {"train", "--model", "lenet5", "--trace", dir.file("t.json"), "--trace-steps", "0"}, 1, 60);
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("--trace-steps"), std::string::npos) << zero.err;
}

}  // namespace
}  // namespace convoy
