// Times the all-reduce convoy's gradients go through (MpiCommunicator::allreduce_sum of floats)
// for message sizes from 64 KiB (a gradient bucket's order of size, where Open MPI's TCP transport
// has left its eager protocol for messages that wait for the receiver) up, and fits the alpha-beta
// model of a ring all-reduce to them:
//
//   t(n) = 2 (p - 1) alpha + 2 (p - 1) / p * n * beta        (n bytes, p ranks)
//
// by least squares of the relative error over the sizes (weights 1 / t^2: small messages, which
// decide alpha, count as much as large ones). Prints one JSON line on rank 0: the median
// milliseconds per size, alpha (ms per message) and the effective bandwidth 1 / beta (bytes per
// ms). tests/bench/emulated_network.py runs it on each emulated link.
//
//   mpirun -np 2 build/tests/bench/allreduce_bench [--min-kb 64] [--max-mb 16] [--repeats 15]
//       [--gap-ms 0] [--no-sync]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "bench_flags.h"
#include "core/stopwatch.h"
#include "dist/mpi_communicator.h"

namespace {

// Median of `repeats` timed all-reduces of `floats` values (after two untimed ones), agreed by
// the ranks: each takes the slowest rank's time of every repeat. Before each, every rank computes
// (spins) for `gap_ms`, as a training step computes between its all-reduces, then (with `sync`)
// all-reduce one value so that the ranks start together. Without it a rank starts when it gets
// there, and nothing else goes over the network between the timed all-reduces (the times are
// agreed after the last), as in training.
double median_ms(convoy::Communicator& comm, size_t floats, int repeats, double gap_ms, bool sync) {
  std::vector<float> values(floats, 1.f);
  const auto ranks = static_cast<size_t>(comm.size());
  std::vector<double> took(static_cast<size_t>(repeats) * ranks, 0.0);  // [repeat][rank]
  for (int i = 0; i < repeats + 2; ++i) {
    for (const convoy::Stopwatch gap; gap.milliseconds() < gap_ms;) {
    }
    std::vector<double> zero(1, 0.0);
    if (sync) comm.allreduce_sum(std::span<double>(zero));  // start together
    const convoy::Stopwatch run;
    comm.allreduce_sum(std::span<float>(values));
    const double ms = run.milliseconds();
    if (i >= 2) took[static_cast<size_t>(i - 2) * ranks + static_cast<size_t>(comm.rank())] = ms;
  }
  comm.allreduce_sum(std::span<double>(took));
  std::vector<double> times;
  for (size_t r = 0; r < static_cast<size_t>(repeats); ++r) {
    times.push_back(
        *std::max_element(took.begin() + long(r * ranks), took.begin() + long((r + 1) * ranks)));
  }
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Times all-reduces of growing size and fits alpha and beta");
  double min_kb = 64, max_mb = 16;
  int repeats = 15;
  double gap_ms = 0;
  bool sync = true;
  // The last value given wins, so that a wrapper's defaults can be overridden after them.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--min-kb", min_kb, "Smallest message, KiB")->check(CLI::Range(1.0, 1e6));
  app.add_option("--max-mb", max_mb, "Largest message, MiB")->check(CLI::Range(0.01, 1024.0));
  app.add_option("--repeats", repeats, "Timed all-reduces per size")->check(CLI::Range(3, 10000));
  app.add_option("--gap-ms", gap_ms, "Computation before each all-reduce, ms")
      ->check(CLI::Range(0.0, 10000.0));
  app.add_flag("!--no-sync", sync,
               "No small all-reduce between the pause and the timed all-reduce");
  if (const auto exit_code = convoy::bench::parse_flags(app, argc, argv)) return *exit_code;
  // Whole floats, and at least two sizes to fit a line through.
  const size_t smallest = static_cast<size_t>(min_kb * 1024) / sizeof(float) * sizeof(float);
  const auto largest = static_cast<size_t>(max_mb * (1 << 20));
  if (smallest == 0 || 2 * smallest > largest) {
    fmt::print(stderr, "allreduce_bench: --min-kb {} and --max-mb {} give fewer than two sizes\n",
               min_kb, max_mb);
    return 2;
  }
  const convoy::MpiRuntime runtime(&argc, &argv);
  convoy::MpiCommunicator comm;
  const double p = comm.size();
  nlohmann::json sizes = nlohmann::json::array();
  // Weighted least squares of t = a * x + b with x = 2 (p - 1) / p * n, b = 2 (p - 1) alpha.
  double sx = 0, sy = 0, sxx = 0, sxy = 0, sw = 0;
  for (size_t bytes = smallest; bytes <= largest; bytes *= 2) {
    const double ms = median_ms(comm, bytes / sizeof(float), repeats, gap_ms, sync);
    sizes.push_back({{"bytes", bytes}, {"ms", ms}});
    const double x = 2 * (p - 1) / p * double(bytes);
    const double w = 1.0 / std::max(ms * ms, 1e-12);
    sw += w;
    sx += w * x;
    sy += w * ms;
    sxx += w * x * x;
    sxy += w * x * ms;
  }
  const double slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);  // beta, ms per byte
  const double intercept = (sy - slope * sx) / sw;
  if (comm.rank() == 0) {
    const nlohmann::json line = {{"ranks", comm.size()},
                                 {"sizes", sizes},
                                 {"alpha_ms", intercept / (2 * (p - 1))},
                                 {"bytes_per_ms", slope > 0 ? 1.0 / slope : 0.0}};
    fmt::print("{}\n", line.dump());
  }
  return 0;
}
