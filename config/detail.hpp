// Internals shared by the config/ translation units (not part of the public interface).
// Thread-safety: pure functions.
#pragma once

#include <expected>
#include <string>

#include "config/config.hpp"

namespace nl::config::detail {

// Whole file as text, or an error (line 0) naming the file and what to do. `what` names
// the file's role in messages ("config file", "token file"); `max_bytes` guards against
// pointing at the wrong (huge) file.
std::expected<std::string, config_error> read_text_file(const std::string& path, std::string_view what,
                                                        std::size_t max_bytes);

}  // namespace nl::config::detail
