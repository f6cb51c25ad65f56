#include "dist/metrics_store.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"

namespace convoy {

bool valid_job_id(const std::string& job) {
  if (job.empty() || job.size() > 64 || job[0] == '.') return false;
  for (char c : job) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

MetricsStore::MetricsStore(std::string dir, size_t memory_records, FileSystem& file_system,
                           uint64_t max_job_records)
    : dir_(std::move(dir)),
      memory_records_(memory_records),
      file_system_(file_system),
      max_job_records_(max_job_records) {
  std::filesystem::create_directories(dir_);
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && valid_job_id(name)) job_locked(name);
  }
}

void MetricsStore::check_limit_locked(const std::string& name, const Job& job,
                                      uint64_t more) const {
  const uint64_t stored = job.step_count + job.evaluation_list.size();
  if (more > max_job_records_ - std::min(stored, max_job_records_)) {
    throw Error::limit_exceeded(
        fmt::format("job '{}' has stored {} records, and may store at most {}", name, stored,
                    max_job_records_));
  }
}

MetricsStore::Job& MetricsStore::job_locked(const std::string& name) {
  const auto it = jobs_.find(name);
  if (it != jobs_.end()) return it->second;
  // Built aside and added only once both logs are open: a failure (a full disk, no descriptor)
  // leaves no half-made job behind for later calls to trip over.
  Job job;
  const std::filesystem::path dir = std::filesystem::path(dir_) / name;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw Error::io(fmt::format("cannot create '{}': {}", dir.string(), error.message()));
  }
  job.steps_path = (dir / "steps.log").string();
  job.steps = std::make_unique<RecordLog>(
      job.steps_path,
      [&](std::string_view bytes) {
        pb::StepRecord r;
        if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
        job.series.add(r);
        job.recent.push_back(std::move(r));
        if (job.recent.size() > memory_records_) job.recent.pop_front();
        ++job.step_count;
      },
      file_system_);
  job.evaluations = std::make_unique<RecordLog>(
      (dir / "evaluations.log").string(),
      [&](std::string_view bytes) {
        pb::EvaluationRecord e;
        if (e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          job.evaluation_list.push_back(std::move(e));
        }
      },
      file_system_);
  return jobs_.emplace(name, std::move(job)).first->second;
}

void MetricsStore::append(const std::string& name, const std::vector<pb::StepRecord>& records) {
  std::vector<std::string> bytes;
  for (const pb::StepRecord& r : records) bytes.push_back(r.SerializeAsString());
  {
    std::lock_guard lock(mutex_);
    Job& job = job_locked(name);
    check_limit_locked(name, job, records.size());
    job.steps->append(bytes);
    for (const pb::StepRecord& r : records) {
      job.series.add(r);
      job.recent.push_back(r);
      if (job.recent.size() > memory_records_) job.recent.pop_front();
    }
    job.step_count += records.size();
  }
  changed_.notify_all();
}

void MetricsStore::append(const std::string& name, const pb::EvaluationRecord& evaluation) {
  if (evaluation.precision_size() > kMaxClasses || evaluation.recall_size() > kMaxClasses) {
    throw Error::invalid_input(fmt::format("an evaluation of more than {} classes", kMaxClasses));
  }
  const int64_t classes = evaluation.precision_size();
  if (evaluation.confusion_size() != 0 && evaluation.confusion_size() != classes * classes) {
    throw Error::invalid_input(
        fmt::format("a confusion matrix of {} counts for {} classes (expected none or {})",
                    evaluation.confusion_size(), classes, classes * classes));
  }
  {
    std::lock_guard lock(mutex_);
    Job& job = job_locked(name);
    check_limit_locked(name, job, 1);
    job.evaluations->append({evaluation.SerializeAsString()});
    job.evaluation_list.push_back(evaluation);
  }
  changed_.notify_all();
}

pb::MetricsPage MetricsStore::query(const pb::MetricsQuery& q, int32_t max_limit) const {
  pb::MetricsPage page;
  const int32_t limit = q.limit() > 0 ? std::min(q.limit(), max_limit) : max_limit;
  const auto in_range = [&](int64_t step) {
    return step >= q.from_step() && (q.to_step() == 0 || step <= q.to_step());
  };
  auto take = [&](const pb::StepRecord& r) {
    if (!in_range(r.step())) return true;
    if (page.record_size() >= limit) {
      page.set_truncated(true);
      return false;
    }
    *page.add_record() = r;
    return true;
  };
  std::string steps_path;
  bool from_memory = false;
  {
    std::lock_guard lock(mutex_);
    const auto it = jobs_.find(q.job_id());
    if (it == jobs_.end()) return page;
    const Job& job = it->second;
    for (const pb::EvaluationRecord& e : job.evaluation_list) {
      if (in_range(e.step())) *page.add_evaluation() = e;
    }
    // Everything still in memory: answer from there; otherwise read the file.
    from_memory = job.step_count == job.recent.size();
    if (from_memory) {
      for (const pb::StepRecord& r : job.recent) {
        if (!take(r)) break;
      }
    }
    steps_path = job.steps_path;
  }
  if (!from_memory) {
    bool more = true;
    RecordLog::read(steps_path, [&](std::string_view bytes) {
      pb::StepRecord r;
      if (more && r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) more = take(r);
    });
  }
  return fit_to_size(std::move(page));
}

