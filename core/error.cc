#include "error.h"

#include <cstdio>
#include <cstdlib>

namespace convoy {

void check_failed(const char* condition, const char* file, int line) {
  std::fprintf(stderr, "convoy: internal error: %s:%d: check failed: %s\n", file, line, condition);
  std::abort();
}

}  // namespace convoy
