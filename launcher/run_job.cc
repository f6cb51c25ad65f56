#include "launcher/run_job.h"

#include <fmt/format.h>

#include <optional>

#include "dist/mpi_communicator.h"
#include "launcher/exit_code.h"

namespace convoy {

int run_job(const std::function<int(Job&)>& body) {
  std::optional<MpiRuntime> runtime;
  std::optional<MpiCommunicator> mpi;
  if (launched_by_mpi()) {
    runtime.emplace(nullptr, nullptr);
    mpi.emplace();
  }
  Job job(mpi ? &*mpi : nullptr, mpi ? mpi->local_size() : 1);
  const bool alone = job.size() == 1;
  const std::string who = alone ? "" : fmt::format("rank {}: ", job.rank());
  auto fail = [&](const char* prefix, const std::exception& e, int code) {
    fmt::print(stderr, "convoy: {}{}{}\n", who, prefix, e.what());
    std::fflush(stderr);
    if (!alone) job.comm()->abort(code);
    return code;
  };
  try {
    return body(job);
  } catch (const Error& e) {
    const int code = exit_code(e.kind());
    if (e.job_wide()) {
      if (job.is_root()) fmt::print(stderr, "convoy: {}{}\n", code == 2 ? "" : "error: ", e.what());
      return code;
    }
    return fail(code == 2 ? "" : "error: ", e, code);
  } catch (const std::exception& e) {
    return fail("error: ", e, 1);
  }
}

}  // namespace convoy
