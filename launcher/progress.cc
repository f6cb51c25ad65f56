#include "launcher/progress.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace convoy {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  const int64_t h = total / 3600, m = total / 60 % 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, s) : fmt::format("{}:{:02}", m, s);
}

void ProgressReporter::on_step(const StepStats& s) {
  if (options_.json && (s.step % options_.json_every == 0 || s.step == s.total_steps)) {
    const nlohmann::json line = {
        {"event", "step"}, {"epoch", s.epoch + 1},   {"step", s.step},
        {"loss", s.loss},  {"accuracy", s.accuracy}, {"images_per_second", s.images_per_second}};
    fmt::print(options_.out, "{}\n", line.dump());
    std::fflush(options_.out);
  }
  if (options_.quiet) return;
  const Clock::time_point now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  const double interval = options_.terminal ? 0.1 : options_.plain_interval_seconds;
  if (since < interval && s.step != s.total_steps) return;
  last_draw_ = now;
  const double eta = s.train_seconds / double(s.step) * double(s.total_steps - s.step);
  const std::string text = fmt::format(
      "epoch {}/{} step {}/{} loss {:.4f} {:.0f} img/s ETA {}", s.epoch + 1, options_.epochs,
      s.step_in_epoch, s.steps_per_epoch, s.loss, s.images_per_second, format_duration(eta));
  if (options_.terminal) {
    constexpr int kWidth = 24;
    const auto filled = static_cast<int>(kWidth * s.step_in_epoch / s.steps_per_epoch);
    fmt::print(options_.err, "\r\033[K[{:=<{}}{:<{}}] {}", "", filled, "", kWidth - filled, text);
    line_open_ = true;
  } else {
    fmt::print(options_.err, "{}\n", text);
  }
  std::fflush(options_.err);
}

void ProgressReporter::on_epoch(const EpochStats& e) {
  if (line_open_) {
    fmt::print(options_.err, "\r\033[K");
    line_open_ = false;
  }
  std::string text = fmt::format("epoch {}/{}: train loss {:.4f} accuracy {:.4f}", e.epoch + 1,
                                 options_.epochs, e.loss, e.accuracy);
  if (e.test) {
    text += fmt::format(" | test loss {:.4f} accuracy {:.4f}", e.test->loss,
                        e.test->confusion.accuracy());
  }
  text += fmt::format(" | {:.0f} img/s, {:.1f} s", e.images_per_second, e.seconds);
  fmt::print(options_.err, "{}\n", text);
  std::fflush(options_.err);
  if (options_.json) {
    nlohmann::json line = {{"event", "epoch"},
                           {"epoch", e.epoch + 1},
                           {"steps", e.steps},
                           {"train_loss", e.loss},
                           {"train_accuracy", e.accuracy},
                           {"images_per_second", e.images_per_second},
                           {"seconds", e.seconds}};
    if (e.test) {
      line["test_loss"] = e.test->loss;
      line["test_accuracy"] = e.test->confusion.accuracy();
    }
    fmt::print(options_.out, "{}\n", line.dump());
    std::fflush(options_.out);
  }
}

}  // namespace convoy
