// Pieces several commands share: loading and checking data sets, checking that an
// output path can be written before spending time on work.
#pragma once

#include <string>

#include "commands.h"
#include "dataset.h"
#include "mnist.h"
#include "model_spec.h"

namespace convoy {

// Loads one split of the data set `data` describes; checks that its samples have the model's
// input shape and that its labels fit the model's classes. Errors name --data.
Dataset load_split(const DataOptions& data, Split split, const ModelPlan& plan,
                   const std::string& model_name);

// Throws InputError naming `flag` when `path`'s directory does not exist or is not writable.
void check_writable(const std::string& path, const std::string& flag);

}  // namespace convoy
