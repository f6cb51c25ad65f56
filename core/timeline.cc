#include "core/timeline.h"

#include <fmt/format.h>

#include "core/stopwatch.h"

namespace convoy {

namespace {

// A JSON string's contents: quotes, backslashes and control characters escaped, bytes beyond
// ASCII replaced (they might not be UTF-8).
std::string json_escaped(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      out += '?';  // names are ASCII in practice; anything else must not break the JSON
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string timeline_path(const std::string& path, int rank, int size) {
  if (size <= 1) return path;
  const std::string suffix = ".json";
  const bool json = path.size() > suffix.size() &&
                    path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  const std::string stem = json ? path.substr(0, path.size() - suffix.size()) : path;
  return fmt::format("{}.rank{}{}", stem, rank, json ? suffix : "");
}

Timeline::Timeline(int64_t keep_steps, int process)
    : keep_steps_(keep_steps),
      process_(process),
      steady_origin_(Clock::now()),
      wall_origin_us_(wall_seconds() * 1e6) {}

void Timeline::begin_step(int64_t step) {
  std::lock_guard lock(mutex_);
  steps_.push_back({step, {}});
  while (static_cast<int64_t>(steps_.size()) > keep_steps_) steps_.pop_front();
}

void Timeline::span(Lane lane, std::string name, const char* category, Clock::time_point start,
                    Clock::time_point end) {
  std::lock_guard lock(mutex_);
  if (steps_.empty() || steps_.back().spans.size() >= kMaxSpansPerStep) return;
  steps_.back().spans.push_back({lane, std::move(name), category, start, end});
}

std::string Timeline::json() const {
  std::lock_guard lock(mutex_);
  const auto us = [&](Clock::time_point t) {
    return wall_origin_us_ + std::chrono::duration<double, std::micro>(t - steady_origin_).count();
  };
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  out += fmt::format(
      "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{0},\"tid\":0,"
      "\"args\":{{\"name\":\"rank {0}\"}}}},\n"
      "{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{0},\"tid\":0,"
      "\"args\":{{\"sort_index\":{0}}}}},\n"
      "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{0},\"tid\":{1},"
      "\"args\":{{\"name\":\"train\"}}}},\n"
      "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{0},\"tid\":{2},"
      "\"args\":{{\"name\":\"communication\"}}}}",
      process_, static_cast<int>(kTrain), static_cast<int>(kCommunication));
  for (const Step& step : steps_) {
    for (const Span& s : step.spans) {
      out += fmt::format(
          ",\n{{\"ph\":\"X\",\"pid\":{},\"tid\":{},\"name\":\"{}\",\"cat\":\"{}\",\"ts\":{:.3f},"
          "\"dur\":{:.3f},\"args\":{{\"step\":{}}}}}",
          process_, static_cast<int>(s.lane), json_escaped(s.name), s.category, us(s.start),
          std::chrono::duration<double, std::micro>(s.end - s.start).count(), step.step);
    }
  }
  out += "\n]}\n";
  return out;
}

}  // namespace convoy
