#include "dist/checkpoint_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/read_file.h"
#include "core/stopwatch.h"

namespace convoy {

namespace {

namespace fs = std::filesystem;

constexpr const char* kManifest = "manifest.pbtxt";
constexpr const char* kUploadMarker = ".upload-";
constexpr const char* kTempMarker = ".tmp.";  // core/atomic_file.h's temporaries
// Beside a checkpoint being replaced under its name: its previous file, until the manifest lists
// the new one (a temporary, by its marker).
constexpr const char* kPreviousSuffix = ".tmp.previous";

// What a one-line message may echo of a name it refuses.
std::string shortened(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size() && i < 100; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  return name.size() > 100 ? out + "..." : out;
}

// A file of the store that is not a checkpoint: a temporary of an upload or of an atomic write.
bool temporary(const std::string& file_name) {
  return file_name.find(kUploadMarker) != std::string::npos ||
         file_name.find(kTempMarker) != std::string::npos;
}

}  // namespace

bool valid_checkpoint_name(const std::string& name) {
  if (name.empty() || name.size() > 100) return false;
  // "latest" names the newest checkpoint; temporaries' markers would make a name look like one.
  if (name == "latest" || temporary(name)) return false;
  const auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (!first && (c == '.' || c == '_' || c == '-'));
  };
  for (size_t i = 0; i < name.size(); ++i) {
    if (!ok(name[i], i == 0)) return false;
  }
  return true;
}

CheckpointStore::CheckpointStore(std::string dir, Options options)
    : dir_(std::move(dir)), options_(options) {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error) {
    throw Error::from_errno(error.value(), fmt::format("cannot create '{}'", dir_));
  }
  // Uploads and atomic writes that never finished (a crash or a kill) leave temporaries behind;
  // they are removed below, once a replaced checkpoint's previous file has had its chance.
  std::vector<std::string> files, temporaries;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    const std::string file = entry.path().filename().string();
    if (temporary(file)) {
      temporaries.push_back(entry.path().string());
    } else if (entry.path().extension() == ".ckpt") {
      files.push_back(entry.path().stem().string());
    }
  }
  if (error) throw Error::from_errno(error.value(), fmt::format("cannot read '{}'", dir_));

  bool rewrite = false;
  std::ifstream in(fs::path(dir_) / kManifest);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    pb::CheckpointManifest manifest;
    if (google::protobuf::TextFormat::ParseFromString(text.str(), &manifest)) {
      entries_.assign(manifest.checkpoint().begin(), manifest.checkpoint().end());
    } else {
      notes_.push_back(fmt::format("'{}/{}' is damaged; rebuilding it from the checkpoint files",
                                   dir_, kManifest));
      rewrite = true;
    }
  }
  // Names read from disk are checked as strictly as names from the network: an entry such as
  // "../../x" must never be served or deleted.
  std::erase_if(entries_, [&](const pb::CheckpointInfo& e) {
    if (valid_checkpoint_name(e.name())) return false;
    notes_.push_back(fmt::format("'{}/{}': ignored the entry '{}' (not an allowed name)", dir_,
                                 kManifest, shortened(e.name())));
    rewrite = true;
    return true;
  });
  // Re-verify what we are about to serve. A checkpoint being replaced under the same name when
  // the process died has its previous file beside it (commit()): when the manifest still
  // describes that one, it is put back.
  for (pb::CheckpointInfo& e : entries_) {
    const std::string previous = home(e.name()) + kPreviousSuffix;
    if (sha256_of_file(home(e.name())) != e.sha256() && fs::exists(previous) &&
        sha256_of_file(previous) == e.sha256()) {
      as_io_error([&] { options_.file_system->rename(previous, home(e.name())); });
      notes_.push_back(
          fmt::format("'{}': put back as the manifest lists it (a replacement of it "
                      "was cut short)",
                      home(e.name())));
    }
    e.set_corrupt(sha256_of_file(home(e.name())) != e.sha256());
  }
  for (const std::string& temp : temporaries) options_.file_system->remove(temp);
  // Checkpoint files the manifest does not list (it was damaged, emptied or lost): adopt those
  // that are intact convoy checkpoints; leave the others alone and say so.
  std::sort(files.begin(), files.end());
  for (const std::string& name : files) {
    const bool listed = std::any_of(entries_.begin(), entries_.end(),
                                    [&](const pb::CheckpointInfo& e) { return e.name() == name; });
    if (listed || !valid_checkpoint_name(name)) continue;
    rewrite = true;
    try {
      const std::string bytes = read_file(home(name));
      const pb::Checkpoint checkpoint = parse_checkpoint(bytes, home(name));
      pb::CheckpointInfo info;
      info.set_name(name);
      info.set_size(bytes.size());
      info.set_sha256(sha256_hex(bytes));
      info.set_epoch(checkpoint.epoch());
      info.set_step(checkpoint.step());
      info.set_stored_time(wall_seconds());
      entries_.push_back(info);
      notes_.push_back(
          fmt::format("'{}': not in the manifest; verified and listed again", home(name)));
    } catch (const Error& e) {
      notes_.push_back(
          fmt::format("'{}': not in the manifest and not a valid checkpoint ({}); "
                      "left alone, not served",
                      home(name), e.what()));
    }
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const auto& a, const auto& b) { return a.step() < b.step(); });
  if (rewrite) save_manifest(entries_);
}

