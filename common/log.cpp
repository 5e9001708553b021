#include "common/log.hpp"

#include <utility>

#include <spdlog/sinks/stdout_sinks.h>

namespace nl {

bool init_logging(std::string_view program, std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return false;
  }
  // stderr, unbuffered line by line: tests and systemd read it as it happens.
  auto logger = spdlog::stderr_logger_mt(std::string(program));
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %^%l%$: %v");
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::trace);
  return true;
}

std::size_t log_throttle::note(std::chrono::steady_clock::time_point now) {
  ++count_;
  if (logged_ && now - last_ < every_) {
    return 0;
  }
  logged_ = true;
  last_ = now;
  return std::exchange(count_, 0);
}

}  // namespace nl
