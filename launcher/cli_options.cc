#include "launcher/cli_options.h"

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace convoy {

namespace {

CLI::Validator finite_number(bool allow_zero) {
  return CLI::Validator(
      [allow_zero](const std::string& text) -> std::string {
        try {
          const double v = std::stod(text);
          if (std::isfinite(v) && (v > 0 || (allow_zero && v == 0))) return {};
        } catch (const std::exception&) {
        }
        return (allow_zero ? "must be a number >= 0, got '" : "must be a positive number, got '") +
               text + "'";
      },
      allow_zero ? "NONNEGATIVE" : "POSITIVE");
}

}  // namespace

const CLI::Validator& positive_number() {
  static const CLI::Validator v = finite_number(false);
  return v;
}

const CLI::Validator& non_negative_number() {
  static const CLI::Validator v = finite_number(true);
  return v;
}

void add_data_flags(CLI::App* app, DataOptions& data) {
  app->add_option_function<std::string>(
         "--dataset",
         [&data](const std::string& value) {
           data.dataset = value;
           data.dataset_given = true;
         },
         "Data set format: fashion-mnist, mnist (IDX files), cifar10 (binary batches) "
         "or npy ({train,test}_{x,y}.npy)")
      ->check(CLI::IsMember({"fashion-mnist", "mnist", "cifar10", "npy"}))
      ->default_str("fashion-mnist");
  app->add_option("--data", data.dir,
                  fmt::format("Directory with the data set's files (default {})", kDefaultDataDir));
  app->add_option("--limit-test", data.limit_test, "Evaluate on the first N test samples only")
      ->check(positive_number());
}

void add_threads_flag(CLI::App* app, int& threads) {
  app->add_option("--threads", threads, "OpenMP threads (default: all cores)")
      ->check(positive_number());
}

}  // namespace convoy
