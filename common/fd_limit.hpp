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

namespace nl {

// Soft RLIMIT_NOFILE := hard (at most fs.nr_open's default where the hard one is unlimited).
// Leaves the limit as it is when that fails.
void raise_fd_limit() noexcept;

}  // namespace nl
