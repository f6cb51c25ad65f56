// MpirunOutput: sorts what `mpirun --tag-output` prints while a job runs.
//
//   "[1,R]<stdout>:text"   rank R's stdout: rank 0's goes to the launcher's stdout unchanged (its
//                          report and JSON lines), other ranks' as "[rank R] text"
//   "[1,R]<stderr>:text"   rank R's stderr: to the launcher's stderr as "[rank R] text"
//   anything else          mpirun's own messages (multi-line banners about a failed rank): kept,
//                          not printed, and read for the failure they report -- the launcher says
//                          it in one line instead
// Bytes arrive in arbitrary pieces from the two pipes. mpirun tags every piece a rank wrote, also
// one that continues a line (a progress bar's partial writes): a tag in the middle of mpirun's line
// switches to that rank's text, and each rank's lines are put together on their own.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace convoy {

struct RankFailure {
  int rank = -1;      // -1: no single rank (a lost host, an mpirun failure)
  std::string host;   // empty when mpirun did not say
  std::string cause;  // "killed by signal 9 (Killed)", "exited with code 1", "lost host b"
};

class MpirunOutput {
 public:
  using Write = std::function<void(std::string_view line)>;  // a whole line, ending in '\n'
  MpirunOutput(Write out, Write err) : out_(std::move(out)), err_(std::move(err)) {}

  // `pipe`: 0 for mpirun's stdout, 1 for its stderr.
  void feed(int pipe, std::string_view bytes);
  // The end of both pipes: a last line without '\n' is taken as a line.
  void finish();

  // The first failure mpirun's own messages describe, if any.
  const std::optional<RankFailure>& failure() const { return failure_; }
  // mpirun's own lines (at most kMaxOwnLines: the first ones), to show when no failure was
  // recognised in them.
  static constexpr size_t kMaxOwnLines = 200;
  const std::vector<std::string>& own_lines() const { return own_; }

 private:
  void line(std::string_view text);
  void rank_text(int rank, bool is_stdout, std::string_view text, bool ends_line);
  void own_line(std::string_view text);
  void read_failure(std::string_view text);

  static constexpr size_t kMaxLineBytes = size_t{1} << 20;  // longer lines are cut here
  static constexpr size_t kMaxMessageBytes = 4096;  // longer lines are not read for failures
  Write out_, err_;
  std::string partial_[2];
  std::map<std::pair<int, bool>, std::string> rank_partial_;  // (rank, stdout?) -> unfinished
  std::vector<std::string> own_;
  std::optional<RankFailure> failure_;
  int exited_rank_ = -1;  // "Process name: [[J,1],R]" seen; "Exit code: C" follows
};

}  // namespace convoy
