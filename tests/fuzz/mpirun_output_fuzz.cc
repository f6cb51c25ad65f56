// What mpirun prints, as MpirunOutput (launcher/mpirun_output.h) reads it: bytes from two pipes in
// arbitrary pieces. Each input is a series of pieces: one byte (bit 0: which pipe; the rest: the
// piece's length, 0-127), then that many bytes. Every line given out must end in '\n', the kept
// lines stay within their limit, and a failure read from the text is well-formed.
#include <cstdlib>

#include "fuzz_support.h"
#include "launcher/mpirun_output.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto check_line = [](std::string_view line) {
    if (line.empty() || line.back() != '\n') std::abort();
  };
  convoy::MpirunOutput output(check_line, check_line);
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const auto head = static_cast<uint8_t>(rest[0]);
    rest.remove_prefix(1);
    const std::string_view piece = rest.substr(0, head >> 1);
    rest.remove_prefix(piece.size());
    output.feed(head & 1, piece);
  }
  output.finish();
  if (output.own_lines().size() > convoy::MpirunOutput::kMaxOwnLines) std::abort();
  if (output.failure() && output.failure()->cause.empty()) std::abort();
  return 0;
}
