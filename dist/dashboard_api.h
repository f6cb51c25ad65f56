// The dashboard's data, as JSON (served by dist/coordinator_http.h under /api/):
//
//   /api/jobs       every job in a line: state, step of total, progress, ETA, throughput,
//                   latest test accuracy, restarts
//   /api/jobs/<id>  one job in full: the line above, its command line, ranks (state, host, step,
//                   seconds since heartbeat, share of step time in all-reduce, records dropped),
//                   restarts, checkpoints, the latest evaluation (per-class precision, recall,
//                   F1, and the confusion matrix up to 100 classes) and the charts' data: at most
//                   StepSeries::kMaxPoints points of loss, accuracy, images/s and learning rate by
//                   step, and every evaluation
//
// A job's state: "finished" once a rank reached the run's last step, else "running" while a rank
// is alive, "stalled" when none is alive but some is stalled, "gone" when every rank is gone.
// Read-only: nothing here changes a job.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace convoy {

class CoordinatorService;

nlohmann::json dashboard_jobs(CoordinatorService& service);
// Null for an unknown job.
nlohmann::json dashboard_job(CoordinatorService& service, const std::string& job);

}  // namespace convoy
