// Writing files so that readers see either the old file or the complete new one, never a part:
// write to a temporary file in the same directory, fsync it, rename it over the target, fsync the
// directory. Temporaries are named `<path>.tmp.<pid>.<n>`. On failure the temporary is removed
// and, when the failure came before the rename, the target is untouched (a failed fsync of the
// directory, after the rename, leaves the complete new file in place, possibly not yet durable).
// A temporary left by a process that was killed meanwhile (its pid is gone) is removed by the
// next write of the same path, or earlier by remove_stale_temporaries(). Every write goes through
// a FileSystem (core/file_system.h), so tests can inject faults at each step.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/file_system.h"

namespace convoy {

// Throws Error naming `path` when the file cannot be written: invalid input for a missing
// directory or no permission, an I/O error for a full disk or a failed fsync. `*replaced`, if
// given, says whether the new file is in place (true also when only the directory's fsync
// failed afterwards).
void write_file_atomically(const std::string& path, std::string_view contents,
                           FileSystem& file_system = FileSystem::local(), bool* replaced = nullptr);

// For writers that need a file name rather than bytes: `write(temp_path)` must write the file at
// temp_path (it exists, empty); it is then synced and renamed to `path`. If `write` throws, the
// temporary is removed.
void write_file_atomically_with(const std::string& path,
                                const std::function<void(const std::string& temp_path)>& write,
                                FileSystem& file_system = FileSystem::local());

// Removes the temporaries of `path` whose process no longer exists (it was killed while
// writing), and those of this process's pid that it is not writing (left by an earlier process
// of the same pid: in a container, every run is pid 1). Commands that will write `path` call it
// when they start, so that a kill of an earlier run leaves nothing behind for long. Returns how
// many it removed.
int remove_stale_temporaries(const std::string& path,
                             FileSystem& file_system = FileSystem::local());

}  // namespace convoy
