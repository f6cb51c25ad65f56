#include "launcher/mpirun_output.h"

#include <fmt/format.h>

#include <regex>

namespace convoy {

void MpirunOutput::feed(int pipe, std::string_view bytes) {
  std::string& partial = partial_[pipe != 0 ? 1 : 0];
  partial.append(bytes);
  size_t start = 0;
  for (size_t end; (end = partial.find('\n', start)) != std::string::npos; start = end + 1) {
    line(std::string_view(partial).substr(start, end - start));
  }
  partial.erase(0, start);
}

void MpirunOutput::finish() {
  for (std::string& partial : partial_) {
    if (!partial.empty()) line(partial);
    partial.clear();
  }
}

void MpirunOutput::line(std::string_view text) {
  static const std::regex tagged(R"(^\[\d+,(\d+)\]<(stdout|stderr)>:)");
  std::cmatch m;
  if (std::regex_search(text.data(), text.data() + text.size(), m, tagged)) {
    const int rank = std::stoi(m[1].str());
    const std::string_view rest = text.substr(static_cast<size_t>(m.length(0)));
    if (m[2] == "stdout" && rank == 0) {
      out_(fmt::format("{}\n", rest));
    } else {
      (m[2] == "stdout" ? out_ : err_)(fmt::format("[rank {}] {}\n", rank, rest));
    }
    return;
  }
  // Ignored: the note mpirun prints when it forwards the launcher's SIGUSR1 to the ranks.
  if (text.rfind("mpirun: Forwarding signal", 0) == 0) return;
  if (own_.size() < kMaxOwnLines) own_.emplace_back(text);
  if (!failure_) read_failure(text);
}

// Open MPI 4's messages about a job that failed (orte/mca/errmgr, orte/tools/orterun help texts).
void MpirunOutput::read_failure(std::string_view text) {
  static const std::regex signalled(
      R"(process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+) \(([^)]*)\))");
  static const std::regex process_name(R"(Process name:\s*\[\[\d+,\d+\],(\d+)\])");
  static const std::regex exit_code(R"(Exit code:\s*(\d+))");
  static const std::regex lost_daemon(R"(Remote daemon:\s*\S+ on node (\S+))");
  const std::string s(text);
  std::smatch m;
  if (std::regex_search(s, m, signalled)) {
    failure_ = RankFailure{std::stoi(m[1].str()), m[2].str(),
                           fmt::format("killed by signal {} ({})", m[3].str(), m[4].str())};
  } else if (std::regex_search(s, m, process_name)) {
    exited_rank_ = std::stoi(m[1].str());
  } else if (exited_rank_ >= 0 && std::regex_search(s, m, exit_code)) {
    failure_ = RankFailure{exited_rank_, "", fmt::format("exited with code {}", m[1].str())};
  } else if (std::regex_search(s, m, lost_daemon)) {
    failure_ = RankFailure{-1, m[1].str(), fmt::format("lost contact with host {}", m[1].str())};
  }
}

}  // namespace convoy
