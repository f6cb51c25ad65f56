// The one-line message of the convoy::Error that `f` throws, or "" when it throws none.
#pragma once

#include <functional>
#include <string>

#include "core/error.h"

namespace convoy::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Where Debian's dataset-fashion-mnist package puts the data set (deploy/install-deps.sh).
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

}  // namespace convoy::testing
