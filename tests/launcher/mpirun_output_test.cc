// How `convoy launch` sorts mpirun's output: ranks' lines, and mpirun's own reports of a failure,
// taken from what Open MPI 4 prints (recorded from real runs).
#include "launcher/mpirun_output.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

struct Sorted {
  std::string out, err;
  MpirunOutput output{[this](std::string_view l) { out += l; },
                      [this](std::string_view l) { err += l; }};
};

TEST(MpirunOutput, RankZerosStdoutIsUnchangedAndEveryOtherLineSaysItsRank) {
  Sorted s;
  // Pieces split mid-line and across the two pipes.
  s.output.feed(0, "[1,0]<stdout>:{\"event\":\"st");
  s.output.feed(1, "[1,1]<stderr>:convoy: rank 1: coordinator away\n[1,0]<std");
  s.output.feed(0, "ep\"}\n[1,1]<stdout>:hello\n");
  s.output.feed(1, "err>:convoy: training\n");
  s.output.feed(0, "[1,0]<stdout>:last line without newline");
  s.output.finish();
  EXPECT_EQ(s.out, "{\"event\":\"step\"}\n[rank 1] hello\nlast line without newline\n");
  EXPECT_EQ(s.err, "[rank 1] convoy: rank 1: coordinator away\n[rank 0] convoy: training\n");
  EXPECT_TRUE(s.output.own_lines().empty());
  EXPECT_FALSE(s.output.failure());
}

// mpirun tags every piece a rank writes: a line written in pieces (a progress bar) carries tags in
// its middle, possibly with another rank's piece in between.
TEST(MpirunOutput, LinesWrittenInPiecesArePutTogetherPerRank) {
  Sorted s;
  s.output.feed(1, "[1,0]<stderr>:epoch 1: 10%[1,1]<stderr>:rank 1 says hi\n");
  s.output.feed(1, "[1,0]<stderr>: 20%[1,0]<stderr>: done\n");
  s.output.feed(0, "[1,0]<stdout>:{\"a\":[1,0]<stdout>:1}\n");
  s.output.finish();
  EXPECT_EQ(s.err, "[rank 1] rank 1 says hi\n[rank 0] epoch 1: 10% 20% done\n");
  EXPECT_EQ(s.out, "{\"a\":1}\n");
}

TEST(MpirunOutput, AKilledRankIsOneFailureWithRankHostAndSignal) {
  Sorted s;
  s.output.feed(1,
                "--------------------------------------------------------------------------\n"
                "Primary job  terminated normally, but 1 process returned\n"
                "a non-zero exit code. Per user-direction, the job has been aborted.\n"
                "--------------------------------------------------------------------------\n"
                "mpirun: Forwarding signal 10 to job\n"
                "mpirun noticed that process rank 1 with PID 0 on node node-b exited on signal 9 "
                "(Killed).\n");
  s.output.finish();
  ASSERT_TRUE(s.output.failure());
  EXPECT_EQ(s.output.failure()->rank, 1);
  EXPECT_EQ(s.output.failure()->host, "node-b");
  EXPECT_EQ(s.output.failure()->cause, "killed by signal 9 (Killed)");
  EXPECT_EQ(s.out + s.err, "");                // mpirun's banner is not printed
  EXPECT_EQ(s.output.own_lines().size(), 5u);  // kept, without the forwarding note
}

TEST(MpirunOutput, ARankThatExitedWithAnErrorCode) {
  Sorted s;
  s.output.feed(1,
                "mpirun detected that one or more processes exited with non-zero status, thus "
                "causing\nthe job to be terminated. The first process to do so was:\n\n"
                "  Process name: [[13031,1],3]\n  Exit code:    1\n");
  ASSERT_TRUE(s.output.failure());
  EXPECT_EQ(s.output.failure()->rank, 3);
  EXPECT_EQ(s.output.failure()->cause, "exited with code 1");
}

TEST(MpirunOutput, ALostHost) {
  Sorted s;
  s.output.feed(1,
                "ORTE has lost communication with a remote daemon.\n\n"
                "  HNP daemon   : [[40000,0],0] on node node-a\n"
                "  Remote daemon: [[40000,0],1] on node node-b\n");
  ASSERT_TRUE(s.output.failure());
  EXPECT_EQ(s.output.failure()->rank, -1);
  EXPECT_EQ(s.output.failure()->cause, "lost contact with host node-b");
}

TEST(MpirunOutput, UnrecognisedMessagesAreKeptToBeShown) {
  Sorted s;
  s.output.feed(1, "There are not enough slots available in the system\n");
  EXPECT_FALSE(s.output.failure());
  ASSERT_EQ(s.output.own_lines().size(), 1u);
  for (int i = 0; i < 1000; ++i) s.output.feed(1, "more\n");
  EXPECT_EQ(s.output.own_lines().size(), MpirunOutput::kMaxOwnLines);
}

}  // namespace
}  // namespace convoy
