// The final report of `convoy train` and `convoy evaluate`: a table on stdout, or with --log-json
// the JSON line {"event":"final", "test_accuracy", "test_loss", "precision", "recall", "f1",
// "confusion_matrix", and for training "train_images_per_second", "epochs", "steps"}.
#pragma once

#include <string>
#include <vector>

#include "trainer.h"

namespace convoy {

// `training` is null for evaluate.
void print_final_report(const EvalResult& result, const std::vector<std::string>& class_names,
                        const TrainSummary* training, bool json);

}  // namespace convoy