std::string CheckpointStore::home(const std::string& name) const {
  return (fs::path(dir_) / (name + ".ckpt")).string();
}

std::string CheckpointStore::path(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return displaced_.contains(name) ? home(name) + kPreviousSuffix : home(name);
}

void CheckpointStore::put_back_displaced() {
  while (!displaced_.empty()) {
    const std::string target = home(*displaced_.begin());
    as_io_error([&] { options_.file_system->rename(target + kPreviousSuffix, target); });
    displaced_.erase(displaced_.begin());
  }
}

std::unique_ptr<CheckpointStore::Upload> CheckpointStore::begin(const pb::CheckpointInfo& header) {
  const std::string name =
      header.name().empty() ? fmt::format("step-{:09}", header.step()) : header.name();
  if (!valid_checkpoint_name(name)) {
    throw Error::invalid_input(
        fmt::format("checkpoint name '{}' is not allowed (letters, digits, '.', '_', '-'; "
                    "at most 100; starting with a letter or digit; not 'latest')",
                    shortened(header.name())));
  }
  if (header.size() == 0) throw Error::invalid_input("a checkpoint of 0 bytes");
  if (header.has_test_accuracy() && !std::isfinite(header.test_accuracy())) {
    throw Error::invalid_input(fmt::format("test accuracy {} is not a number retention can compare",
                                           header.test_accuracy()));
  }
  if (header.size() > options_.max_bytes) {
    throw Error::limit_exceeded(fmt::format("checkpoint of {} bytes exceeds the limit of {} bytes",
                                            header.size(), options_.max_bytes));
  }
  if (header.sha256().size() != 64 ||
      header.sha256().find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw Error::invalid_input("checkpoint header needs a sha256 of 64 lowercase hex digits");
  }
  {
    // What the store would hold once this one is in and retention has run.
    std::lock_guard lock(mutex_);
    std::vector<pb::CheckpointInfo> next = entries_;
    std::erase_if(next, [&](const pb::CheckpointInfo& e) { return e.name() == name; });
    pb::CheckpointInfo incoming = header;
    incoming.set_name(name);
    next.push_back(incoming);
    std::stable_sort(next.begin(), next.end(),
                     [](const auto& a, const auto& b) { return a.step() < b.step(); });
    std::vector<pb::CheckpointInfo> dropped;
    check_quota(retained(std::move(next), dropped), header.size());
  }
  return std::unique_ptr<Upload>(new Upload(*this, header, name));
}

