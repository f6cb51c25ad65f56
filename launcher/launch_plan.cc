#include "launcher/launch_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "core/error.h"

namespace convoy {

std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source) {
  std::vector<HostSlots> hosts;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string host, word;
    if (!(words >> host)) continue;  // blank or comment
    HostSlots h{host, 1};
    while (words >> word) {
      const std::string key = "slots=";
      int slots = 0;
      const char* begin = word.data() + key.size();
      const char* end = word.data() + word.size();
      if (word.rfind(key, 0) != 0 || std::from_chars(begin, end, slots).ptr != end || slots < 1) {
        throw Error::invalid_input(fmt::format(
            "'{}' line {}: expected 'host slots=N' (N >= 1), got '{}'", source, number, word));
      }
      h.slots = slots;
    }
    hosts.push_back(h);
  }
  if (hosts.empty()) throw Error::invalid_input(fmt::format("'{}' names no host", source));
  return hosts;
}

std::vector<std::string> mpirun_argv(const LaunchRequest& request) {
  if (request.command.empty() ||
      (request.command[0] != "train" && request.command[0] != "evaluate" &&
       request.command[0] != "bench")) {
    throw Error::invalid_input(
        "launch runs train, evaluate or bench: convoy launch [options] -- train --model ...");
  }
  int slots = 0;
  for (const HostSlots& h : request.hosts) slots += h.slots;
  const int ranks = request.ranks > 0 ? request.ranks : slots;
  if (ranks < 1) throw Error::invalid_input("no ranks to start");
  // Ranks per host as Open MPI fills them (by slot); the busiest host decides the threads.
  const int hosts = std::max<int>(1, static_cast<int>(request.hosts.size()));
  const int per_host = (ranks + hosts - 1) / hosts;
  const int threads =
      request.threads > 0 ? request.threads : std::max(1, request.cores / std::max(1, per_host));
  std::vector<std::string> argv = {request.mpirun, "-np", std::to_string(ranks)};
  if (!request.hostfile.empty()) argv.insert(argv.end(), {"--hostfile", request.hostfile});
  if (ranks > slots) argv.push_back("--oversubscribe");
  if (threads > 1) argv.insert(argv.end(), {"--bind-to", "none"});
  if (request.root) argv.push_back("--allow-run-as-root");
  argv.insert(argv.end(), {"-x", fmt::format("OMP_NUM_THREADS={}", threads), request.convoy});
  argv.insert(argv.end(), request.command.begin(), request.command.end());
  // The ranks' own thread count, unless the command sets one.
  if (std::find(request.command.begin(), request.command.end(), "--threads") ==
      request.command.end()) {
    argv.insert(argv.end(), {"--threads", std::to_string(threads)});
  }
  return argv;
}

}  // namespace convoy
