#include "core/atomic_file.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>

#include "core/error.h"

namespace convoy {

namespace {

std::string parent_dir(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// The temporaries this process is writing now (so that remove_stale_temporaries can tell them
// from those of an earlier process with the same pid).
struct InFlight {
  std::mutex mutex;
  std::set<std::string> temps;
};
InFlight& in_flight() {
  static InFlight* const registry = new InFlight;  // never destroyed: used until exit
  return *registry;
}

// A name beside `path` no other writer of this process uses: the pid and a process-wide counter,
// registered as in flight until destroyed. A file already there can only be a temporary of an
// earlier process that had the same pid.
class TempName {
 public:
  explicit TempName(const std::string& path) {
    static std::atomic<uint64_t> counter{0};
    name_ = fmt::format("{}.tmp.{}.{}", path, getpid(), counter++);
    // Spelled as a directory listing of parent_dir(path) spells it.
    key_ = (std::filesystem::path(parent_dir(path)) / std::filesystem::path(name_).filename())
               .string();
    std::lock_guard lock(in_flight().mutex);
    in_flight().temps.insert(key_);
  }
  ~TempName() {
    std::lock_guard lock(in_flight().mutex);
    in_flight().temps.erase(key_);
  }
  TempName(const TempName&) = delete;
  TempName& operator=(const TempName&) = delete;
  const std::string& str() const { return name_; }

 private:
  std::string name_, key_;
};

// Runs the steps after `write` and removes the temporary when any step fails.
template <typename Write>
void write_through_temp(const std::string& path, FileSystem& file_system, bool* replaced,
                        Write&& write) {
  const TempName temp_name(path);
  const std::string& temp = temp_name.str();
  remove_stale_temporaries(path, file_system);
  file_system.remove(temp);
  bool renamed = false;
  if (replaced != nullptr) *replaced = false;
  try {
    write(temp);
    file_system.rename(temp, path);
    renamed = true;
    if (replaced != nullptr) *replaced = true;
    file_system.sync_dir(parent_dir(path));
  } catch (const Error& e) {
    if (!renamed) file_system.remove(temp);
    // The file system's errors name the temporary; the user knows `path`.
    const std::string named = fmt::format("'{}'", path), temp_named = fmt::format("'{}': ", temp);
    const std::string_view message = e.what();
    if (message.starts_with(named + ":")) throw;
    if (message.starts_with(temp_named)) {
      throw Error(e.kind(), fmt::format("{}: {}", named, message.substr(temp_named.size())));
    }
    throw Error(e.kind(), fmt::format("{}: cannot write: {}", named, message));
  } catch (...) {
    if (!renamed) file_system.remove(temp);
    throw;
  }
}

}  // namespace

int remove_stale_temporaries(const std::string& path, FileSystem& file_system) {
  const std::string prefix = std::filesystem::path(path).filename().string() + ".tmp.";
  int removed = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(parent_dir(path), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const char* pid_text = name.c_str() + prefix.size();
    char* end = nullptr;
    const long pid = std::strtol(pid_text, &end, 10);
    if (end == pid_text || *end != '.' || pid <= 0) continue;
    bool stale = ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    if (pid == getpid()) {
      std::lock_guard lock(in_flight().mutex);
      stale = !in_flight().temps.contains(entry.path().string());
    }
    if (stale && file_system.remove(entry.path().string())) ++removed;
  }
  return removed;
}

void write_file_atomically_with(const std::string& path,
                                const std::function<void(const std::string&)>& write,
                                FileSystem& file_system) {
  write_through_temp(path, file_system, nullptr, [&](const std::string& temp) {
    file_system.open(temp, FileSystem::Mode::kCreateNew)->close();
    write(temp);
    const std::unique_ptr<WritableFile> file = file_system.open(temp, FileSystem::Mode::kAppend);
    file->sync();
    file->close();
  });
}

void write_file_atomically(const std::string& path, std::string_view contents,
                           FileSystem& file_system, bool* replaced) {
  write_through_temp(path, file_system, replaced, [&](const std::string& temp) {
    const std::unique_ptr<WritableFile> file = file_system.open(temp, FileSystem::Mode::kCreateNew);
    file->append(contents);
    file->sync();
    file->close();
  });
}

}  // namespace convoy
