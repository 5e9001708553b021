// End-to-end protected streams: the e2e handshake carried in OPEN / OPEN_RESULT, and a
// stream wrapper that turns the bytes of an inner stream into e2e records (e2e/e2e.hpp).
// Works over any session implementation: only the session/stream interface is used.
//
// Client:  open_secure() sends message 1 (the destination inside) as the OPEN's envelope
//          and reads message 2 from the OPEN_RESULT's envelope; on success the returned
//          stream encrypts and authenticates everything. It never falls back to plaintext.
// Agent:   read_secure_open() decrypts message 1 from an incoming OPEN; the agent decides,
//          then accept_secure() / reject_secure() answer with message 2 (the verdict inside,
//          so that the refusal text, which may name the destination, is encrypted too).
//
// Thread-safety: one executor, like the streams it wraps.
#pragma once

#include <utility>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "e2e/e2e.hpp"
#include "transport/session.hpp"

namespace nl::transport {

// Wraps `inner` (an open stream whose handshake gave `keys`). Writes are sealed into
// records of up to relay_chunk bytes, so a sealed record fits one DATA frame (in place
// when the buffer has room around it, see relay_headroom); reads verify and decrypt;
// shutdown_send() sends the authenticated final record. Any integrity failure resets the
// stream with errc::e2e_failed and a message saying what was wrong.
std::unique_ptr<stream> make_secure_stream(std::unique_ptr<stream> inner, const e2e::traffic_keys& keys);

struct e2e_peer {
  e2e::key public_key{};           // the agent's pinned key
  std::optional<e2e::key> psk;     // from the shared passphrase, when configured
};

// Client side. `dest` travels encrypted; the OPEN shows only the agent name (req.peer).
awaitable<open_outcome> open_secure(session& s, std::string agent, const proto::target& dest, const e2e_peer& pin,
                                    std::chrono::milliseconds timeout);

// Agent side: the decrypted request of an OPEN that carries an envelope.
struct secure_request {
  proto::target dest;
  e2e::responder handshake;
};
std::expected<secure_request, std::string> read_secure_open(const incoming_stream& in, const e2e::static_keypair& self,
                                                            const std::optional<e2e::key>& psk);
std::unique_ptr<stream> accept_secure(incoming_stream& in, secure_request& req);
void reject_secure(incoming_stream& in, secure_request& req, errc code, const std::string& message);

}  // namespace nl::transport
