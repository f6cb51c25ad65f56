// Checks and options that several `convoy` commands share.
#pragma once

#include <CLI/CLI.hpp>

#include "launcher/commands.h"

namespace convoy {

// A finite number above zero (CLI::PositiveNumber lets "nan" through), or at least zero.
const CLI::Validator& positive_number();
const CLI::Validator& non_negative_number();

// --dataset, --data, --limit-test (train adds --limit-train).
void add_data_flags(CLI::App* app, DataOptions& data);
void add_threads_flag(CLI::App* app, int& threads);

}  // namespace convoy
