// What the fuzz targets (tests/fuzz/*_fuzz.cc) share. Each target defines LLVMFuzzerTestOneInput;
// it is linked either with libFuzzer (CONVOY_FUZZ, clang) to search for inputs, or with
// replay_main.cc to run its saved inputs once each (any compiler; ctest does this every build).
//
// The contract every target checks: outside input is refused with convoy::Error (which becomes
// the one-line message and exit code users see). Any other exception escapes the target and is
// reported as a crash, like a sanitizer finding, a timeout or a memory limit exceeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/file_system.h"
#include "core/model_spec.h"

namespace convoy::fuzz {

// A file in this process's scratch directory (created on first use, removed at exit).
std::string scratch_path(const std::string& name);
// Writes `bytes` there and returns the path.
std::string write_scratch(const std::string& name, std::string_view bytes);

// Runs `body`, accepting convoy::Error as the right answer to bad input.
template <typename F>
void refused_or_accepted(F&& body) {
  try {
    body();
  } catch (const Error&) {
  }
}

// The local file system without fsync: targets that write state (the coordinator's files) test
// parsing, not durability, and fsync would slow the search a hundredfold.
FileSystem& file_system_without_sync();

// Whether a validated model is small enough to build in a fuzz target (its layers at batch 2, and
// their number): building larger ones measures oneDNN, not convoy's parsing, and slows the search.
bool small_enough_to_build(const ModelPlan& plan);

// A small valid model (Fashion-MNIST's input shape, 170 parameters) and a checkpoint of it, for
// the targets that need something real to start from.
extern const char* const kTinyModelText;
std::string tiny_checkpoint_bytes();

}  // namespace convoy::fuzz
