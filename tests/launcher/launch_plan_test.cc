// The mpirun line `convoy launch` builds, as a table of requests and the placement they need.
#include "launcher/launch_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "testing/error_of.h"

namespace convoy {
namespace {

using testing::error_of;

bool has(const std::vector<std::string>& argv, const std::string& word) {
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}

std::string after(const std::vector<std::string>& argv, const std::string& word) {
  const auto it = std::find(argv.begin(), argv.end(), word);
  return it != argv.end() && it + 1 != argv.end() ? *(it + 1) : "";
}

TEST(LaunchPlan, PlacementFollowsSlotsThreadsAndUser) {
  struct Case {
    std::vector<HostSlots> hosts;
    int ranks, threads, cores;
    bool root;
    std::string np, omp;
    bool oversubscribe, unbound, as_root;
  };
  const Case cases[] = {
      // One machine of 2 cores: 2 ranks of 1 thread, bound (Open MPI's default) and fitting.
      {{{"localhost", 2}}, 0, 0, 2, false, "2", "OMP_NUM_THREADS=1", false, false, false},
      // 1 rank on 8 cores: 8 threads, so not bound to one core.
      {{{"localhost", 8}}, 1, 0, 8, true, "1", "OMP_NUM_THREADS=8", false, true, true},
      // More ranks than slots: oversubscribe, and no more than one thread each.
      {{{"localhost", 2}}, 4, 0, 2, false, "4", "OMP_NUM_THREADS=1", true, false, false},
      // Two hosts of 4 slots, 8 ranks on this 8-core machine's count: 2 threads each.
      {{{"a", 4}, {"b", 4}}, 8, 0, 8, false, "8", "OMP_NUM_THREADS=2", false, true, false},
      // The user's thread count wins.
      {{{"localhost", 2}}, 2, 3, 2, false, "2", "OMP_NUM_THREADS=3", false, true, false},
  };
  for (const Case& c : cases) {
    LaunchRequest r;
    r.convoy = "/bin/convoy";
    r.hosts = c.hosts;
    r.ranks = c.ranks;
    r.threads = c.threads;
    r.cores = c.cores;
    r.root = c.root;
    r.command = {"train", "--model", "lenet5"};
    const std::vector<std::string> argv = mpirun_argv(r);
    const std::string line = ::testing::PrintToString(argv);
    EXPECT_EQ(argv[0], "mpirun");
    EXPECT_EQ(after(argv, "-np"), c.np) << line;
    EXPECT_EQ(after(argv, "-x"), c.omp) << line;
    EXPECT_EQ(has(argv, "--oversubscribe"), c.oversubscribe) << line;
    EXPECT_EQ(has(argv, "--bind-to") && after(argv, "--bind-to") == "none", c.unbound) << line;
    EXPECT_EQ(has(argv, "--allow-run-as-root"), c.as_root) << line;
    // The command follows the binary, and gets the thread count unless it has its own.
    const auto binary = std::find(argv.begin(), argv.end(), "/bin/convoy");
    ASSERT_NE(binary, argv.end());
    EXPECT_EQ(*(binary + 1), "train");
    EXPECT_EQ(after(argv, "--threads"), c.omp.substr(c.omp.find('=') + 1)) << line;
  }
}

TEST(LaunchPlan, HostfilesAsOpenMpiWritesThem) {
  const std::vector<HostSlots> hosts =
      parse_hostfile("# cluster\nnode-a slots=4\n\n  node-b   slots=2  # fast one\nnode-c\n", "hf");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].host, "node-a");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[1].slots, 2);
  EXPECT_EQ(hosts[2].slots, 1);
  EXPECT_EQ(error_of([] { parse_hostfile("a slots=0\n", "hf"); }),
            "'hf' line 1: expected 'host slots=N' (N from 1 to 4096), got 'slots=0'");
  EXPECT_EQ(error_of([] { parse_hostfile("a\nb cores=2\n", "hf"); }),
            "'hf' line 2: expected 'host slots=N' (N from 1 to 4096), got 'cores=2'");
  EXPECT_EQ(error_of([] { parse_hostfile("a slots=99999999999\n", "hf"); }),
            "'hf' line 1: expected 'host slots=N' (N from 1 to 4096), got 'slots=99999999999'");
  EXPECT_EQ(error_of([] { parse_hostfile("-np slots=2\n", "hf"); }),
            "'hf' line 1: '-np' is not a host name");
  // Open MPI's max_slots is accepted (and not used).
  EXPECT_EQ(parse_hostfile("a slots=2 max_slots=4\n", "hf")[0].slots, 2);
  EXPECT_EQ(error_of([] { parse_hostfile("# nothing\n\n", "hf"); }), "'hf' names no host");
}