CheckpointStore::Upload::Upload(CheckpointStore& store, pb::CheckpointInfo header, std::string name)
    : store_(store), header_(std::move(header)), name_(std::move(name)) {
  std::random_device random;
  temp_ =
      (fs::path(store_.dir_) / fmt::format("{}{}{:08x}", name_, kUploadMarker, uint32_t{random()}))
          .string();
  try {
    file_ = store_.options_.file_system->open(temp_, FileSystem::Mode::kCreateNew);
  } catch (const Error& e) {
    throw Error::io(e.what());  // the store's own directory: never the caller's input
  }
}

CheckpointStore::Upload::~Upload() {
  file_.reset();
  if (!committed_) store_.options_.file_system->remove(temp_);
}

void CheckpointStore::Upload::write(std::string_view bytes) {
  received_ += bytes.size();
  if (received_ > header_.size()) {
    throw Error::limit_exceeded(
        fmt::format("more than the announced {} bytes arrived", header_.size()));
  }
  hash_.update(bytes);
  as_io_error([&] { file_->append(bytes); });
}

pb::CheckpointInfo CheckpointStore::Upload::commit() {
  if (received_ != header_.size()) {
    throw Error::corruption(
        fmt::format("received {} bytes, the header announced {}", received_, header_.size()));
  }
  const std::string digest = hash_.hex();
  if (digest != header_.sha256()) {
    throw Error::corruption(
        fmt::format("sha256 mismatch: received {}, the header says {}", digest, header_.sha256()));
  }
  as_io_error([&] {
    file_->sync();
    file_->close();
  });
  file_.reset();
  pb::CheckpointInfo info = header_;
  info.set_name(name_);
  info.clear_job_id();  // the directory is the job's: the manifest stays as older versions wrote it
  info.set_corrupt(false);
  info.set_stored_time(wall_seconds());

  FileSystem& file_system = *store_.options_.file_system;
  std::lock_guard lock(store_.mutex_);
  store_.put_back_displaced();
  const auto same_name = [&](const pb::CheckpointInfo& e) { return e.name() == name_; };
  std::vector<pb::CheckpointInfo> next = store_.entries_;
  std::erase_if(next, same_name);
  next.push_back(info);
  std::stable_sort(next.begin(), next.end(),
                   [](const auto& a, const auto& b) { return a.step() < b.step(); });
  std::vector<pb::CheckpointInfo> dropped;
  next = store_.retained(std::move(next), dropped);
  store_.check_quota(next, header_.size());  // again: other uploads may have been stored meanwhile
  // A checkpoint of the same name is replaced. Until the manifest says so, the old file is kept
  // under a second name (a temporary's, so that opening the store removes it after a crash) to
  // be put back if the manifest cannot be written.
  const std::string target = store_.home(name_);
  const std::string previous = target + kPreviousSuffix;
  const bool replacing = std::any_of(store_.entries_.begin(), store_.entries_.end(), same_name);
  as_io_error([&] {
    if (replacing) {
      file_system.remove(previous);
      file_system.link(target, previous);
    }
    file_system.rename(temp_, target);
  });
  committed_ = true;
  bool manifest_replaced = false;
  try {
    store_.save_manifest(next, &manifest_replaced);
  } catch (const Error& e) {
    if (!manifest_replaced) {
      // The manifest on disk still lists what it listed: put the files back as they were. If
      // even that fails, the old file is served from where it is until the next store or the
      // next opening puts it back (see the constructor); a new file that cannot be removed is
      // not listed (the next opening adopts it if it is intact).
      if (replacing) {
        try {
          file_system.rename(previous, target);
        } catch (const Error&) {
          store_.displaced_.insert(name_);
        }
      } else {
        file_system.remove(target);
      }
      throw;
    }
    // The new manifest is in place; only the directory's fsync failed (the rename may not
    // survive a power loss, which the next sync of this directory will settle): stored.
    fmt::print(stderr, "convoy: '{}': stored, but {}\n", target, e.what());
  }
  store_.entries_ = std::move(next);
  if (replacing) file_system.remove(previous);
  // Best effort: a file left here is not in the manifest; the next opening adopts it again.
  for (const pb::CheckpointInfo& e : dropped) file_system.remove(store_.home(e.name()));
  return info;
}

