#include "job.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <thread>

#include "error.h"
#include "mpi_communicator.h"

namespace convoy {

int Job::threads(int requested) const {
  int threads = requested;
  if (threads <= 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::clamp(cores / std::max(local_size_, 1), 1, std::max(omp_get_num_procs(), 1));
  }
  omp_set_num_threads(threads);
  return threads;
}

void Job::agree_on(const std::string& error) const {
  if (comm_ == nullptr) return;
  const std::vector<std::string> errors = comm_->allgather(error);
  for (size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    const bool everywhere = std::all_of(errors.begin(), errors.end(),
                                        [&](const std::string& e) { return e == errors[r]; });
    throw JobWideInputError(everywhere ? errors[r] : fmt::format("rank {}: {}", r, errors[r]));
  }
}

int run_job(const std::function<int(Job&)>& body) {
  std::optional<MpiRuntime> runtime;
  std::optional<MpiCommunicator> mpi;
  Job job;
  if (launched_by_mpi()) {
    runtime.emplace(nullptr, nullptr);
    mpi.emplace();
    job.comm_ = &*mpi;
    job.local_size_ = mpi->local_size();
  }
  const bool alone = job.size() == 1;
  const std::string who = alone ? "" : fmt::format("rank {}: ", job.rank());
  auto fail = [&](const char* prefix, const std::exception& e, int code) {
    fmt::print(stderr, "convoy: {}{}{}\n", who, prefix, e.what());
    std::fflush(stderr);
    if (!alone) job.comm_->abort(code);
    return code;
  };
  try {
    return body(job);
  } catch (const JobWideInputError& e) {
    if (job.is_root()) fmt::print(stderr, "convoy: {}\n", e.what());
    return 2;
  } catch (const InputError& e) {
    return fail("", e, 2);
  } catch (const std::exception& e) {
    return fail("error: ", e, 1);
  }
}

}  // namespace convoy
