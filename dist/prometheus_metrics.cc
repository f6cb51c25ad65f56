#include "dist/prometheus_metrics.h"

#include <fmt/format.h>
#include <grpcpp/support/status_code_enum.h>

#include <algorithm>

#include "dist/job_registry.h"

namespace convoy {

namespace {

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string escaped(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

const char* code_name(int code) {
  static const char* names[] = {"OK",
                                "CANCELLED",
                                "UNKNOWN",
                                "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED",
                                "NOT_FOUND",
                                "ALREADY_EXISTS",
                                "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION",
                                "ABORTED",
                                "OUT_OF_RANGE",
                                "UNIMPLEMENTED",
                                "INTERNAL",
                                "UNAVAILABLE",
                                "DATA_LOSS",
                                "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? names[code] : "UNKNOWN";
}

// One metric family: HELP and TYPE, then its samples.
class Family {
 public:
  Family(std::string& out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& labels, double value, const char* suffix = "") {
    out_ += fmt::format("{}{}{{{}}} {}\n", name_, suffix, labels, value);
  }

 private:
  std::string& out_;
  const char* name_;
};

std::string job_label(const pb::JobStatus& s) {
  return fmt::format("job_id=\"{}\"", escaped(s.job_id()));
}
std::string rank_labels(const pb::JobStatus& s, const pb::RankStatus& r) {
  return fmt::format("job_id=\"{}\",rank=\"{}\",host=\"{}\"", escaped(s.job_id()), r.rank(),
                     escaped(r.host()));
}

}  // namespace

void SecondsHistogram::observe(double seconds) {
  const auto bucket = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  if (bucket != kBounds.end()) ++counts[static_cast<size_t>(bucket - kBounds.begin())];
  ++count;
  sum += seconds;
}

std::string prometheus_metrics(const CoordinatorSnapshot& snapshot, double now) {
  std::string out;
  const auto per_job = [&](const char* name, const char* type, const char* help, auto value,
                           bool (*present)(const CoordinatorSnapshot::Job&) = nullptr) {
    Family f(out, name, type, help);
    for (const CoordinatorSnapshot::Job& j : snapshot.jobs) {
      if (present == nullptr || present(j)) f.sample(job_label(j.status), value(j));
    }
  };
  const auto per_rank = [&](const char* name, const char* help, auto value,
                            const char* type = "gauge") {
    Family f(out, name, type, help);
    for (const CoordinatorSnapshot::Job& j : snapshot.jobs) {
      for (const pb::RankStatus& r : j.status.rank()) f.sample(rank_labels(j.status, r), value(r));
    }
  };
  // Rank 0's latest step record: the loss and accuracy of the job's global batch.
  const auto rank0 = [](const CoordinatorSnapshot::Job& j) -> const pb::StepRecord& {
    for (const pb::RankStatus& r : j.status.rank()) {
      if (r.rank() == 0) return r.latest();
    }
    return pb::StepRecord::default_instance();
  };
  const auto evaluated = [](const CoordinatorSnapshot::Job& j) {
    return j.status.has_latest_evaluation();
  };

  per_job("convoy_world_size", "gauge", "Ranks of the job as last registered",
          [](const auto& j) { return double(j.status.world_size()); });
  per_job("convoy_training_step", "gauge", "Optimizer steps taken (the furthest rank)",
          [](const auto& j) {
            int64_t step = 0;
            for (const pb::RankStatus& r : j.status.rank()) step = std::max(step, r.step());
            return double(step);
          });
  per_job("convoy_training_loss", "gauge", "Training loss of the latest global batch",
          [&](const auto& j) { return rank0(j).loss(); });
  per_job("convoy_training_accuracy", "gauge", "Training accuracy of the latest global batch",
          [&](const auto& j) { return rank0(j).accuracy(); });
  per_job("convoy_job_images_per_second", "gauge", "Training throughput of the live ranks together",
          [](const auto& j) { return j.status.images_per_second(); });
  per_job(
      "convoy_test_accuracy", "gauge", "Test accuracy of the latest evaluation",
      [](const auto& j) { return j.status.latest_evaluation().test_accuracy(); }, evaluated);
  per_job(
      "convoy_test_loss", "gauge", "Test loss of the latest evaluation",
      [](const auto& j) { return j.status.latest_evaluation().test_loss(); }, evaluated);
  per_job("convoy_step_records", "gauge", "Step records stored for the job",
          [](const auto& j) { return double(j.status.records()); });
  per_job("convoy_checkpoints_stored", "gauge", "Valid checkpoints stored for the job",
          [](const auto& j) { return double(j.checkpoints); });
  per_job("convoy_checkpoints_stored_bytes", "gauge", "Bytes of the valid checkpoints stored",
          [](const auto& j) { return double(j.checkpoint_bytes); });
  per_job("convoy_restarts_total", "counter", "Restarts launchers reported for the job",
          [](const auto& j) { return double(j.status.restarts()); });

  const auto histogram = [&](const char* name, const char* help, auto of) {
    Family f(out, name, "histogram", help);
    for (const CoordinatorSnapshot::Job& j : snapshot.jobs) {
      const SecondsHistogram& h = of(j);
      const std::string label = job_label(j.status);
      uint64_t cumulative = 0;
      for (size_t b = 0; b < h.kBounds.size(); ++b) {
        cumulative += h.counts[b];
        f.sample(fmt::format("{},le=\"{}\"", label, h.kBounds[b]), double(cumulative), "_bucket");
      }
      f.sample(label + ",le=\"+Inf\"", double(h.count), "_bucket");
      f.sample(label, h.sum, "_sum");
      f.sample(label, double(h.count), "_count");
    }
  };
  histogram("convoy_step_duration_seconds", "Duration of training steps, every rank's",
            [](const auto& j) -> const SecondsHistogram& { return j.step_seconds; });
  histogram("convoy_allreduce_wait_seconds",
            "Time training steps waited for the gradient all-reduce, every rank's",
            [](const auto& j) -> const SecondsHistogram& { return j.allreduce_seconds; });

  per_rank("convoy_images_per_second", "Training throughput of the rank (its latest record)",
           [](const pb::RankStatus& r) { return r.latest().images_per_second(); });
  per_rank("convoy_last_step_seconds", "Duration of the rank's latest step",
           [](const pb::RankStatus& r) { return r.latest().step_seconds(); });
  per_rank("convoy_last_allreduce_seconds", "Time the rank's latest step waited in all-reduce",
           [](const pb::RankStatus& r) { return r.latest().allreduce_seconds(); });
  per_rank(
      "convoy_records_dropped_total",
      "Step records the rank dropped while the coordinator was away",
      [](const pb::RankStatus& r) { return double(r.records_dropped()); }, "counter");
  per_rank("convoy_rank_last_heartbeat_timestamp_seconds",
           "When the rank's latest heartbeat arrived (Unix time)",
           [&](const pb::RankStatus& r) { return now - r.seconds_since_heartbeat(); });
  {
    Family f(out, "convoy_rank_state", "gauge",
             "1 for the rank's state (alive, stalled, gone), 0 for the others");
    for (const CoordinatorSnapshot::Job& j : snapshot.jobs) {
      for (const pb::RankStatus& r : j.status.rank()) {
        for (const pb::RankStatus::State state :
             {pb::RankStatus::ALIVE, pb::RankStatus::STALLED, pb::RankStatus::GONE}) {
          f.sample(fmt::format("{},state=\"{}\"", rank_labels(j.status, r), rank_state_name(state)),
                   r.state() == state ? 1 : 0);
        }
      }
    }
  }
  {
    Family f(out, "convoy_rpc_requests_total", "counter",
             "Coordinator calls answered, by method and gRPC status code");
    for (const auto& [key, count] : snapshot.calls) {
      f.sample(fmt::format("method=\"{}\",code=\"{}\"", key.first, code_name(key.second)),
               double(count));
    }
  }
  return out;
}

}  // namespace convoy
