// convoy models [NAME]: list the built-in models with their layer shapes, or print one as .pbtxt.
#include <fmt/format.h>

#include "core/error.h"
#include "core/model_spec.h"
#include "launcher/commands.h"

namespace convoy {

int run_models(const ModelsCommand& cmd) {
  if (!cmd.name.empty()) {
    const std::string text = builtin_model_text(cmd.name);
    if (text.empty()) {
      throw Error::invalid_input(fmt::format("models: unknown model '{}' (built-in: {})", cmd.name,
                                             fmt::join(builtin_model_names(), ", ")));
    }
    fmt::print("{}", text);
    return 0;
  }
  for (const std::string& name : builtin_model_names()) {
    const pb::ModelSpec spec = load_model_spec(name);
    const ModelPlan plan = plan_model(spec, name);
    fmt::print("{}: input {}, {} classes\n", name, plan.input.str(), plan.num_classes);
    for (const LayerPlan& layer : plan.layers) {
      fmt::print("  {:<8} {:<10} -> {}\n", layer.name, layer.spec->type(), layer.out.str());
    }
  }
  return 0;
}

}  // namespace convoy
