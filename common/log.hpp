// Logging setup: spdlog to stderr with a per-program name. Every nl binary calls
// init_logging() once in main; code elsewhere uses spdlog's free functions.
// Thread-safety: spdlog's default (mt) sinks; nl itself logs from one thread.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace nl {

// level: trace, debug, info, warn, error, off. Returns false for an unknown level.
bool init_logging(std::string_view program, std::string_view level);

}  // namespace nl
