// Communicator: the collective operations a data-parallel job needs, behind a small interface.
// MpiCommunicator (mpi_communicator.h) is the real one; FakeWorld (fake_communicator.h) runs N
// ranks as threads of one process, so reducer logic is tested without mpirun.
//
// This is the layer PyTorch's c10d calls a ProcessGroup (its collective backend); convoy's
// ProcessGroup (core/process_group.h) is the trainer's view above it.
//
// Contract: every rank calls the collectives in the same order with matching sizes. Calls may
// come from different threads of a rank, but never from two at once. A failure of the transport is
// not recoverable: implementations abort the job rather than return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace convoy {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank and number of ranks on this machine.
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;

  // Blocking collectives.
  virtual void allreduce_sum(std::span<float> values) = 0;
  virtual void allreduce_sum(std::span<double> values) = 0;
  virtual void allreduce_sum(std::span<int64_t> values) = 0;
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  // Every rank's string, indexed by rank.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;

  // Ends every rank of the job with `exit_code`. Does not return.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

}  // namespace convoy
