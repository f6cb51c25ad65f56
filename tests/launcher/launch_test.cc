// convoy launch keeps a job going: ranks killed at random moments, a rank that hangs, a SIGTERM
// to the launcher and a host lost for good. Each job must end by itself, and end where an
// uninterrupted run of the same command ends: bitwise (same ranks), or within 1e-5 (fewer ranks,
// same global batch). No assertion depends on timing: the test acts when the job's own progress
// lines say it has reached a step.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "core/checkpoint.h"
#include "testing/idx_files.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::ChildProcess;
using testing::CommandResult;
using testing::TempDir;

constexpr int kStepsPerEpoch = 150;  // 4800 samples, global batch 32
// 4 epochs: the last moment a test acts at (step 400) stays 200 steps before the end, so that no
// CPU is fast enough to finish before the action lands.
constexpr int kEpochs = 4;
constexpr int kSteps = kEpochs * kStepsPerEpoch;
// --hang-timeout of the tests that stop a rank: short, so that they finish soon; under
// AddressSanitizer, where a rank starts and steps several times slower on a busy machine, long
// enough that no healthy rank is taken for a hung one.
#if defined(CONVOY_ASAN)
constexpr int kHangTimeout = 15;
#else
constexpr int kHangTimeout = 4;
#endif

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The ranks of the job a launcher runs: rank -> pid, from its descendants' environments.
std::map<int, int> rank_pids(int launcher) {
  std::map<int, int> ranks;
  std::vector<int> tree = {launcher};
  for (size_t i = 0; i < tree.size(); ++i) {
    for (const int child : testing::child_pids(tree[i])) tree.push_back(child);
    const std::string cmdline = slurp(fmt::format("/proc/{}/cmdline", tree[i]));
    if (cmdline.find(std::string("train\0", 6)) == std::string::npos) continue;
    const std::string environ = slurp(fmt::format("/proc/{}/environ", tree[i]));
    const std::string key = std::string("\0OMPI_COMM_WORLD_RANK=", 22);
    const size_t at = environ.find(key);
    if (at != std::string::npos) ranks[std::stoi(environ.substr(at + key.size()))] = tree[i];
  }
  return ranks;
}

class Launch : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_mnist_dir(data_.path(), 4800, 200);
    seed_ = std::random_device{}();
    rng_.seed(seed_);
    std::cerr << "random seed " << seed_ << "\n";
  }

  std::vector<std::string> command(const std::string& state, const std::string& save,
                                   std::vector<std::string> launch_flags) {
    std::vector<std::string> args = {
        testing::convoy_binary(), "launch", "--state-dir", state, "--backoff", "0.2"};
    args.insert(args.end(), launch_flags.begin(), launch_flags.end());
    args.insert(args.end(),
                {"--", "train", "--model", "lenet5", "--data", data_.path(), "--epochs",
                 std::to_string(kEpochs), "--global-batch-size", "32", "--checkpoint-every", "25",
                 "--lr", "0.02", "--log-json", "--progress", "none", "--save", save});
    return args;
  }

  // The uninterrupted run every interrupted one is compared with.
  std::string reference() {
    const std::string save = work_.file("reference.ckpt");
    const CommandResult r = testing::run_command(
        command(work_.file("reference-state"), save, {"-np", "2"}), 300, {"OMP_NUM_THREADS=1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return save;
  }

  // Waits until the job's stdout has a step event at `step` or later; false after 120 s.
  bool reach(int step) {
    static const std::regex event(R"re("event":"step".*"step":(\d+))re");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = slurp(work_.file("out"));
      for (std::sregex_iterator it(out.begin(), out.end(), event), end; it != end; ++it) {
        if (std::stoi((*it)[1].str()) >= step) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // A step at which to act, among the progress events (every 50 steps) in [low, high].
  int pick_step(int low, int high) {
    return std::uniform_int_distribution<int>(low / 50, high / 50)(rng_) * 50;
  }
  void jitter() {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 20)(rng_)));
  }
  int pick_rank() { return std::uniform_int_distribution<int>(0, 1)(rng_); }

  std::unique_ptr<ChildProcess> start(const std::vector<std::string>& argv) {
    return std::make_unique<ChildProcess>(argv, work_.file("out"), work_.file("err"),
                                          std::vector<std::string>{"OMP_NUM_THREADS=1"});
  }

  TempDir data_, work_;
  unsigned seed_ = 0;
  std::mt19937 rng_;
};

bool same_bytes(const std::string& a, const std::string& b) {
  return !slurp(a).empty() && slurp(a) == slurp(b);
}

