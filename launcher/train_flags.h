// Every flag of `convoy train`, defined once in one table: its name, help, check, whether the
// ranks of a job must agree on it, and its key in the start event. The default is the member's
// initializer in TrainCommand (launcher/commands.h). Derived from the table: the CLI registration,
// the fingerprint the ranks compare before training (dist/replica_sync.h), and the flag values in
// the `{"event":"start"}` line.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/dataset.h"
#include "dist/replica_sync.h"
#include "dist/training_session.h"
#include "launcher/commands.h"
#include "proto/model.pb.h"

namespace convoy {

struct TrainFlag {
  using Ref = std::variant<std::string*, int64_t*, uint64_t*, int*, double*, bool*>;
  const char* name;  // "--lr"
  const char* help;
  Ref (*field)(TrainCommand&);  // where the value lives
  std::optional<CLI::Validator> check = std::nullopt;
  bool show_default = true;         // in --help ("--max-steps" has none worth showing)
  bool ranks_agree = false;         // part of the fingerprint the ranks compare
  const char* event_key = nullptr;  // in the start event; null: not reported there
};

const std::vector<TrainFlag>& train_flags();

// Registers every flag of the table on `app`, writing into `cmd`.
void add_train_flags(CLI::App& app, TrainCommand& cmd);
// The `train` subcommand of `app`: --model, the data, thread and training flags.
CLI::App* add_train_command(CLI::App& app, TrainCommand& cmd);
// The flags the command line did not give, from the model's `train { ... }` block (each field the
// default of the flag of the same name). Values are checked as on the command line; Error
// (invalid input) naming `model` and the field otherwise.
TrainCommand with_model_defaults(const TrainCommand& cmd, const pb::TrainSpec& defaults,
                                 const std::string& model);
// Parses train's flags (what follows `train` on a command line) as `convoy train` would; Error
// (invalid input) with CLI11's message otherwise. For launchers that check before they start.
TrainCommand parse_train_args(const std::vector<std::string>& args);
// A CLI11 parse error's message on one line.
std::string one_line(const CLI::ParseError& error);
// Everything the ranks must agree on: the version, the model (with a CRC of its spec), the data
// set's name and sizes, the table's flags marked ranks_agree, by flag name with their values, and
// the augmentation they add up to.
JobFingerprint train_fingerprint(const TrainCommand& cmd, const pb::ModelSpec& spec,
                                 const Dataset& train, const Dataset& test);
// A training session's settings from the flags (the model's augmentation overridden by
// --random-crop, --flip and --no-augment; the coordinator's token and CA read from their files).
TrainingSessionOptions training_session_options(const TrainCommand& cmd, const pb::ModelSpec& spec,
                                                const std::string& dataset);
// The flags with an event key, with their values.
nlohmann::json train_flags_event(const TrainCommand& cmd);

}  // namespace convoy
