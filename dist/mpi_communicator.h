// MpiCommunicator: Communicator over MPI_COMM_WORLD (Open MPI).
//
// MpiRuntime owns MPI's lifetime: MPI_Init_thread on construction, MPI_Finalize on destruction.
// It asks for MPI_THREAD_SERIALIZED (the gradient reducer's thread and the training thread take
// turns) and throws Error (internal) if the library cannot provide it.
// Errors from MPI are not returned (MPI_ERRORS_ARE_FATAL): a failed transport ends the job.
#pragma once

#include <mpi.h>

#include <memory>
#include <vector>

#include "dist/communicator.h"

namespace convoy {

// True when this process was started by an MPI launcher (mpirun/mpiexec, or a PMIx-aware
// scheduler), i.e. when there may be other ranks to talk to.
bool launched_by_mpi();

class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
};

class MpiCommunicator final : public Communicator {
 public:
  // Requires a live MpiRuntime.
  MpiCommunicator();
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  void allreduce_sum(std::span<float> values) override;
  void allreduce_sum(std::span<double> values) override;
  void allreduce_sum(std::span<int64_t> values) override;
  void broadcast(std::span<std::byte> data, int root) override;
  std::vector<std::string> allgather(const std::string& mine) override;

  [[noreturn]] void abort(int exit_code) override;

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Comm local_ = MPI_COMM_NULL;
};

}  // namespace convoy