TEST_F(Launch, RanksKilledThreeTimesFinishBitwiseEqualToAnUninterruptedRun) {
  const std::string expected = reference();
  const std::string save = work_.file("chaos.ckpt");
  const auto launcher =
      start(command(work_.file("state"), save, {"-np", "2", "--max-restarts", "5"}));
  const int moments[] = {pick_step(50, 100), pick_step(200, 250), pick_step(350, 400)};
  for (const int step : moments) {
    ASSERT_TRUE(reach(step)) << slurp(work_.file("err"));
    jitter();
    const std::map<int, int> ranks = rank_pids(launcher->pid());
    ASSERT_EQ(ranks.size(), 2u) << slurp(work_.file("err"));
    const int victim = pick_rank();
    std::cerr << "SIGKILL to rank " << victim << " at step " << step << "\n";
    ::kill(ranks.at(victim), SIGKILL);
  }
  ASSERT_TRUE(launcher->wait_for(300));
  const std::string err = slurp(work_.file("err"));
  EXPECT_EQ(launcher->exit_code(), 0) << err;
  EXPECT_NE(err.find("restart 3 of 5"), std::string::npos) << err;
  EXPECT_NE(err.find("killed by signal 9 (Killed)"), std::string::npos) << err;
  EXPECT_EQ(load_checkpoint(save).step(), kSteps);
  EXPECT_TRUE(same_bytes(save, expected));
}

TEST_F(Launch, AStoppedRankIsTracedKilledAndTheJobFinishesBitwiseEqual) {
  const std::string expected = reference();
  const std::string save = work_.file("hang.ckpt");
  const auto launcher = start(command(
      work_.file("state"), save, {"-np", "2", "--hang-timeout", std::to_string(kHangTimeout)}));
  ASSERT_TRUE(reach(pick_step(100, 300)));
  jitter();
  const int victim = pick_rank();
  ::kill(rank_pids(launcher->pid()).at(victim), SIGSTOP);
  ASSERT_TRUE(launcher->wait_for(300));
  const std::string err = slurp(work_.file("err"));
  EXPECT_EQ(launcher->exit_code(), 0) << err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      err, m,
      std::regex(fmt::format("rank {} on \\S+ hung: no heartbeat for over {} s; stack "
                             "traces in (\\S+); restart 1 of 3",
                             victim, kHangTimeout))))
      << err;
  const std::string traces =
      slurp(work_.file("state") + "/" + std::filesystem::path(m[1].str()).filename().string());
  EXPECT_NE(traces.find("Thread 1 "), std::string::npos) << traces;  // gdb's backtraces
  EXPECT_NE(traces.find("convoy::"), std::string::npos) << traces;
  EXPECT_TRUE(same_bytes(save, expected));
}

