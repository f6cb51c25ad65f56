#include "launcher/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace convoy {

void print_final_report(const EvalResult& result, const std::vector<std::string>& class_names,
                        const TrainSummary* training, int world_size, bool json) {
  const ConfusionMatrix& cm = result.confusion;
  if (json) {
    nlohmann::json precision = nlohmann::json::array(), recall = nlohmann::json::array(),
                   f1 = nlohmann::json::array(), matrix = nlohmann::json::array();
    for (int c = 0; c < cm.classes(); ++c) {
      precision.push_back(cm.precision(c));
      recall.push_back(cm.recall(c));
      f1.push_back(cm.f1(c));
      nlohmann::json row = nlohmann::json::array();
      for (int p = 0; p < cm.classes(); ++p) row.push_back(cm.at(c, p));
      matrix.push_back(row);
    }
    nlohmann::json line = {{"event", "final"},
                           {"test_accuracy", cm.accuracy()},
                           {"test_loss", result.loss},
                           {"test_samples", cm.total()},
                           {"precision", precision},
                           {"recall", recall},
                           {"f1", f1},
                           {"classes", class_names},
                           {"confusion_matrix", matrix},
                           {"world_size", world_size}};
    if (training != nullptr) {
      line["train_images_per_second"] = training->images_per_second();
      line["train_seconds"] = training->seconds;
      line["epochs"] = training->epochs;
      line["steps"] = training->steps;
    }
    fmt::print("{}\n", line.dump());
    return;
  }
  fmt::print("\ntest accuracy {:.4f}, test loss {:.4f} ({} samples)\n", cm.accuracy(), result.loss,
             cm.total());
  if (training != nullptr) {
    fmt::print("training: {} epoch(s), {} steps, {:.1f} s, {:.0f} images/s, {} process(es)\n",
               training->epochs, training->steps, training->seconds, training->images_per_second(),
               world_size);
  }
  fmt::print("\n{}", cm.report(class_names));
}

}  // namespace convoy
