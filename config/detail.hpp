// Internals shared by the config/ translation units (not part of the public interface).
// Thread-safety: pure functions.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace nl::config::detail {

// Whole file as text, or an error (line 0) naming the file and what to do. `what` names
// the file's role in messages ("config file", "token file"); `max_bytes` guards against
// pointing at the wrong (huge) file.
std::expected<std::string, config_error> read_text_file(const std::string& path, std::string_view what,
                                                        std::size_t max_bytes);

// A reason to refuse a config file's text before YAML parsing: 1-based line and message.
struct text_finding {
  int line = 0;
  std::string message;
};

// Refuses what yaml-cpp 0.7 would never return from (config/yaml_text.cpp): control
// characters, a second document, a root that is not a column-0 "key: value" map.
std::optional<text_finding> check_yaml_text(std::string_view yaml);

// True when the 0-based `line` of `yaml` or the one before it is indented with a tab
// (yaml-cpp reports that as various other errors).
bool tab_indented(std::string_view yaml, int line);

// A semantic problem found by a check_* function (config/checks.cpp): the dotted paths of
// the keys involved, most specific first (parse_* reports the line of the first one
// given), and the message.
struct issue {
  std::vector<std::string> keys;
  std::string message;
};
using finding = std::optional<issue>;

// Whole-config checks. `complete` is false while parsing a file (command-line options may
// still supply what it leaves out) and true in validate().
finding check_gateway(const gateway_config& c, bool complete);
finding check_agent(const agent_config& c, bool complete);
finding check_client(const client_config& c, bool complete);

}  // namespace nl::config::detail
