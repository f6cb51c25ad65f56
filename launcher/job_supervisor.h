// JobSupervisor: runs a job under mpirun to its end, and starts it again when it fails.
//
//   a rank dies     mpirun ends the job and says which rank, where and why (launcher/
//                   mpirun_output.h); the supervisor prints that in one line, records the restart
//                   at the coordinator, makes sure no rank of that start is left, waits (1 s, then
//                   doubling up to 30 s) and starts the job again -- its ranks resume from the
//                   latest checkpoint -- up to `max_restarts` times for the whole job. A start
//                   that cannot be made (the discovery script fails, too few hosts) counts alike.
//   a rank hangs    every second the supervisor asks the coordinator for the job's status. A rank
//                   of this start whose heartbeat has been silent for `hang_timeout` seconds
//                   (stopped, or wedged so hard its reporter thread is too), a rank that has not
//                   registered that long after the start (stuck while starting), or a job in which
//                   no rank has taken a step for that long although all heartbeat (a collective
//                   that never completes), has hung: gdb writes the stack of every thread of each
//                   hung rank on this host to a file, the ranks are killed, and it is a failure as
//                   above.
//   SIGTERM/SIGINT  the first is passed on to the ranks as SIGUSR1 (mpirun forwards it; repeated
//                   every second, in case ranks were still starting): they stop together after the
//                   current step, rank 0 stores a checkpoint, and all exit with kExitPreempted. A
//                   second signal, or `grace_period` seconds without an end, ends everything at
//                   once. The supervisor then returns kExitPreempted.
//   bad input       a job ending with exit code 2 is never started again.
//
// Ranks of this launcher are recognised by CONVOY_LAUNCHER_PID=<its pid> in their environment
// (mpirun exports it), so that a pid the system reused is never killed or traced.
//
// SIGTERM and SIGINT must be blocked in every thread of the process before any thread starts
// (the supervisor reads them from a signalfd).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dist/coordinator_client.h"
#include "launcher/mpirun_output.h"

namespace convoy {

struct SupervisorOptions {
  std::string job_id;  // at the coordinator
  int max_restarts = 3;
  double hang_timeout = 60;
  double grace_period = 25;
  double first_backoff = 1;  // seconds before the first restart; doubles, up to max_backoff
  double max_backoff = 30;
  std::string trace_dir = "";  // where stack traces of hung ranks are written
  bool once = false;           // never restarted, no checkpoint to stop at (evaluate, bench)
};

// One start of the job.
struct JobStart {
  std::vector<std::string> argv;  // mpirun's
  int ranks = 0;
};

class JobSupervisor {
 public:
  // The start `restart` (0 for the first); may throw Error (no hosts left).
  using Attempt = std::function<JobStart(int restart)>;
  // `coordinator` may be null: no hang detection and no restart records then.
  JobSupervisor(SupervisorOptions options, Attempt attempt, CoordinatorClient* coordinator);
  ~JobSupervisor();
  JobSupervisor(const JobSupervisor&) = delete;
  JobSupervisor& operator=(const JobSupervisor&) = delete;

  // Runs the job until it succeeds, fails for good or is stopped; returns the exit code: 0, 2 (bad
  // input), 1 (failed, no restarts left) or kExitPreempted.
  int run();

 private:
  struct Outcome {
    int exit_code = 0;
    std::optional<RankFailure> failure;
    std::vector<std::string> mpirun_lines;  // mpirun's own messages
  };
  struct RankSeen {
    std::string host;
    pid_t pid = 0;
  };
  Outcome run_once(const JobStart& start);
  void on_signal(pid_t mpirun, bool running);
  bool signalled();  // a stop signal is pending (read, and said)
  void check_hang(pid_t mpirun, int ranks, double since_start);
  void stop_hung(pid_t mpirun, const std::vector<int>& ranks, const std::string& reason);
  void note_local_ranks(pid_t mpirun);
  void kill_ranks_left();
  bool wait_backoff(double seconds);  // false: a signal asked to stop

  SupervisorOptions options_;
  Attempt attempt_;
  CoordinatorClient* coordinator_;
  int signals_ = -1;  // signalfd for SIGTERM and SIGINT
  std::string host_;  // this machine's name, as ranks report theirs
  // Per start:
  bool stopping_ = false;      // a signal asked the job to stop
  bool hard_stopped_ = false;  // ended at once
  double stop_deadline_ = 0, kill_deadline_ = 0, next_resend_ = 0;
  bool hang_handled_ = false;
  std::optional<RankFailure> hang_;  // what the hang check found (overrides mpirun's account)
  std::map<int, RankSeen> ranks_;    // this start's ranks, as registered or found on this host
};

}  // namespace convoy
