// The final report of `convoy train` and `convoy evaluate`: a table on stdout, or with --log-json
// the JSON line {"event":"final", "test_accuracy", "test_loss", "precision", "recall", "f1",
// "confusion_matrix", "world_size", and for training "train_images_per_second", "epochs", "steps"}.
#pragma once

#include <string>
#include <vector>

#include "core/trainer.h"

namespace convoy {

// `training` is null for evaluate; `world_size` is the number of processes that did the work.
void print_final_report(const EvalResult& result, const std::vector<std::string>& class_names,
                        const TrainSummary* training, int world_size, bool json);

}  // namespace convoy
