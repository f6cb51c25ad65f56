// Flag parsing for the benchmarks, with the exit codes convoy's own commands use: --help prints
// and exits 0, a bad flag prints CLI11's message and exits 2 (CLI11_PARSE would exit 105).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>

namespace convoy::bench {

// The exit code to return now, or nothing when the flags parsed and the benchmark should run.
inline std::optional<int> parse_flags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace convoy::bench
