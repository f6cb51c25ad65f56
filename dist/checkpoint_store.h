// CheckpointStore: a directory of checkpoint files with a manifest, the one place that decides
// what is stored, what is served and what is deleted. The coordinator keeps one per job; without a
// coordinator, `convoy train --checkpoint-dir` writes to one directly.
//
//   Storing   an upload streams into a temporary file beside the target while its SHA-256 is
//             computed; only when the size and hash match the header is it fsynced, renamed into
//             place and added to the manifest (manifest.pbtxt, itself replaced atomically). An
//             upload that fails or is abandoned leaves nothing listed (its temporary is removed,
//             and stray temporaries are removed when the store opens).
//   Names     given names must match [A-Za-z0-9][A-Za-z0-9._-]{0,99} (no paths), and may not be
//             "latest" or contain a temporary's marker (".upload-", ".tmp."); without one the
//             store names it step-<step, 9 digits>. Storing an existing name replaces it. Names
//             read back from the manifest are checked the same way; others are ignored.
//   Retention after each store: the `keep_last` newest (by step) plus the one with the best
//             (finite) test accuracy stay; the others are deleted once the new manifest is
//             written. A store that fails (full disk, failed fsync or rename, a manifest that
//             cannot be written) throws Error (I/O) and leaves the previous checkpoints and
//             manifest as they were, still served.
//   Integrity on opening, every listed checkpoint is hashed again; a missing or altered file is
//             marked corrupt: still listed, never served. A damaged manifest is rebuilt, and
//             checkpoint files it does not list are listed again if they are intact convoy
//             checkpoints (notes() says what was repaired). Empty checkpoints are refused.
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/file_system.h"
#include "dist/sha256.h"
#include "proto/coordinator.pb.h"

namespace convoy {

class CheckpointStore {
 public:
  struct Options {
    size_t keep_last = 3;
    uint64_t max_bytes = uint64_t{1} << 30;  // one checkpoint
    // All the store's checkpoints after retention: an upload that would take them past it is
    // refused (limit exceeded) before a byte is written.
    uint64_t max_total_bytes = UINT64_MAX;
    FileSystem* file_system = &FileSystem::local();  // every write and removal goes through it
  };

  // Throws Error when the directory cannot be created or read, or its manifest is damaged.
  CheckpointStore(std::string dir, Options options);

  class Upload {
   public:
    ~Upload();  // removes the temporary file unless committed
    // Throws Error (limit exceeded) when more bytes arrive than the header announced.
    void write(std::string_view bytes);
    // Verifies size and SHA-256 (Error: corruption), stores, applies retention.
    pb::CheckpointInfo commit();

   private:
    friend class CheckpointStore;
    Upload(CheckpointStore& store, pb::CheckpointInfo header, std::string name);
    CheckpointStore& store_;
    pb::CheckpointInfo header_;
    std::string name_, temp_;
    std::unique_ptr<WritableFile> file_;
    uint64_t received_ = 0;
    Sha256 hash_;
    bool committed_ = false;
  };

  // Checks the header (name, size limits) and opens a temporary file. Throws Error
  // (invalid input, limit exceeded).
  std::unique_ptr<Upload> begin(const pb::CheckpointInfo& header);
  // begin + write + commit of bytes already in memory (size and hash filled in here).
  pb::CheckpointInfo put(pb::CheckpointInfo header, std::string_view bytes);

  // Every listed checkpoint, oldest step first, corrupt ones included.
  std::vector<pb::CheckpointInfo> list() const;
  // A servable checkpoint by name, or "latest" (highest step). Throws Error (not found; also for a
  // corrupt one, saying so).
  pb::CheckpointInfo find(const std::string& name_or_latest) const;
  // The file that holds the listed checkpoint `name`: <dir>/<name>.ckpt, or the previous file
  // beside it while a failed replacement of it waits to be undone (see Upload::commit).
  std::string path(const std::string& name) const;
  // Marks a checkpoint found damaged while serving: listed as corrupt, never served again.
  void mark_corrupt(const std::string& name);
  // What opening the store repaired or ignored (a damaged manifest rebuilt, files adopted, entries
  // with names that are not allowed), one line each, for the owner to log.
  const std::vector<std::string>& notes() const { return notes_; }
  const std::string& dir() const { return dir_; }

 private:
  // <dir>/<name>.ckpt: where a checkpoint's file belongs.
  std::string home(const std::string& name) const;
  // Puts back the files of replacements that could not be undone when they failed (Error: I/O).
  void put_back_displaced();
  // Writes the manifest listing `entries` (Error: I/O); `*replaced` as write_file_atomically's.
  void save_manifest(const std::vector<pb::CheckpointInfo>& entries, bool* replaced = nullptr);
  // Throws Error (limit exceeded) when `kept` (what retention keeps) exceed max_total_bytes.
  void check_quota(const std::vector<pb::CheckpointInfo>& kept, uint64_t incoming) const;
  // Which of `entries` retention keeps; the others are appended to `dropped`.
  std::vector<pb::CheckpointInfo> retained(std::vector<pb::CheckpointInfo> entries,
                                           std::vector<pb::CheckpointInfo>& dropped) const;

  std::string dir_;
  Options options_;
  mutable std::mutex mutex_;
  std::vector<pb::CheckpointInfo> entries_;
  // Names whose listed file is still the previous one beside home(name): a replacement failed
  // and putting that file back failed too. Served from there; put back before the next store.
  std::set<std::string> displaced_;
  std::vector<std::string> notes_;
};

bool valid_checkpoint_name(const std::string& name);

}  // namespace convoy
