#include "dist/job_registry.h"

#include <fmt/format.h>

#include <climits>

#include "core/error.h"

namespace convoy {

const char* rank_state_name(pb::RankStatus::State state) {
  switch (state) {
    case pb::RankStatus::ALIVE:
      return "alive";
    case pb::RankStatus::STALLED:
      return "stalled";
    default:
      return "gone";
  }
}

void JobRegistry::advance(Rank& r, int64_t step, double now) {
  r.last_heartbeat = now;
  if (step > r.step) {
    r.step = step;
    r.last_progress = now;
  }
}

void JobRegistry::register_rank(const pb::RegisterRequest& request) {
  if (request.world_size() < 1 || request.world_size() > kMaxWorldSize) {
    throw Error::invalid_input(
        fmt::format("world_size must lie in [1, {}], got {}", kMaxWorldSize, request.world_size()));
  }
  if (request.rank() < 0 || request.rank() >= request.world_size()) {
    throw Error::invalid_input("rank must lie in [0, world_size)");
  }
  if (request.host().size() > kMaxHostBytes) {
    throw Error::invalid_input(
        fmt::format("host name of {} bytes (at most {})", request.host().size(), kMaxHostBytes));
  }
  size_t command_bytes = 0;
  for (const std::string& arg : request.command_line()) command_bytes += arg.size() + 1;
  if (command_bytes > kMaxCommandLineBytes) {
    throw Error::invalid_input(
        fmt::format("command line of {} bytes (at most {})", command_bytes, kMaxCommandLineBytes));
  }
  std::lock_guard lock(mutex_);
  Job& job = jobs_[request.job_id()];
  job.world_size = request.world_size();
  job.ranks.erase(job.ranks.lower_bound(job.world_size), job.ranks.end());
  Rank& r = job.ranks[request.rank()];
  r.registration = request;
  // Only rank 0's command line is shown: the others need not take memory.
  if (request.rank() != 0) r.registration.clear_command_line();
  const double now = clock_.now();
  r.registered = now;
  r.last_heartbeat = now;
  r.last_progress = now;
  r.step = -1;
  r.records_dropped = 0;
  latest_job_ = request.job_id();
}

void JobRegistry::record_restart(const pb::RestartRecord& record) {
  if (record.host().size() > kMaxHostBytes) {
    throw Error::invalid_input(
        fmt::format("host name of {} bytes (at most {})", record.host().size(), kMaxHostBytes));
  }
  if (record.cause().size() > kMaxCauseBytes) {
    throw Error::invalid_input(
        fmt::format("cause of {} bytes (at most {})", record.cause().size(), kMaxCauseBytes));
  }
  std::lock_guard lock(mutex_);
  Job& job = jobs_[record.job_id()];
  ++job.restarts;
  job.last_restart = record;
}

bool JobRegistry::heartbeat(const pb::HeartbeatRequest& request) {
  std::lock_guard lock(mutex_);
  const auto j = jobs_.find(request.job_id());
  if (j == jobs_.end()) return false;
  const auto r = j->second.ranks.find(request.rank());
  if (r == j->second.ranks.end()) return false;
  r->second.records_dropped = request.records_dropped();
  advance(r->second, request.step(), clock_.now());
  return true;
}

void JobRegistry::observe(const std::string& job, const pb::StepRecord& record) {
  std::lock_guard lock(mutex_);
  const auto j = jobs_.find(job);
  if (j == jobs_.end()) return;
  const auto r = j->second.ranks.find(record.rank());
  if (r == j->second.ranks.end()) return;
  if (record.step() >= r->second.latest.step()) r->second.latest = record;
  advance(r->second, record.step(), clock_.now());
}

bool JobRegistry::status(const std::string& job_id, pb::JobStatus* out) const {
  std::lock_guard lock(mutex_);
  const std::string& id = job_id.empty() ? latest_job_ : job_id;
  const auto j = jobs_.find(id);
  if (j == jobs_.end()) return false;
  const double now = clock_.now();
  const Job& job = j->second;
  out->set_job_id(id);
  out->set_world_size(job.world_size);
  double images_per_second = 0;
  // The two highest steps among ranks that progressed recently: "some other rank moved past this
  // one" is then one comparison per rank (linear, not quadratic, in the ranks).
  int64_t best = INT64_MIN, second = INT64_MIN;
  int best_rank = -1;
  for (const auto& [rank, r] : job.ranks) {
    if (now - r.last_progress > stall_after_) continue;
    if (r.step > best) {
      second = best;
      best = r.step;
      best_rank = rank;
    } else if (r.step > second) {
      second = r.step;
    }
  }
  for (const auto& [rank, r] : job.ranks) {
    pb::RankStatus* s = out->add_rank();
    s->set_rank(rank);
    s->set_host(r.registration.host());
    s->set_pid(r.registration.pid());
    s->set_step(r.step);
    s->set_seconds_since_heartbeat(now - r.last_heartbeat);
    s->set_seconds_since_progress(now - r.last_progress);
    s->set_seconds_since_registration(now - r.registered);
    s->set_records_dropped(r.records_dropped);
    *s->mutable_latest() = r.latest;
    // Stalled: stuck for a while although some other rank moved recently (past this one).
    const bool others_moved = (rank == best_rank ? second : best) > r.step;
    if (now - r.last_heartbeat > gone_after_) {
      s->set_state(pb::RankStatus::GONE);
    } else if (now - r.last_progress > stall_after_ && others_moved) {
      s->set_state(pb::RankStatus::STALLED);
    } else {
      s->set_state(pb::RankStatus::ALIVE);
      images_per_second += r.latest.images_per_second();
    }
  }
  out->set_images_per_second(images_per_second);
  if (const auto root = job.ranks.find(0); root != job.ranks.end()) {
    *out->mutable_command_line() = root->second.registration.command_line();
  }
  out->set_restarts(job.restarts);
  if (job.restarts > 0) *out->mutable_last_restart() = job.last_restart;
  for (const auto& [name, unused] : jobs_) out->add_jobs(name);
  return true;
}

std::vector<std::string> JobRegistry::jobs() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, unused] : jobs_) names.push_back(name);
  return names;
}

std::string JobRegistry::latest_job() const {
  std::lock_guard lock(mutex_);
  return latest_job_;
}

}  // namespace convoy
