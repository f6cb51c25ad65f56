#include "dist/job.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <thread>

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

void Job::agree_on(const std::string& error, ErrorKind kind) const {
  if (comm_ == nullptr) return;
  // The kind travels with the message (as its first character) so that every rank throws the
  // same kind, and so exits with the same code.
  const std::vector<std::string> errors = comm_->allgather(
      error.empty() ? "" : static_cast<char>('A' + static_cast<int>(kind)) + error);
  for (size_t r = 0; r < errors.size(); ++r) {
    if (errors[r].empty()) continue;
    const auto failing_kind = static_cast<ErrorKind>(errors[r][0] - 'A');
    const std::string message = errors[r].substr(1);
    const bool everywhere = std::all_of(errors.begin(), errors.end(),
                                        [&](const std::string& e) { return e == errors[r]; });
    throw Error(failing_kind, everywhere ? message : fmt::format("rank {}: {}", r, message))
        .set_job_wide();
  }
}

}  // namespace convoy