TEST(LaunchPlan, DiscoveredHostsAsHorovodScriptsPrintThem) {
  const std::vector<HostSlots> hosts =
      parse_discovered_hosts("node-a:4\n\n# spare\nnode-b:2  \r\nnode-c\n", "script");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].host, "node-a");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[1].host, "node-b");
  EXPECT_EQ(hosts[1].slots, 2);
  EXPECT_EQ(hosts[2].slots, 1);
  EXPECT_EQ(total_slots(hosts), 7);
  EXPECT_EQ(error_of([] { parse_discovered_hosts("a:2\nb:x\n", "script"); }),
            "script line 2: expected 'host:slots' (slots from 1 to 4096), got 'b:x'");
  EXPECT_EQ(error_of([] { parse_discovered_hosts("a:0\n", "script"); }),
            "script line 1: expected 'host:slots' (slots from 1 to 4096), got 'a:0'");
  EXPECT_EQ(error_of([] { parse_discovered_hosts("two words:1\n", "script"); }),
            "script line 1: expected 'host:slots' (slots from 1 to 4096), got 'two words:1'");
  EXPECT_EQ(error_of([] { parse_discovered_hosts("a:99999999999\n", "script"); }),
            "script line 1: expected 'host:slots' (slots from 1 to 4096), got 'a:99999999999'");
  EXPECT_EQ(error_of([] { parse_discovered_hosts("\n# none\n", "script"); }),
            "script printed no host");

  // Discovered hosts go to mpirun as --host, with their slots.
  LaunchRequest r;
  r.hosts = hosts;
  r.list_hosts = true;
  r.tag_output = true;
  r.exports = {"A=1"};
  r.command = {"train", "--model", "lenet5"};
  const std::vector<std::string> argv = mpirun_argv(r);
  EXPECT_EQ(after(argv, "--host"), "node-a:4,node-b:2,node-c:1");
  EXPECT_EQ(after(argv, "-np"), "7");
  EXPECT_TRUE(has(argv, "--tag-output"));
  EXPECT_TRUE(has(argv, "A=1"));
}

TEST(LaunchPlan, TheCommandsOwnThreadCountDecidesPlacement) {
  LaunchRequest r;
  r.hosts = {{"localhost", 2}};
  r.ranks = 2;
  r.threads = 1;
  for (const auto& threads :
       std::vector<std::vector<std::string>>{{"--threads", "2"}, {"--threads=2"}}) {
    r.command = {"train", "--model", "lenet5"};
    r.command.insert(r.command.end(), threads.begin(), threads.end());
    const std::vector<std::string> argv = mpirun_argv(r);
    EXPECT_EQ(after(argv, "-x"), "OMP_NUM_THREADS=2");
    EXPECT_EQ(after(argv, "--bind-to"), "none");
    EXPECT_EQ(std::count(argv.begin(), argv.end(), "--threads"), threads.size() == 2 ? 1 : 0);
  }
}

TEST(LaunchPlan, OnlyTrainEvaluateAndBenchAreLaunched) {
  LaunchRequest r;
  r.hosts = {{"localhost", 2}};
  for (const auto& command : std::vector<std::vector<std::string>>{{}, {"models"}, {"launch"}}) {
    r.command = command;
    EXPECT_NE(error_of([&] { mpirun_argv(r); }).find("launch runs train, evaluate or bench"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace convoy
