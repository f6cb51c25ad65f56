// Checks and options that several `convoy` commands share.
#pragma once

#include <CLI/CLI.hpp>

#include "launcher/commands.h"

namespace convoy {

// A finite number above zero (CLI::PositiveNumber lets "nan" through), or at least zero.
const CLI::Validator& positive_number();
const CLI::Validator& non_negative_number();
// A whole number in [0, 2^64) written as such: no sign, no wrap-around (CLI11 turns "-1" into
// 2^64-1 and saturates numbers too large).
const CLI::Validator& unsigned_64();
// A gradient bucket size in MiB: positive, at most 1 TiB (larger would overflow the byte count).
const CLI::Validator& bucket_mb();
// A number in [0, 1).
const CLI::Validator& below_one();
// Not the empty string ("--save ''" would otherwise mean "do not save").
const CLI::Validator& non_empty();

// The most OpenMP threads a process may ask for: far above any CPU convoy runs on, and well
// below where the OpenMP runtime itself fails.
inline constexpr int kMaxThreads = 1024;

// --dataset, --data, --limit-test (train adds --limit-train).
void add_data_flags(CLI::App* app, DataOptions& data);
void add_threads_flag(CLI::App* app, int& threads);
// --precision fp32|bf16 (core/precision.h). train declares it in its flag table with this help.
inline constexpr const char* kPrecisionHelp =
    "fp32, or bf16: convolutions and dense layers in bf16 with fp32 master weights (CPUs with "
    "AVX512-BF16 or AMX), or auto: bf16 where it is faster (AMX, or AVX512-BF16 on AMD), fp32 "
    "elsewhere";
const CLI::Validator& precision_check();
void add_precision_flag(CLI::App* app, std::string& precision);

}  // namespace convoy
