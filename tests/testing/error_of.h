// What a call throws, for tests of bad input.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "core/error.h"

namespace convoy::testing {

// The kind of the convoy::Error that `f` throws, or nothing when it throws none.
inline std::optional<ErrorKind> kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  return std::nullopt;
}

// The one-line message of the convoy::Error that `f` throws, or "" when it throws none. Bad input
// must be reported as the user's (exit code 2), never as a failure of the machine: a kind of I/O,
// unavailable or internal fails the test.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_TRUE(e.kind() != ErrorKind::kIo && e.kind() != ErrorKind::kUnavailable &&
                e.kind() != ErrorKind::kInternal)
        << kind_name(e.kind()) << ": " << e.what();
    return e.what();
  }
  return "";
}

// Where Debian's dataset-fashion-mnist package puts the data set (deploy/install-deps.sh).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace convoy::testing
