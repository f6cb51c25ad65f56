// The mpirun command line `convoy launch` runs: a pure function of the hosts, the rank count, the
// threads per rank and the machine's facts, so that placement is tested as a table.
//
//   hosts      from a hostfile as Open MPI writes it (`host slots=N`, `#` comments), from a
//              discovery script's output (`host:slots` per line, as Horovod's scripts print them;
//              passed to mpirun as --host), or else this machine with one slot per core
//   ranks      -np, or else every slot
//   placement  --oversubscribe only when the ranks exceed the slots; --bind-to none when a rank
//              runs more than one thread (Open MPI binds each rank to one core otherwise, and its
//              threads would share it); --allow-run-as-root only as root; OMP_NUM_THREADS is
//              exported to every rank; the ranks of a failed job are ended at once
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace convoy {

// The most slots a host may offer (and so the most ranks of a job: the coordinator's limit).
inline constexpr int kMaxSlots = 4096;

struct HostSlots {
  std::string host;
  int slots = 1;
};

// Parses a hostfile's text (`slots=N`, and Open MPI's `max_slots=N`, which is accepted and not
// used); Error (invalid input) naming `source` and the line otherwise.
std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source);

struct LaunchRequest {
  std::string mpirun = "mpirun";
  std::string convoy;                // the binary every rank runs
  std::string hostfile;              // given: mpirun reads the hosts from it
  std::vector<HostSlots> hosts;      // from the hostfile, discovered, or this machine
  bool list_hosts = false;           // no hostfile: pass `hosts` as --host h1:s1,h2:s2
  bool tag_output = false;           // --tag-output: every rank's line says whose it is
  std::vector<std::string> exports;  // NAME=VALUE for every rank's environment (-x)
  int ranks = 0;                     // 0: every slot
  int threads = 0;                   // per rank; 0: the cores of a host shared among its ranks
  int cores = 1;                     // of this machine (for the default thread count)
  bool root = false;                 // running as root
  std::vector<std::string> command;  // the convoy subcommand and its flags
};

// Parses a host discovery script's output: `host:slots` (or `host`, one slot) per line; blank
// lines and `#` comments are skipped. Error (invalid input) naming `source` and the line otherwise.
std::vector<HostSlots> parse_discovered_hosts(const std::string& text, const std::string& source);

// The thread count the command gives its ranks (`--threads N` or `--threads=N`), if any.
std::optional<int> command_threads(const std::vector<std::string>& command);

// The slots of all hosts together (at most INT_MAX).
int total_slots(const std::vector<HostSlots>& hosts);

// The mpirun argv; Error (invalid input) for a request that cannot run (no command, -np 0).
std::vector<std::string> mpirun_argv(const LaunchRequest& request);

}  // namespace convoy
