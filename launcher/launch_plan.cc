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

std::vector<HostSlots> parse_discovered_hosts(const std::string& text, const std::string& source) {
  std::vector<HostSlots> hosts;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    line = line.substr(0, line.find('#'));
    const size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;
    line = line.substr(begin, line.find_last_not_of(" \t\r") + 1 - begin);
    const size_t colon = line.find(':');
    HostSlots h{line.substr(0, colon), 1};
    const bool name_ok = !h.host.empty() && h.host.size() <= 255 &&
                         h.host.find_first_of(" \t,=") == std::string::npos;
    bool slots_ok = true;
    if (colon != std::string::npos) {
      const char* first = line.data() + colon + 1;
      const char* last = line.data() + line.size();
      slots_ok = std::from_chars(first, last, h.slots).ptr == last && first != last && h.slots >= 1;
    }
    if (!name_ok || !slots_ok) {
      throw Error::invalid_input(
          fmt::format("{} line {}: expected 'host:slots' (slots >= 1), got '{}'", source, number,
                      line.substr(0, 80)));
    }
    hosts.push_back(h);
  }
  if (hosts.empty()) throw Error::invalid_input(fmt::format("{} printed no host", source));
  return hosts;
}

int total_slots(const std::vector<HostSlots>& hosts) {
  int slots = 0;
  for (const HostSlots& h : hosts) slots += h.slots;
  return slots;
}

std::vector<std::string> mpirun_argv(const LaunchRequest& request) {
  if (request.command.empty() ||
      (request.command[0] != "train" && request.command[0] != "evaluate" &&
       request.command[0] != "bench")) {
    throw Error::invalid_input(
        "launch runs train, evaluate or bench: convoy launch [options] -- train --model ...");
  }
  const int slots = total_slots(request.hosts);
  const int ranks = request.ranks > 0 ? request.ranks : slots;
  if (ranks < 1) throw Error::invalid_input("no ranks to start");
  // Ranks per host as Open MPI fills them (by slot); the busiest host decides the threads.
  const int hosts = std::max<int>(1, static_cast<int>(request.hosts.size()));
  const int per_host = (ranks + hosts - 1) / hosts;
  const int threads =
      request.threads > 0 ? request.threads : std::max(1, request.cores / std::max(1, per_host));
  std::vector<std::string> argv = {request.mpirun, "-np", std::to_string(ranks)};
  if (!request.hostfile.empty()) {
    argv.insert(argv.end(), {"--hostfile", request.hostfile});
  } else if (request.list_hosts) {
    std::string list;
    for (const HostSlots& h : request.hosts) {
      list += fmt::format("{}{}:{}", list.empty() ? "" : ",", h.host, h.slots);
    }
    argv.insert(argv.end(), {"--host", list});
  }
  if (ranks > slots) argv.push_back("--oversubscribe");
  if (threads > 1) argv.insert(argv.end(), {"--bind-to", "none"});
  if (request.root) argv.push_back("--allow-run-as-root");
  if (request.tag_output) argv.push_back("--tag-output");
  // When a rank dies, mpirun ends the others with SIGTERM and waits a second before SIGKILL
  // (twice over: 2.0 s measured). Those ranks are blocked in a collective that cannot complete;
  // ending them at once brings the restart 2 s closer (0.03 s measured).
  argv.insert(argv.end(), {"--mca", "odls_base_sigkill_timeout", "0"});
  argv.insert(argv.end(), {"-x", fmt::format("OMP_NUM_THREADS={}", threads)});
  for (const std::string& e : request.exports) argv.insert(argv.end(), {"-x", e});
  argv.push_back(request.convoy);
  argv.insert(argv.end(), request.command.begin(), request.command.end());
  // The ranks' own thread count, unless the command sets one.
  if (std::find(request.command.begin(), request.command.end(), "--threads") ==
      request.command.end()) {
    argv.insert(argv.end(), {"--threads", std::to_string(threads)});
  }
  return argv;
}

}  // namespace convoy
