// Re-measures the rule in core/implementation_choice.h on the CPU at hand: times max pooling for
// training (forward with the argmax workspace, as a training step runs it) with every
// implementation oneDNN 2.6 offers for the shape, and prints one JSON line per shape with each
// implementation's median milliseconds, oneDNN's first choice and the one convoy picks.
//
//   build/tests/bench/pooling_choice_bench [--threads 2] [--repeats 200]
//   ONEDNN_MAX_CPU_ISA=AVX2 build/tests/bench/pooling_choice_bench   # as an AVX2-only CPU would
#include <fmt/format.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "bench_flags.h"
#include "core/implementation_choice.h"
#include "core/stopwatch.h"

namespace {

using namespace dnnl;
using tag = memory::format_tag;

// Median milliseconds of `repeats` runs of `pd` on `src` (after a few untimed ones).
double median_ms(const engine& eng, stream& s, const pooling_forward::primitive_desc& pd,
                 const memory& src, int repeats) {
  memory dst(pd.dst_desc(), eng), workspace(pd.workspace_desc(), eng);
  pooling_forward prim(pd);
  std::vector<double> times;
  for (int i = 0; i < repeats + 5; ++i) {
    const convoy::Stopwatch run;
    prim.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, workspace}});
    s.wait();
    if (i >= 5) times.push_back(run.milliseconds());
  }
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Max-pooling implementation choice, measured");
  int threads = 2, repeats = 200;
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "Timed runs per implementation")->check(CLI::PositiveNumber);
  if (const auto exit_code = convoy::bench::parse_flags(app, argc, argv)) return *exit_code;
  omp_set_num_threads(threads);

  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  // fashion_cnn's and lenet5's first pooling layers (batch 64, 2x2 windows), in the blocked
  // layout the convolution before them produces (oneDNN picks the block for this CPU).
  const std::vector<memory::dims> shapes = {{64, 32, 28, 28}, {64, 6, 28, 28}, {64, 64, 14, 14}};
  for (const memory::dims& shape : shapes) {
    const memory::desc any(shape, memory::data_type::f32, tag::any);
    const memory::desc plain(shape, memory::data_type::f32, tag::nchw);
    // The layout a 3x3 convolution would hand over: let oneDNN choose it for this shape.
    const convolution_forward::desc conv_desc(
        prop_kind::forward_training, algorithm::convolution_direct,
        memory::desc({shape[0], shape[1], shape[2], shape[3]}, memory::data_type::f32, tag::any),
        memory::desc({shape[1], shape[1], 3, 3}, memory::data_type::f32, tag::any),
        memory::desc({shape[1]}, memory::data_type::f32, tag::x), any, {1, 1}, {1, 1}, {1, 1});
    const memory::desc src_desc = convolution_forward::primitive_desc(conv_desc, eng).dst_desc();
    memory src(src_desc, eng);
    std::vector<float> values(static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]));
    for (size_t i = 0; i < values.size(); ++i) values[i] = float((i * 2654435761u) % 1000) * 1e-3f;
    memory plain_src(plain, eng, values.data());
    reorder(plain_src, src).execute(s, plain_src, src);
    s.wait();

    const memory::dims out = {shape[0], shape[1], shape[2] / 2, shape[3] / 2};
    const pooling_forward::desc desc(prop_kind::forward_training, algorithm::pooling_max, src_desc,
                                     memory::desc(out, memory::data_type::f32, tag::any), {2, 2},
                                     {2, 2}, {0, 0}, {0, 0});
    nlohmann::json line = {
        {"shape", shape}, {"threads", threads}, {"ms", nlohmann::json::object()}};
    pooling_forward::primitive_desc candidate(desc, eng);
    line["onednn_first_choice"] = candidate.impl_info_str();
    do {
      line["ms"][candidate.impl_info_str()] = median_ms(eng, s, candidate, src, repeats);
    } while (candidate.next_impl());
    line["convoy_choice"] =
        convoy::max_pooling_forward_for_training(desc, primitive_attr(), eng).impl_info_str();
    fmt::print("{}\n", line.dump());
  }
  return 0;
}
