#include "testing/gradient_check.h"

#include <cmath>

namespace convoy::testing {

::testing::AssertionResult gradient_matches(const std::string& what, std::vector<float> x,
                                            const std::function<void(std::span<const float>)>& set,
                                            const std::function<double()>& f,
                                            std::span<const float> analytic,
                                            const GradientCheckOptions& options) {
  if (analytic.size() != x.size()) {
    return ::testing::AssertionFailure()
           << what << ": gradient has " << analytic.size() << " elements, x has " << x.size();
  }
  int failures = 0;
  size_t kinks = 0;
  std::string report;
  double max_abs_gradient = 0.0;
  const double center = options.max_kink_fraction > 0 ? (set(x), f()) : 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float original = x[i];
    x[i] = original + static_cast<float>(options.epsilon);
    set(x);
    const double up = f();
    x[i] = original - static_cast<float>(options.epsilon);
    set(x);
    const double down = f();
    x[i] = original;
    // The step actually taken in float, not the nominal epsilon.
    const double step = double(original + static_cast<float>(options.epsilon)) -
                        double(original - static_cast<float>(options.epsilon));
    const double numeric = (up - down) / step;
    const double a = analytic[i];
    if (options.max_kink_fraction > 0) {
      const double forward = (up - center) / (step / 2), backward = (center - down) / (step / 2);
      if (std::abs(forward - backward) >
          2 * (options.abs_tolerance + options.rel_tolerance * std::abs(numeric))) {
        ++kinks;
        continue;
      }
    }
    max_abs_gradient = std::max(max_abs_gradient, std::abs(numeric));
    if (std::abs(a - numeric) > options.abs_tolerance + options.rel_tolerance * std::abs(numeric)) {
      if (++failures <= 5) {
        report += "\n  [" + std::to_string(i) + "] analytic " + std::to_string(a) + " numeric " +
                  std::to_string(numeric);
      }
    }
  }
  set(x);
  if (double(kinks) > options.max_kink_fraction * double(x.size())) {
    return ::testing::AssertionFailure() << what << ": " << kinks << " of " << x.size()
                                         << " elements straddle a kink, more than allowed";
  }
  if (failures > 0) {
    return ::testing::AssertionFailure() << what << ": " << failures << " of " << x.size()
                                         << " gradient elements differ" << report;
  }
  // A gradient that is zero everywhere would pass trivially; the checks are meant to see signal.
  if (max_abs_gradient < 10 * options.abs_tolerance) {
    return ::testing::AssertionFailure()
           << what << ": gradient too small to check (max |numeric| " << max_abs_gradient << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace convoy::testing
