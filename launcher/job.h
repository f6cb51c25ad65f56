// Job: the processes a command runs in -- this process alone, or every rank of an MPI job when
// convoy was started by mpirun -- and how errors end them.
//
// run_job() starts MPI when needed, runs the command body, and turns failures into exit codes
// without hanging the other ranks:
//   JobWideInputError (every rank raised it at the same point): rank 0 prints it, every rank
//       returns 2 and MPI shuts down normally.
//   any other InputError on one rank: that rank prints "convoy: rank R: ..." and aborts the job
//       with code 2 (the others may be waiting for it in a collective).
//   anything else: the same with code 1.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "communicator.h"
#include "error.h"

namespace convoy {

class Job {
 public:
  int rank() const { return comm_ != nullptr ? comm_->rank() : 0; }
  int size() const { return comm_ != nullptr ? comm_->size() : 1; }
  bool is_root() const { return rank() == 0; }
  // The job's communicator; null for a single process.
  Communicator* comm() const { return comm_; }
  // OpenMP threads for this process: `requested`, or else the machine's cores shared evenly among
  // the ranks on this machine (and never more than the cores this process may run on).
  int threads(int requested) const;

  // Runs `setup` (reading flags, files, data) on every rank and agrees on the outcome: if it threw
  // InputError on any rank, every rank throws JobWideInputError with the first failing rank's
  // message, so the job ends with one clean message instead of an abort. Collective.
  template <typename F>
  auto agree(F&& setup) -> decltype(setup());

 private:
  // Throws JobWideInputError if any rank's `error` is non-empty. Collective.
  void agree_on(const std::string& error) const;

  friend int run_job(const std::function<int(Job&)>& body);
  Communicator* comm_ = nullptr;
  int local_size_ = 1;
};

// Runs `body` in the job convoy was started in; returns the process exit code.
int run_job(const std::function<int(Job&)>& body);

template <typename F>
auto Job::agree(F&& setup) -> decltype(setup()) {
  std::optional<decltype(setup())> result;
  std::string error;
  try {
    result.emplace(setup());
  } catch (const JobWideInputError&) {
    throw;
  } catch (const InputError& e) {
    if (comm_ == nullptr) throw;
    error = e.what();
  }
  agree_on(error);
  return std::move(*result);
}

}  // namespace convoy
