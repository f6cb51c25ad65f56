// Writing files so that readers see either the old file or the complete new one, never a part:
// write to a temporary file in the same directory, fsync it, rename it over the target, fsync the
// directory. On failure the temporary file is removed and the target is untouched. Temporaries are
// named `<path>.tmp.<pid>.<n>`; one left by a process that was killed meanwhile (its pid is gone)
// is removed by the next write of the same path.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace convoy {

// Throws Error naming `path` when the file cannot be written: invalid input for a missing
// directory or no permission, an I/O error for a full disk or a failed fsync.
void write_file_atomically(const std::string& path, std::string_view contents);

// For writers that need a file name rather than bytes: `write(temp_path)` must create the file at
// temp_path; it is then synced and renamed to `path`. If `write` throws, the temporary is removed.
void write_file_atomically_with(const std::string& path,
                                const std::function<void(const std::string& temp_path)>& write);

}  // namespace convoy
