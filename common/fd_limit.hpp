// The open-file limit of the relay processes. Every nl binary calls raise_fd_limit() at the
// top of main.
//
// Why: an agent holds one socket per stream to its targets, a client one per local
// connection (a browser behind `nl-client socks` opens hundreds), a gateway one per
// session. Most systems start processes with a soft limit of 1 024 open files and a hard
// limit far above it; a session may carry 4 096 streams, so at the soft limit the agent's
// connects and the client's accepts would fail with "too many open files" long before.
// Raising the soft limit to the hard one is what any unprivileged process may do. Asio
// uses epoll, so descriptors above 1 024 are safe (nl never calls select()).
#pragma once

#include <cstdint>

namespace nl {

struct fd_limit {
  std::uint64_t before = 0;  // soft limit at start
  std::uint64_t now = 0;     // soft limit after raising it (= before if it could not be)
};

fd_limit raise_fd_limit() noexcept;

}  // namespace nl