pb::CheckpointInfo CheckpointStore::put(pb::CheckpointInfo header, std::string_view bytes) {
  header.set_size(bytes.size());
  header.set_sha256(sha256_hex(bytes));
  std::unique_ptr<Upload> upload = begin(header);
  upload->write(bytes);
  return upload->commit();
}

void CheckpointStore::check_quota(const std::vector<pb::CheckpointInfo>& kept,
                                  uint64_t incoming) const {
  // Corrupt entries are left out: their files may be gone, and they must not hold a job at its
  // limit for good.
  uint64_t total = 0;
  for (const pb::CheckpointInfo& e : kept) {
    if (!e.corrupt()) total += std::min<uint64_t>(e.size(), kMaxCheckpointBytes);
  }
  if (total > options_.max_total_bytes) {
    throw Error::limit_exceeded(
        fmt::format("storing {} bytes would take the job's checkpoints to {} bytes, over its "
                    "limit of {} bytes",
                    incoming, total, options_.max_total_bytes));
  }
}

std::vector<pb::CheckpointInfo> CheckpointStore::retained(
    std::vector<pb::CheckpointInfo> entries, std::vector<pb::CheckpointInfo>& dropped) const {
  std::vector<size_t> valid;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].corrupt()) valid.push_back(i);
  }
  std::vector<bool> keep(entries.size(), true);
  for (size_t v = 0; v + options_.keep_last < valid.size(); ++v) keep[valid[v]] = false;
  std::optional<size_t> best;
  for (size_t i : valid) {
    if (entries[i].has_test_accuracy() && std::isfinite(entries[i].test_accuracy()) &&
        (!best || entries[i].test_accuracy() > entries[*best].test_accuracy())) {
      best = i;
    }
  }
  if (best) keep[*best] = true;
  std::vector<pb::CheckpointInfo> kept;
  for (size_t i = 0; i < entries.size(); ++i) {
    (keep[i] ? kept : dropped).push_back(entries[i]);
  }
  return kept;
}

void CheckpointStore::save_manifest(const std::vector<pb::CheckpointInfo>& entries,
                                    bool* replaced) {
  pb::CheckpointManifest manifest;
  for (const pb::CheckpointInfo& e : entries) *manifest.add_checkpoint() = e;
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  try {
    write_file_atomically((fs::path(dir_) / kManifest).string(), text, *options_.file_system,
                          replaced);
  } catch (const Error& e) {
    throw Error::io(e.what());  // the store's own file: never the caller's input
  }
}

std::vector<pb::CheckpointInfo> CheckpointStore::list() const {
  std::lock_guard lock(mutex_);
  return entries_;
}

void CheckpointStore::mark_corrupt(const std::string& name) {
  std::lock_guard lock(mutex_);
  for (pb::CheckpointInfo& e : entries_) {
    if (e.name() == name) e.set_corrupt(true);
  }
}

pb::CheckpointInfo CheckpointStore::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  if (name == "latest") {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
      if (!it->corrupt()) return *it;
    }
    throw Error::not_found("no valid checkpoint stored yet");
  }
  for (const pb::CheckpointInfo& e : entries_) {
    if (e.name() != name) continue;
    if (e.corrupt()) {
      throw Error::not_found(
          fmt::format("checkpoint '{}' is corrupt on disk (failed verification)", name));
    }
    return e;
  }
  throw Error::not_found(fmt::format("no checkpoint named '{}'", shortened(name)));
}

}  // namespace convoy
