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
  // Uploads and atomic writes that never finished (a crash or a kill) leave temporaries behind.
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    const std::string file = entry.path().filename().string();
    if (temporary(file)) {
      fs::remove(entry.path(), error);
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
  // Re-verify what we are about to serve.
  for (pb::CheckpointInfo& e : entries_) {
    e.set_corrupt(sha256_of_file(path(e.name())) != e.sha256());
  }
  // Checkpoint files the manifest does not list (it was damaged, emptied or lost): adopt those
  // that are intact convoy checkpoints; leave the others alone and say so.
  std::sort(files.begin(), files.end());
  for (const std::string& name : files) {
    const bool listed = std::any_of(entries_.begin(), entries_.end(),
                                    [&](const pb::CheckpointInfo& e) { return e.name() == name; });
    if (listed || !valid_checkpoint_name(name)) continue;
    rewrite = true;
    try {
      const std::string bytes = read_file(path(name));
      const pb::Checkpoint checkpoint = parse_checkpoint(bytes, path(name));
      pb::CheckpointInfo info;
      info.set_name(name);
      info.set_size(bytes.size());
      info.set_sha256(sha256_hex(bytes));
      info.set_epoch(checkpoint.epoch());
      info.set_step(checkpoint.step());
      info.set_stored_time(wall_seconds());
      entries_.push_back(info);
      notes_.push_back(
          fmt::format("'{}': not in the manifest; verified and listed again", path(name)));
    } catch (const Error& e) {
      notes_.push_back(
          fmt::format("'{}': not in the manifest and not a valid checkpoint ({}); "
                      "left alone, not served",
                      path(name), e.what()));
    }
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const auto& a, const auto& b) { return a.step() < b.step(); });
  if (rewrite) save_manifest_locked();
}

std::string CheckpointStore::path(const std::string& name) const {
  return (fs::path(dir_) / (name + ".ckpt")).string();
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
  if (header.sha256().size() != 64) {
    throw Error::invalid_input("checkpoint header needs a 64-digit sha256");
  }
  return std::unique_ptr<Upload>(new Upload(*this, header, name));
}

CheckpointStore::Upload::Upload(CheckpointStore& store, pb::CheckpointInfo header, std::string name)
    : store_(store), header_(std::move(header)), name_(std::move(name)) {
  std::random_device random;
  temp_ =
      (fs::path(store_.dir_) / fmt::format("{}{}{:08x}", name_, kUploadMarker, uint32_t{random()}))
          .string();
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error::io(fmt::format("cannot create '{}': {}", temp_, std::strerror(errno)));
  }
}

CheckpointStore::Upload::~Upload() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) std::remove(temp_.c_str());
}

void CheckpointStore::Upload::write(std::string_view bytes) {
  received_ += bytes.size();
  if (received_ > header_.size()) {
    throw Error::limit_exceeded(
        fmt::format("more than the announced {} bytes arrived", header_.size()));
  }
  hash_.update(bytes);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::io(fmt::format("cannot write '{}': {}", temp_, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
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
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    fd_ = -1;
    throw Error::io(fmt::format("cannot sync '{}'", temp_));
  }
  fd_ = -1;
  pb::CheckpointInfo info = header_;
  info.set_name(name_);
  info.clear_job_id();  // the directory is the job's: the manifest stays as older versions wrote it
  info.set_corrupt(false);
  info.set_stored_time(wall_seconds());

  std::lock_guard lock(store_.mutex_);
  if (std::rename(temp_.c_str(), store_.path(name_).c_str()) != 0) {
    throw Error::io(fmt::format("cannot store '{}': {}", store_.path(name_), std::strerror(errno)));
  }
  committed_ = true;
  std::erase_if(store_.entries_, [&](const pb::CheckpointInfo& e) { return e.name() == name_; });
  store_.entries_.push_back(info);
  std::stable_sort(store_.entries_.begin(), store_.entries_.end(),
                   [](const auto& a, const auto& b) { return a.step() < b.step(); });
  store_.apply_retention_locked();
  store_.save_manifest_locked();
  return info;
}

pb::CheckpointInfo CheckpointStore::put(pb::CheckpointInfo header, std::string_view bytes) {
  header.set_size(bytes.size());
  header.set_sha256(sha256_hex(bytes));
  std::unique_ptr<Upload> upload = begin(header);
  upload->write(bytes);
  return upload->commit();
}

void CheckpointStore::apply_retention_locked() {
  std::vector<size_t> valid;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].corrupt()) valid.push_back(i);
  }
  std::vector<bool> keep(entries_.size(), true);
  for (size_t v = 0; v + options_.keep_last < valid.size(); ++v) keep[valid[v]] = false;
  std::optional<size_t> best;
  for (size_t i : valid) {
    if (entries_[i].has_test_accuracy() && std::isfinite(entries_[i].test_accuracy()) &&
        (!best || entries_[i].test_accuracy() > entries_[*best].test_accuracy())) {
      best = i;
    }
  }
  if (best) keep[*best] = true;
  std::vector<pb::CheckpointInfo> kept;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (keep[i]) {
      kept.push_back(entries_[i]);
    } else {
      std::remove(path(entries_[i].name()).c_str());
    }
  }
  entries_ = std::move(kept);
}

void CheckpointStore::save_manifest_locked() {
  pb::CheckpointManifest manifest;
  for (const pb::CheckpointInfo& e : entries_) *manifest.add_checkpoint() = e;
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  try {
    write_file_atomically((fs::path(dir_) / kManifest).string(), text);
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
