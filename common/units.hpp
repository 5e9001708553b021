// Parsing of the human units used in configs and on command lines: durations ("250ms",
// "15s", "2m", "1h", "30d") and sizes ("65536", "64KiB", "1MiB", "64k"), plus host:port
// endpoints ("127.0.0.1:80", "[::1]:443", "example.com:22", ":1080"), and the edit distance
// behind "did you mean ...?" on a mistyped key or name. Pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nl {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
std::optional<std::uint64_t> parse_size(std::string_view s);
std::string format_duration(std::chrono::milliseconds d);

struct host_port {
  std::string host;  // without brackets; empty means "any"/unspecified
  std::uint16_t port = 0;
  std::string to_string() const;  // brackets IPv6 literals
};

// Requires a port (0 allowed when allow_zero). Returns nullopt on any malformed input.
std::optional<host_port> parse_host_port(std::string_view s, bool allow_zero = true);

// Levenshtein distance (insertions, deletions, substitutions of one byte each).
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace nl

