#include "dist/dashboard_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "dist/coordinator_service.h"
#include "dist/job_registry.h"

namespace convoy {

namespace {

using nlohmann::json;

// JSON has no NaN or infinity: those become null.
json number(double value) {
  return std::isfinite(value) ? json(value) : json(nullptr);
}

constexpr int kMaxConfusionClasses = 100;

// A chart's value to 6 significant digits: the shortest form of the rounded double is short, and
// halves the series' bytes against full precision (no chart shows the difference).
json chart_value(double value) {
  if (!std::isfinite(value)) return nullptr;
  return std::strtod(fmt::format("{:.6g}", value).c_str(), nullptr);
}

// The job's line in the list; `series` gives the recent pace for the ETA.
json summary(const pb::JobStatus& status, const std::vector<StepSeries::Point>& series) {
  int64_t step = 0, total = 0;
  bool alive = false, stalled = false;
  for (const pb::RankStatus& r : status.rank()) {
    step = std::max(step, r.step());
    total = std::max(total, r.latest().total_steps());
    alive = alive || r.state() == pb::RankStatus::ALIVE;
    stalled = stalled || r.state() == pb::RankStatus::STALLED;
  }
  const bool finished = total > 0 && step >= total;
  const char* state = finished ? "finished" : alive ? "running" : stalled ? "stalled" : "gone";
  // The pace over the last minute of points (or all of them, if younger): steps per second.
  json eta = nullptr;
  if (!finished && total > 0 && series.size() >= 2) {
    const StepSeries::Point& last = series.back();
    auto first = series.begin();
    while (first + 2 < series.end() && last.wall_time - first->wall_time > 60) ++first;
    const double seconds = last.wall_time - first->wall_time;
    const double steps = double(last.last_step - first->last_step);
    if (seconds > 0 && steps > 0) eta = number(double(total - step) * seconds / steps);
  }
  json line = {
      {"job_id", status.job_id()},
      {"state", state},
      {"world_size", status.world_size()},
      {"step", step},
      {"total_steps", total},
      {"progress", total > 0 ? number(std::min(1.0, double(step) / double(total))) : json()},
      {"eta_seconds", eta},
      {"images_per_second", number(status.images_per_second())},
      {"restarts", status.restarts()},
      {"records", status.records()},
      {"test_accuracy", nullptr}};
  if (status.has_latest_evaluation()) {
    line["test_accuracy"] = number(status.latest_evaluation().test_accuracy());
  }
  return line;
}

json evaluation_json(const pb::EvaluationRecord& e) {
  json per_class = json::array();
  for (int c = 0; c < e.precision_size() && c < e.recall_size(); ++c) {
    const double p = e.precision(c), r = e.recall(c);
    per_class.push_back({{"class", c},
                         {"precision", number(p)},
                         {"recall", number(r)},
                         {"f1", number(p + r > 0 ? 2 * p * r / (p + r) : 0.0)}});
  }
  json confusion = json::array();
  const int classes = e.precision_size();
  // A heat map of more classes than this is neither readable nor cheap to send every 2 seconds.
  if (classes <= kMaxConfusionClasses && e.confusion_size() == classes * classes) {
    for (int t = 0; t < classes; ++t) {
      json row = json::array();
      for (int p = 0; p < classes; ++p) row.push_back(e.confusion(t * classes + p));
      confusion.push_back(std::move(row));
    }
  }
  return {{"epoch", e.epoch()},
          {"step", e.step()},
          {"test_accuracy", number(e.test_accuracy())},
          {"test_loss", number(e.test_loss())},
          {"wall_time", number(e.wall_time())},
          {"per_class", std::move(per_class)},
          {"confusion", std::move(confusion)}};
}

}  // namespace

json dashboard_jobs(CoordinatorService& service) {
  json jobs = json::array();
  for (const std::string& id : service.jobs()) {
    pb::JobStatus status;
    if (service.job_status(id, &status)) {
      jobs.push_back(summary(status, service.metrics().series(id)));
    }
  }
  return {{"jobs", std::move(jobs)}};
}

json dashboard_job(CoordinatorService& service, const std::string& id) {
  pb::JobStatus status;
  if (id.empty() || !service.job_status(id, &status)) return nullptr;
  const std::vector<StepSeries::Point> series = service.metrics().series(id);
  json job = summary(status, series);
  job["command_line"] =
      json(std::vector<std::string>(status.command_line().begin(), status.command_line().end()));
  json ranks = json::array();
  for (const pb::RankStatus& r : status.rank()) {
    const pb::StepRecord& latest = r.latest();
    ranks.push_back(
        {{"rank", r.rank()},
         {"host", r.host()},
         {"pid", r.pid()},
         {"state", rank_state_name(r.state())},
         {"step", r.step()},
         {"seconds_since_heartbeat", number(r.seconds_since_heartbeat())},
         {"images_per_second", number(latest.images_per_second())},
         {"allreduce_share", latest.step_seconds() > 0
                                 ? number(latest.allreduce_seconds() / latest.step_seconds())
                                 : json()},
         {"records_dropped", r.records_dropped()}});
  }
  job["ranks"] = std::move(ranks);
  job["last_restart"] = nullptr;
  if (status.has_last_restart()) {
    const pb::RestartRecord& last = status.last_restart();
    job["last_restart"] = {{"rank", last.rank()},
                           {"host", last.host()},
                           {"cause", last.cause()},
                           {"wall_time", number(last.wall_time())}};
  }
  json checkpoints = json::array();
  for (const pb::CheckpointInfo& c : service.list_checkpoints(id)) {
    checkpoints.push_back(
        {{"name", c.name()},
         {"size", c.size()},
         {"epoch", c.epoch()},
         {"step", c.step()},
         {"test_accuracy", c.has_test_accuracy() ? number(c.test_accuracy()) : json()},
         {"stored_time", number(c.stored_time())},
         {"sha256", c.sha256()},
         {"corrupt", c.corrupt()}});
  }
  job["checkpoints"] = std::move(checkpoints);
  job["evaluation"] =
      status.has_latest_evaluation() ? evaluation_json(status.latest_evaluation()) : json();
  // The charts: columns, not objects per point (a third of the bytes).
  json step = json::array(), loss = json::array(), accuracy = json::array(), images = json::array(),
       rate = json::array(), time = json::array();
  for (const StepSeries::Point& p : series) {
    step.push_back(p.last_step);
    loss.push_back(chart_value(p.loss));
    accuracy.push_back(chart_value(p.accuracy));
    images.push_back(chart_value(p.images_per_second));
    rate.push_back(chart_value(p.learning_rate));
    time.push_back(number(std::round(p.wall_time * 10) / 10));  // a tenth of a second
  }
  job["series"] = {{"step", std::move(step)},          {"loss", std::move(loss)},
                   {"accuracy", std::move(accuracy)},  {"images_per_second", std::move(images)},
                   {"learning_rate", std::move(rate)}, {"wall_time", std::move(time)}};
  json evaluations = json::array();
  for (const MetricsStore::EvaluationPoint& e : service.metrics().evaluation_points(id)) {
    evaluations.push_back({{"step", e.step},
                           {"epoch", e.epoch},
                           {"test_accuracy", number(e.test_accuracy)},
                           {"test_loss", number(e.test_loss)}});
  }
  job["evaluations"] = std::move(evaluations);
  return job;
}

}  // namespace convoy
