// The WebSocket sub-protocol names nl speaks, and how an offer is read.
#pragma once

#include <string_view>

namespace nl::transport::ws {

// WebSocket sub-protocols (wire versions): nl.2 is nl.1 plus early data (mux_options::
// early_data). Peers offer both, newest first; the gateway selects one.
inline constexpr const char* subprotocol = "nl.1";
inline constexpr const char* subprotocol_early = "nl.2";
inline constexpr const char* subprotocol_offer = "nl.2, nl.1";

// Whether a Sec-WebSocket-Protocol value (comma-separated tokens) lists `name`.
inline bool lists_subprotocol(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto tok = header.substr(0, comma);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t')) tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t')) tok.remove_suffix(1);
    if (tok == name) {
      return true;
    }
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
  }
  return false;
}

}  // namespace nl::transport::ws
