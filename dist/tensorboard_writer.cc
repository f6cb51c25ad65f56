#include "dist/tensorboard_writer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/crc32.h"
#include "core/stopwatch.h"

namespace convoy {

namespace {

constexpr double kIdleSeconds = 60;

uint32_t masked_crc(std::string_view bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

void append_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

tensorboard::Event scalar_event(int64_t step, double wall_time) {
  tensorboard::Event event;
  event.set_step(step);
  event.set_wall_time(wall_time);
  return event;
}

void add_scalar(tensorboard::Event& event, const std::string& tag, double value) {
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
}

}  // namespace

std::string TensorBoardWriter::record(const std::string& data) {
  std::string out;
  append_le(out, data.size(), 8);
  append_le(out, masked_crc(out), 4);
  out += data;
  append_le(out, masked_crc(data), 4);
  return out;
}

TensorBoardWriter::TensorBoardWriter(std::string dir, std::function<void(const std::string&)> warn)
    : dir_(std::move(dir)), warn_(std::move(warn)) {}

TensorBoardWriter::~TensorBoardWriter() {
  for (auto& [job, run] : runs_) {
    if (run.file != nullptr) std::fclose(run.file);
  }
}

TensorBoardWriter::Run* TensorBoardWriter::run_locked(const std::string& job) {
  Run& run = runs_[job];
  if (run.failed) return nullptr;
  if (run.file != nullptr) return &run;
  if (!run.path.empty()) {  // closed while idle: append to it again
    run.file = std::fopen(run.path.c_str(), "ab");
    if (run.file != nullptr) return &run;
    run.failed = true;
    warn_(
        fmt::format("cannot write TensorBoard events to '{}': {}; no more are written for job "
                    "'{}'",
                    run.path, std::strerror(errno), job));
    return nullptr;
  }
  const std::filesystem::path dir = std::filesystem::path(dir_) / job;
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  run.path = (dir / fmt::format("events.out.tfevents.{}.{}.{}",
                                static_cast<int64_t>(wall_seconds()), host, ::getpid()))
                 .string();
  run.file = error ? nullptr : std::fopen(run.path.c_str(), "ab");
  if (run.file == nullptr) {
    run.failed = true;
    warn_(fmt::format("cannot write TensorBoard events to '{}': {}; none are written for job '{}'",
                      run.path, error ? error.message() : std::strerror(errno), job));
    return nullptr;
  }
  tensorboard::Event first;
  first.set_wall_time(wall_seconds());
  first.set_file_version("brain.Event:2");
  write_locked(job, run, first);
  return run.failed ? nullptr : &run;
}

void TensorBoardWriter::write_locked(const std::string& job, Run& run,
                                     const tensorboard::Event& event) {
  run.last_write = wall_seconds();
  const std::string bytes = record(event.SerializeAsString());
  if (std::fwrite(bytes.data(), 1, bytes.size(), run.file) != bytes.size()) {
    run.failed = true;
    warn_(
        fmt::format("cannot write TensorBoard events to '{}': {}; no more are written for job '{}'",
                    run.path, std::strerror(errno), job));
  }
}

void TensorBoardWriter::registered(const pb::RegisterRequest& request) {
  if (request.rank() != 0) return;
  std::lock_guard lock(mutex_);
  Run& run = runs_[request.job_id()];
  run.start_pending = true;
  run.world_size = request.world_size();
}

void TensorBoardWriter::steps(const std::string& job, const std::vector<pb::StepRecord>& records) {
  std::lock_guard lock(mutex_);
  Run* run = nullptr;
  for (const pb::StepRecord& r : records) {
    if (r.rank() != 0) continue;
    if (run == nullptr && (run = run_locked(job)) == nullptr) return;
    if (run->start_pending) {
      tensorboard::Event start = scalar_event(r.step(), r.wall_time());
      start.mutable_session_log()->set_status(tensorboard::SessionLog::START);
      write_locked(job, *run, start);
      run->start_pending = false;
    }
    tensorboard::Event event = scalar_event(r.step(), r.wall_time());
    add_scalar(event, "train/loss", r.loss());
    add_scalar(event, "train/accuracy", r.accuracy());
    add_scalar(event, "train/learning_rate", r.learning_rate());
    add_scalar(event, "train/images_per_second", r.images_per_second() * run->world_size);
    write_locked(job, *run, event);
    if (run->failed) return;
  }
}

void TensorBoardWriter::evaluation(const std::string& job, const pb::EvaluationRecord& e) {
  std::lock_guard lock(mutex_);
  Run* run = run_locked(job);
  if (run == nullptr) return;
  tensorboard::Event event = scalar_event(e.step(), e.wall_time());
  add_scalar(event, "test/loss", e.test_loss());
  add_scalar(event, "test/accuracy", e.test_accuracy());
  for (int c = 0; c < e.precision_size(); ++c) {
    add_scalar(event, fmt::format("test/precision/{}", c), e.precision(c));
  }
  for (int c = 0; c < e.recall_size(); ++c) {
    add_scalar(event, fmt::format("test/recall/{}", c), e.recall(c));
  }
  write_locked(job, *run, event);
}

void TensorBoardWriter::sync() {
  std::lock_guard lock(mutex_);
  const double now = wall_seconds();
  for (auto& [job, run] : runs_) {
    if (run.file == nullptr) continue;
    if (!run.failed && std::fflush(run.file) != 0) {
      run.failed = true;
      warn_(
          fmt::format("cannot write TensorBoard events to '{}': {}; no more are written for "
                      "job '{}'",
                      run.path, std::strerror(errno), job));
    }
    if (run.failed || now - run.last_write > kIdleSeconds) {
      std::fclose(run.file);
      run.file = nullptr;
    }
  }
}

}  // namespace convoy
