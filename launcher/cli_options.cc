#include "launcher/cli_options.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>
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

const CLI::Validator& unsigned_64() {
  static const CLI::Validator v(
      [](const std::string& text) -> std::string {
        uint64_t value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (error == std::errc() && end == text.data() + text.size()) return {};
        return "must be a whole number from 0 to 18446744073709551615, got '" + text + "'";
      },
      "UINT64");
  return v;
}

const CLI::Validator& bucket_mb() {
  static const CLI::Validator v = positive_number() & CLI::Range(0.0, 1048576.0);
  return v;
}

const CLI::Validator& non_empty() {
  static const CLI::Validator v(
      [](const std::string& text) -> std::string {
        return text.empty() ? "must not be empty" : "";
      },
      "NONEMPTY");
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
                  fmt::format("Directory with the data set's files (default {})", kDefaultDataDir))
      ->check(non_empty());
  app->add_option("--limit-test", data.limit_test, "Evaluate on the first N test samples only")
      ->check(positive_number());
}

const CLI::Validator& precision_check() {
  static const CLI::Validator check = CLI::IsMember({"fp32", "bf16", "auto"});
  return check;
}

const CLI::Validator& below_one() {
  static const CLI::Validator check(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || !(v >= 0.0 && v < 1.0)) {
          return "must be a number in [0, 1), not '" + text + "'";
        }
        return {};
      },
      "[0, 1)");
  return check;
}

void add_precision_flag(CLI::App* app, std::string& precision) {
  app->add_option("--precision", precision, kPrecisionHelp)
      ->check(precision_check())
      ->capture_default_str();
}

void add_threads_flag(CLI::App* app, int& threads) {
  app->add_option("--threads", threads, "OpenMP threads (default: all cores)")
      ->check(CLI::Range(1, kMaxThreads));
}

}  // namespace convoy
