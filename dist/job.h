// Job: the processes a command runs in -- this process alone, or every rank of an MPI job when
// convoy was started by mpirun -- and how they agree on the outcome of their setup.
//
// launcher/run_job.h starts MPI when needed, builds the Job and turns what escapes into exit
// codes without hanging the other ranks.
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "dist/communicator.h"

namespace convoy {

class Job {
 public:
  // `comm`: the job's communicator, null for a single process (not owned); `local_size`: ranks on
  // this machine.
  Job(Communicator* comm, int local_size) : comm_(comm), local_size_(local_size) {}

  int rank() const { return comm_ != nullptr ? comm_->rank() : 0; }
  int size() const { return comm_ != nullptr ? comm_->size() : 1; }
  bool is_root() const { return rank() == 0; }
  // The job's communicator; null for a single process.
  Communicator* comm() const { return comm_; }
  // OpenMP threads for this process: `requested`, or else the machine's cores shared evenly among
  // the ranks on this machine (and never more than the cores this process may run on).
  int threads(int requested) const;

  // Runs `setup` (reading flags, files, data) on every rank and agrees on the outcome: if it threw
  // Error on any rank, every rank throws a job-wide Error of that kind with the first failing
  // rank's message, so the job ends with one clean message instead of an abort. Collective.
  template <typename F>
  auto agree(F&& setup) -> decltype(setup());

 private:
  // Throws a job-wide Error if any rank's `error` is non-empty. Collective.
  void agree_on(const std::string& error, ErrorKind kind) const;

  Communicator* comm_ = nullptr;
  int local_size_ = 1;
};

template <typename F>
auto Job::agree(F&& setup) -> decltype(setup()) {
  std::optional<decltype(setup())> result;
  std::string error;
  ErrorKind kind = ErrorKind::kInvalidInput;
  try {
    result.emplace(setup());
  } catch (const Error& e) {
    if (comm_ == nullptr || e.job_wide()) throw;
    error = e.what();
    kind = e.kind();
  }
  agree_on(error, kind);
  return std::move(*result);
}

}  // namespace convoy
