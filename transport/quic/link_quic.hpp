// Lets a transport::link dial QUIC: fills link_options::dial_quic from the peer's config
// (gateway host and port, TLS trust, token, session timing). nl_transport cannot depend on
// nl_quic (nl_quic builds on it), so the apps call this after link_options_from().
#pragma once

#include "config/config.hpp"
#include "transport/link.hpp"

namespace nl::transport::quic {

void enable(link_options& o, const config::peer_config& p);

// link_options_from() + enable(): what agents and clients use.
inline link_options link_options_for(const config::peer_config& p, std::string endpoint, std::string token) {
  auto o = link_options_from(p, std::move(endpoint), std::move(token));
  enable(o, p);
  return o;
}

}  // namespace nl::transport::quic
