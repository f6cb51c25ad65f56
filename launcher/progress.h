// How `convoy train` tells the user where it is.
//   stderr, a terminal:  one progress line redrawn at most 10 times a second
//                        (epoch, step/total, loss, img/s, ETA), and a line per finished epoch.
//   stderr, not a tty:   a plain line every few seconds, and a line per finished epoch.
//   (`convoy train --progress bar|lines|none` overrides the choice, for example under mpirun,
//   whose ranks never see the terminal.)
//   stdout, --log-json:  JSON lines: "step" every `json_every` steps, "epoch" per epoch. (The
//                        command adds "start" and "final".)
#pragma once

#include <chrono>
#include <cstdio>

#include "core/trainer.h"

namespace convoy {

struct ProgressOptions {
  bool json = false;
  bool terminal = false;  // redraw one line (stderr is a terminal) instead of printing lines
  bool quiet = false;     // nothing on stderr but the line per finished epoch
  int64_t epochs = 1;
  int64_t json_every = 50;
  double plain_interval_seconds = 5.0;
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

class ProgressReporter : public TrainObserver {
 public:
  explicit ProgressReporter(ProgressOptions options) : options_(options) {}

  void on_step(const StepStats& s) override;
  void on_epoch(const EpochStats& e) override;

 private:
  using Clock = std::chrono::steady_clock;
  ProgressOptions options_;
  Clock::time_point last_draw_{};
  bool line_open_ = false;  // a progress line is on screen without a newline
};

// "1:05", "12:03:44"
std::string format_duration(double seconds);

}  // namespace convoy