// Cuts a page that would be too large for one message at the first step whose records and
// evaluations no longer fit (keeping at least one step), and marks it truncated.
pb::MetricsPage MetricsStore::fit_to_size(pb::MetricsPage page) {
  if (page.ByteSizeLong() <= kMaxPageBytes) return page;
  std::map<int64_t, size_t> bytes_per_step;
  for (const pb::StepRecord& r : page.record()) bytes_per_step[r.step()] += r.ByteSizeLong() + 8;
  for (const pb::EvaluationRecord& e : page.evaluation()) {
    bytes_per_step[e.step()] += e.ByteSizeLong() + 8;
  }
  size_t total = 0;
  int64_t cut = bytes_per_step.rbegin()->first + 1;
  for (const auto& [step, bytes] : bytes_per_step) {
    total += bytes;
    if (total > kMaxPageBytes && step != bytes_per_step.begin()->first) {
      cut = step;
      break;
    }
  }
  pb::MetricsPage fitted;
  for (const pb::StepRecord& r : page.record()) {
    if (r.step() < cut) *fitted.add_record() = r;
  }
  for (const pb::EvaluationRecord& e : page.evaluation()) {
    if (e.step() < cut) *fitted.add_evaluation() = e;
  }
  fitted.set_truncated(true);
  // One step alone too large (many evaluations reported at the same step): the page keeps its
  // records and as many of the step's evaluations as fit.
  size_t size = fitted.ByteSizeLong();
  while (size > kMaxPageBytes && fitted.evaluation_size() > 0) {
    const size_t length = fitted.evaluation(fitted.evaluation_size() - 1).ByteSizeLong();
    size -= 1 + google::protobuf::io::CodedOutputStream::VarintSize64(length) + length;  // tag
    fitted.mutable_evaluation()->RemoveLast();
  }
  return fitted;
}

MetricsStore::Cursor MetricsStore::end(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(name);
  if (it == jobs_.end()) return {};
  return {it->second.step_count, it->second.evaluation_list.size()};
}

bool MetricsStore::wait(const std::string& name, Cursor& cursor, pb::MetricsBatch* out,
                        double timeout_seconds, size_t max_records, uint64_t* skipped) const {
  std::unique_lock lock(mutex_);
  const auto newer = [&] {
    const auto it = jobs_.find(name);
    return it != jobs_.end() && (it->second.step_count > cursor.steps ||
                                 it->second.evaluation_list.size() > cursor.evaluations);
  };
  if (!changed_.wait_for(lock, std::chrono::duration<double>(timeout_seconds), newer)) {
    return false;
  }
  const Job& job = jobs_.find(name)->second;
  const uint64_t first_in_memory = job.step_count - job.recent.size();
  const uint64_t first =
      std::max({cursor.steps, first_in_memory,
                job.step_count - std::min<uint64_t>(job.step_count, max_records)});
  *skipped += first - std::min(first, cursor.steps);
  for (uint64_t i = first; i < job.step_count; ++i) {
    *out->add_record() = job.recent[i - first_in_memory];
  }
  for (uint64_t i = cursor.evaluations; i < job.evaluation_list.size(); ++i) {
    *out->add_evaluation() = job.evaluation_list[i];
  }
  out->set_job_id(name);
  cursor = {job.step_count, job.evaluation_list.size()};
  return true;
}

uint64_t MetricsStore::step_records(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(name);
  return it == jobs_.end() ? 0 : it->second.step_count;
}

std::vector<StepSeries::Point> MetricsStore::series(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(name);
  return it == jobs_.end() ? std::vector<StepSeries::Point>{} : it->second.series.points();
}

std::vector<MetricsStore::EvaluationPoint> MetricsStore::evaluation_points(
    const std::string& name) const {
  std::lock_guard lock(mutex_);
  std::vector<EvaluationPoint> points;
  const auto it = jobs_.find(name);
  if (it == jobs_.end()) return points;
  for (const pb::EvaluationRecord& e : it->second.evaluation_list) {
    points.push_back({e.step(), e.epoch(), e.test_accuracy(), e.test_loss()});
  }
  return points;
}

bool MetricsStore::latest_evaluation(const std::string& name, pb::EvaluationRecord* out) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(name);
  if (it == jobs_.end() || it->second.evaluation_list.empty()) return false;
  *out = it->second.evaluation_list.back();
  return true;
}

void MetricsStore::sync() {
  std::lock_guard lock(mutex_);
  for (auto& [name, job] : jobs_) {
    try {
      job.steps->sync();
      job.evaluations->sync();
    } catch (const Error& e) {
      // Durability is retried at the next sync; the records already reached the system.
      fmt::print(stderr, "convoy coordinator: job {}: {}\n", name, e.what());
    }
  }
}

}  // namespace convoy
