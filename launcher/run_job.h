// run_job(): runs a command body in the job convoy was started in (dist/job.h) -- alone, or as
// one rank under mpirun -- and turns failures into exit codes (launcher/exit_code.h) without
// hanging the other ranks:
//   a job-wide Error (every rank raised it at the same point): rank 0 prints it, every rank
//       returns its exit code and MPI shuts down normally.
//   any other Error on one rank: that rank prints "convoy: rank R: ..." and aborts the job with
//       its exit code (the others may be waiting for it in a collective).
//   anything else: the same with code 1.
#pragma once

#include <functional>

#include "dist/job.h"

namespace convoy {

// Runs `body` in the job convoy was started in; returns the process exit code.
int run_job(const std::function<int(Job&)>& body);

}  // namespace convoy
