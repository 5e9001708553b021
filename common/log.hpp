// Logging setup: spdlog to stderr with a per-program name. Every nl binary calls
// init_logging() once in main; code elsewhere uses spdlog's free functions.
// Thread-safety: spdlog's default (mt) sinks; nl itself logs from one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

#include <spdlog/spdlog.h>

namespace nl {

// level: trace, debug, info, warn, error, off. Returns false for an unknown level.
bool init_logging(std::string_view program, std::string_view level);

// For events that can come in floods (connections shed, packets dropped): counts them and
// says when a log line is due, at most once per `every` (the first event at once).
class log_throttle {
public:
  explicit log_throttle(std::chrono::steady_clock::duration every) : every_(every) {}
  // Counts one event at `now`. Returns how many there were since the last line when one is
  // due, else 0.
  std::size_t note(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

private:
  std::chrono::steady_clock::duration every_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;  // last_ is set (the clock's epoch may be less than `every` ago)
  std::size_t count_ = 0;
};

}  // namespace nl
