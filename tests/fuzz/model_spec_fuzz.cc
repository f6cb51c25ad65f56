// Model descriptions (.pbtxt) through parsing, spec validation and the memory check, as
// `convoy train --model FILE` reads them; a small valid one is also built into a model with its
// oneDNN primitives and run forward and backward once, since layer construction reads the spec
// too.
#include <cstdlib>
#include <vector>

#include "core/model.h"
#include "core/model_spec.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  convoy::fuzz::refused_or_accepted([&] {
    const convoy::pb::ModelSpec spec = convoy::parse_model_text(text, "fuzz.pbtxt");
    const convoy::ModelPlan plan = convoy::plan_model(spec, "fuzz.pbtxt");
    convoy::check_model_fits(plan, 64, /*training=*/true, "fuzz.pbtxt");
    if (!convoy::fuzz::small_enough_to_build(plan)) return;
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    convoy::Model model(spec, 2, engine, convoy::Model::Mode::kTrain, "fuzz.pbtxt");
    std::vector<float> input(static_cast<size_t>(2 * model.sample_size()), 0.5f);
    model.set_input(input);
    model.forward(stream);
    const std::vector<int32_t> labels(2, model.num_classes() - 1);
    model.loss(stream, labels, 2);
    model.backward(stream);
    stream.wait();
  });
  return 0;
}
