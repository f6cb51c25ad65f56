#include "dist/job_registry.h"

#include <fmt/format.h>

#include <climits>

#include "core/error.h"
#include "dist/metrics_store.h"

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

JobRegistry::JobRegistry(const Clock& clock, double stall_after, double gone_after,
                         const std::string& log_path, FileSystem& file_system)
    : clock_(clock),
      stall_after_(stall_after),
      gone_after_(gone_after),
      log_path_(log_path),
      file_system_(file_system) {
  if (log_path.empty()) return;
  // Replay; events that fail today's checks (a log of an older version, a hand-edited one) are
  // skipped.
  try {
    RecordLog::read(log_path, [&](std::string_view bytes) {
      pb::RegistryEvent event;
      if (!event.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
      try {
        if (event.has_registration() && valid_job_id(event.registration().job_id())) {
          check(event.registration());
          register_locked(event.registration());
        } else if (event.has_restart() && valid_job_id(event.restart().job_id())) {
          check(event.restart());
          restart_locked(event.restart(), event.restarts());
        }
      } catch (const Error&) {
      }
    });
  } catch (const Error& e) {
    // Unreadable: leave the file alone (it may be readable again later) and keep memory only.
    warn(fmt::format("registrations kept in memory only: {}", e.what()));
    return;
  }
  std::lock_guard log_lock(log_mutex_);
  compact_log_locked();
}

std::vector<std::string> JobRegistry::snapshot() const {
  // The latest job last, so that it is the latest again when replayed; each registration with
  // its job's current world size (a job that shrank comes back at its new size).
  std::lock_guard lock(mutex_);
  std::vector<std::string> records;
  const auto add_job = [&](const std::string& id, const Job& job) {
    for (const auto& [rank, r] : job.ranks) {
      pb::RegistryEvent event;
      *event.mutable_registration() = r.registration;
      event.mutable_registration()->set_world_size(job.world_size);
      records.push_back(event.SerializeAsString());
    }
    if (job.restarts > 0) {
      pb::RegistryEvent event;
      *event.mutable_restart() = job.last_restart;
      event.mutable_restart()->set_job_id(id);
      event.set_restarts(job.restarts);
      records.push_back(event.SerializeAsString());
    }
  };
  for (const auto& [id, job] : jobs_) {
    if (id != latest_job_) add_job(id, job);
  }
  if (const auto it = jobs_.find(latest_job_); it != jobs_.end()) add_job(it->first, it->second);
  return records;
}

void JobRegistry::compact_log_locked() {
  const std::vector<std::string> records = snapshot();
  log_.reset();
  try {
    RecordLog::write(log_path_, records, file_system_);
    compacted_bytes_ = 0;
    for (const std::string& r : records) compacted_bytes_ += r.size() + 8;
  } catch (const Error& e) {
    // The log as it was stays (the write is atomic): appends go on after it.
    warn(fmt::format("could not compact the registrations log: {}", e.what()));
  }
  appended_bytes_ = 0;
  try {
    log_ = std::make_unique<RecordLog>(
        log_path_, [](std::string_view) {}, file_system_);
  } catch (const Error& e) {
    warn(fmt::format("registrations kept in memory only: {}", e.what()));
  }
}

void JobRegistry::persist_log_locked(const pb::RegistryEvent& event) {
  if (!log_) return;
  const std::string bytes = event.SerializeAsString();
  try {
    log_->append({bytes});
  } catch (const Error& e) {
    warn(fmt::format("registration kept in memory only: {}", e.what()));
    return;
  }
  // Every registration and restart is appended; compacted again once the appends outgrow what
  // is live (restarting jobs would otherwise grow the file without bound).
  appended_bytes_ += bytes.size() + 8;
  if (appended_bytes_ > std::max<uint64_t>(kCompactAfterBytes, 4 * compacted_bytes_)) {
    compact_log_locked();
  }
}

void JobRegistry::sync() {
  std::lock_guard log_lock(log_mutex_);
  if (!log_) return;
  try {
    log_->sync();
  } catch (const Error& e) {
    warn(e.what());
  }
}

void JobRegistry::warn(const std::string& message) {
  fmt::print(stderr, "convoy coordinator: {}\n", message);
}

namespace {

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF). Hosts, causes and command lines are shown as JSON and protobuf strings, which must be
// valid; no library convoy links offers this check in its public API.
bool valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    int more = 0;
    uint32_t code = 0, least = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      more = 1, code = c & 0x1F, least = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      more = 2, code = c & 0x0F, least = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      more = 3, code = c & 0x07, least = 0x10000;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(more) >= text.size()) return false;  // cut short
    for (int k = 1; k <= more; ++k) {
      const auto next = static_cast<unsigned char>(text[i + static_cast<size_t>(k)]);
      if ((next & 0xC0) != 0x80) return false;
      code = code << 6 | (next & 0x3F);
    }
    if (code < least || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += static_cast<size_t>(more) + 1;
  }
  return true;
}

void check_text(std::string_view text, const char* what) {
  if (!valid_utf8(text)) throw Error::invalid_input(fmt::format("{} is not valid UTF-8", what));
}

}  // namespace

void JobRegistry::check(const pb::RegisterRequest& request) {
  check_text(request.host(), "host name");
  for (const std::string& arg : request.command_line()) check_text(arg, "command line");
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
}

void JobRegistry::register_rank(const pb::RegisterRequest& request) {
  check(request);
  pb::RegistryEvent event;
  *event.mutable_registration() = request;
  if (request.rank() != 0) event.mutable_registration()->clear_command_line();
  // In the registry first (heartbeats and status calls wait only for that), then in the log:
  // log_mutex_ keeps the log's order that of the registry's.
  std::lock_guard log_lock(log_mutex_);
  {
    std::lock_guard lock(mutex_);
    register_locked(request);
  }
  persist_log_locked(event);
}

void JobRegistry::register_locked(const pb::RegisterRequest& request) {
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

void JobRegistry::check(const pb::RestartRecord& record) {
  check_text(record.host(), "host name");
  check_text(record.cause(), "cause");
  if (record.host().size() > kMaxHostBytes) {
    throw Error::invalid_input(
        fmt::format("host name of {} bytes (at most {})", record.host().size(), kMaxHostBytes));
  }
  if (record.cause().size() > kMaxCauseBytes) {
    throw Error::invalid_input(
        fmt::format("cause of {} bytes (at most {})", record.cause().size(), kMaxCauseBytes));
  }
}

void JobRegistry::record_restart(const pb::RestartRecord& record) {
  check(record);
  pb::RegistryEvent event;
  *event.mutable_restart() = record;
  std::lock_guard log_lock(log_mutex_);
  {
    std::lock_guard lock(mutex_);
    restart_locked(record, 0);
  }
  persist_log_locked(event);
}

void JobRegistry::restart_locked(const pb::RestartRecord& record, int32_t restarts) {
  Job& job = jobs_[record.job_id()];
  job.restarts = restarts > 0 ? restarts : job.restarts + 1;
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