TEST_F(Launch, SigtermStopsAtAStepWithACheckpointAndARelaunchContinuesExactly) {
  const std::string expected = reference();
  const std::string save = work_.file("term.ckpt");
  const std::vector<std::string> argv = command(work_.file("state"), save, {"-np", "2"});
  {
    const auto launcher = start(argv);
    ASSERT_TRUE(reach(pick_step(100, 300)));
    jitter();
    ::kill(launcher->pid(), SIGTERM);
    ASSERT_TRUE(launcher->wait_for(60));
    const std::string err = slurp(work_.file("err"));
    EXPECT_EQ(launcher->exit_code(), 143) << err;
    EXPECT_NE(err.find("convoy: stopped by a signal after step"), std::string::npos) << err;
    EXPECT_FALSE(std::filesystem::exists(save));  // not finished: no final checkpoint
  }
  const CommandResult again = testing::run_command(argv, 300, {"OMP_NUM_THREADS=1"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming job 'lenet5'"), std::string::npos) << again.err;
  EXPECT_TRUE(same_bytes(save, expected));
}

TEST_F(Launch, AHostLostForGoodContinuesOnFewerRanksWithinTolerance) {
  const std::string expected = reference();
  const std::string save = work_.file("elastic.ckpt");
  const std::string hosts = work_.write("hosts", "localhost:2\n");
  const auto launcher = start(command(
      work_.file("state"), save, {"--host-discovery-script", "cat " + hosts, "--min-np", "1"}));
  ASSERT_TRUE(reach(pick_step(100, 300)));
  jitter();
  work_.write("hosts", "localhost:1\n");
  ::kill(rank_pids(launcher->pid()).at(1), SIGKILL);
  ASSERT_TRUE(launcher->wait_for(300));
  const std::string err = slurp(work_.file("err"));
  EXPECT_EQ(launcher->exit_code(), 0) << err;
  EXPECT_NE(err.find("mpirun -np 1 --host localhost:1"), std::string::npos) << err;
  const pb::Checkpoint got = load_checkpoint(save), want = load_checkpoint(expected);
  EXPECT_EQ(got.step(), kSteps);
  ASSERT_EQ(got.parameter_size(), want.parameter_size());
  for (int p = 0; p < got.parameter_size(); ++p) {
    const auto& a = got.parameter(p).data();
    const auto& b = want.parameter(p).data();
    ASSERT_EQ(a.size(), b.size());
    double diff = 0, scale = 0;
    for (int i = 0; i < a.size(); ++i) {
      diff = std::max(diff, double(std::fabs(a[i] - b[i])));
      scale = std::max(scale, double(std::fabs(b[i])));
    }
    EXPECT_LE(diff / scale, 1e-5) << got.parameter(p).name();
  }
}

// A rank stopped before it registers with the coordinator (while starting) is found all the same.
TEST_F(Launch, ARankStuckWhileStartingIsFound) {
  const auto launcher = start(
      command(work_.file("state"), work_.file("x.ckpt"),
              {"-np", "2", "--hang-timeout", std::to_string(kHangTimeout), "--max-restarts", "1"}));
  std::map<int, int> ranks;
  for (int i = 0; i < 20000 && ranks.size() < 2; ++i) {
    ranks = rank_pids(launcher->pid());
    if (ranks.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(ranks.at(1), SIGSTOP);
  ASSERT_TRUE(launcher->wait_for(300));
  const std::string err = slurp(work_.file("err"));
  EXPECT_EQ(launcher->exit_code(), 0) << err;
  // Rank 0 waits for rank 1 before registering too: both count as stuck.
  EXPECT_NE(err.find(fmt::format("hung: not registered with the coordinator {} s after the start",
                                 kHangTimeout)),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("restart 1 of 1"), std::string::npos) << err;
}

// A discovery script that fails at a restart is a failed start, retried after the backoff.
TEST_F(Launch, ADiscoveryScriptFailingAtARestartIsRetried) {
  // Hosts on the first call, a failure on the second, hosts again after that.
  const std::string count = work_.file("calls");
  const std::string script = fmt::format(
      "n=$(cat {0} 2>/dev/null || echo 0); echo $((n + 1)) > {0}; "
      "if [ \"$n\" = 1 ]; then echo 'no hosts today' >&2; exit 1; fi; echo localhost:2",
      count);
  const auto launcher = start(
      command(work_.file("state"), work_.file("x.ckpt"), {"--host-discovery-script", script}));
  ASSERT_TRUE(reach(pick_step(50, 300)));
  ::kill(rank_pids(launcher->pid()).at(pick_rank()), SIGKILL);
  ASSERT_TRUE(launcher->wait_for(300));
  const std::string err = slurp(work_.file("err"));
  EXPECT_EQ(launcher->exit_code(), 0) << err;
  EXPECT_NE(err.find("could not start: --host-discovery-script: "), std::string::npos) << err;
  EXPECT_NE(err.find("exited with code 1: no hosts today; restart 2 of 3"), std::string::npos)
      << err;
  EXPECT_EQ(load_checkpoint(work_.file("x.ckpt")).step(), kSteps);
}

// A launcher killed outright (SIGKILL: no chance to clean up) takes its job with it.
TEST_F(Launch, NoRankOutlivesAKilledLauncher) {
  const auto launcher = start(command(work_.file("state"), work_.file("x.ckpt"), {"-np", "2"}));
  ASSERT_TRUE(reach(50));
  const std::map<int, int> ranks = rank_pids(launcher->pid());
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(launcher->pid(), SIGKILL);
  ASSERT_TRUE(launcher->wait_for(10));
  const auto alive = [](int pid) {
    const std::string stat = slurp(fmt::format("/proc/{}/stat", pid));
    return !stat.empty() && stat.find(") Z") == std::string::npos;  // zombies are gone
  };
  for (int i = 0; i < 3000 && (alive(ranks.at(0)) || alive(ranks.at(1))); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(alive(ranks.at(0)));
  EXPECT_FALSE(alive(ranks.at(1)));
}

// With a coordinator of its own (--coordinator), the launcher records each restart there, and
// `convoy monitor status` shows the count and the cause.
TEST_F(Launch, RestartsAreRecordedAtTheCoordinator) {
  const std::string address = "127.0.0.1:" + std::to_string(testing::free_port());
  ChildProcess coordinator({testing::convoy_binary(), "coordinator", "--listen", address,
                            "--state-dir", work_.file("coordinator")},
                           work_.file("coordinator.out"), work_.file("coordinator.err"));
  for (int i = 0; i < 400 && slurp(work_.file("coordinator.out")).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(slurp(work_.file("coordinator.out")).find("listening"), std::string::npos);
  const auto launcher = start(command(work_.file("state"), work_.file("final.ckpt"),
                                      {"-np", "2", "--coordinator", address}));
  ASSERT_TRUE(reach(pick_step(50, 300)));
  jitter();
  const int victim = pick_rank();
  ::kill(rank_pids(launcher->pid()).at(victim), SIGKILL);
  ASSERT_TRUE(launcher->wait_for(300));
  EXPECT_EQ(launcher->exit_code(), 0) << slurp(work_.file("err"));
  EXPECT_FALSE(std::filesystem::exists(work_.file("state")));  // no embedded coordinator
  const CommandResult status =
      testing::run_convoy({"monitor", address, "--job", "lenet5", "status"}, 1, 60);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find(fmt::format("restarts: 1 (latest: rank {} on ", victim)),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find("killed by signal 9 (Killed))"), std::string::npos) << status.out;
}

}  // namespace
}  // namespace convoy
