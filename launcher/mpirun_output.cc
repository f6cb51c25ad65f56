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
  if (partial.size() > kMaxLineBytes) {
    line(partial);
    partial.clear();
  }
}

void MpirunOutput::finish() {
  for (std::string& partial : partial_) {
    if (!partial.empty()) line(partial);
    partial.clear();
  }
  for (auto& [source, text] : rank_partial_) {
    if (!text.empty()) rank_text(source.first, source.second, "", true);
  }
}

void MpirunOutput::line(std::string_view text) {
  // Digits bounded: a rank fits an int, and libstdc++'s regex recurses once per repetition (an
  // unbounded run of digits in a 1 MiB line would overflow the stack). Found by fuzzing: a tag
  // of rank 22222222220 made std::stoi throw.
  static const std::regex tag(R"(\[\d{1,9},(\d{1,9})\]<(stdout|stderr)>:)");
  using Iterator = std::regex_iterator<std::string_view::const_iterator>;
  const Iterator end;
  Iterator it(text.begin(), text.end(), tag);
  if (it == end) {
    own_line(text);
    return;
  }
  if (it->position(0) > 0) own_line(text.substr(0, static_cast<size_t>(it->position(0))));
  while (it != end) {
    const int rank = std::stoi((*it)[1].str());
    const bool is_stdout = (*it)[2] == "stdout";
    const size_t from = static_cast<size_t>(it->position(0) + it->length(0));
    const Iterator next = std::next(it);
    const size_t to = next == end ? text.size() : static_cast<size_t>(next->position(0));
    rank_text(rank, is_stdout, text.substr(from, to - from), next == end);
    it = next;
  }
}

void MpirunOutput::rank_text(int rank, bool is_stdout, std::string_view text, bool ends_line) {
  std::string& partial = rank_partial_[{rank, is_stdout}];
  partial.append(text);
  if (!ends_line && partial.size() <= kMaxLineBytes) return;
  if (is_stdout && rank == 0) {
    out_(fmt::format("{}\n", partial));
  } else {
    (is_stdout ? out_ : err_)(fmt::format("[rank {}] {}\n", rank, partial));
  }
  partial.clear();
}

void MpirunOutput::own_line(std::string_view text) {
  // Ignored: the note mpirun prints when it forwards the launcher's SIGUSR1 to the ranks.
  if (text.rfind("mpirun: Forwarding signal", 0) == 0) return;
  if (own_.size() < kMaxOwnLines) own_.emplace_back(text);
  if (!failure_) read_failure(text);
}

// Open MPI 4's messages about a job that failed (orte/mca/errmgr, orte/tools/orterun help texts).
void MpirunOutput::read_failure(std::string_view text) {
  static const std::regex signalled(
      R"(process rank (\d{1,9}) with PID \d+ on node (\S+) exited on signal (\d+) \(([^)]*)\))");
  static const std::regex process_name(R"(Process name:\s*\[\[\d+,\d+\],(\d{1,9})\])");
  // mpirun's messages are short; a long line is not one of them (and the patterns' repetitions
  // recurse once per character).
  if (text.size() > kMaxMessageBytes) return;
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
