// The one gradient checker every layer and model test uses: compares an analytic gradient with
// central finite differences, (f(x + eps) - f(x - eps)) / (2 eps), element by element.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <span>
#include <string>
#include <vector>

namespace convoy::testing {

struct GradientCheckOptions {
  double epsilon = 1e-2;
  double abs_tolerance = 2e-3;
  double rel_tolerance = 2e-2;
  // For functions with kinks (ReLU, max pooling deep in a model, where inputs cannot be kept away
  // from them): an element whose forward and backward one-sided slopes disagree beyond the
  // tolerance straddles a kink, and is skipped instead of compared. At most this fraction of the
  // elements may be skipped; 0 disables the detection.
  double max_kink_fraction = 0.0;
};

// `x` is the point; `set(x')` installs x' wherever f reads it; `f()` evaluates the scalar
// function at the installed point. `analytic` is df/dx at x. Restores x before returning.
::testing::AssertionResult gradient_matches(const std::string& what, std::vector<float> x,
                                            const std::function<void(std::span<const float>)>& set,
                                            const std::function<double()>& f,
                                            std::span<const float> analytic,
                                            const GradientCheckOptions& options = {});

}  // namespace convoy::testing
