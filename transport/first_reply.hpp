// Accepting a stream whose opener sent early data (a forward's or a stdio pipe's first
// bytes, behind the OPEN) without an OPEN_RESULT of its own: the "ok" goes out with the
// first thing sent back on the stream (data, FIN or reset), in the same message, or after
// `delay` if nothing is sent by then. A request/response exchange then crosses every link
// of the way back once instead of twice (OPEN_RESULT, then the reply), which saves a
// wake-up and a message's TLS record in each process on the path of every new stream.
//
// The opener loses nothing it waits for: it reads nothing before the reply either, and its
// early data (up to proto::early_window) is already on its way. Only an opener that has more
// than the early window to send before any reply may wait up to `delay` for the rest of its
// window; accept_with_first_reply() answers at once when the early window is already full.
// Thread-safety: the session's executor.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

#include "transport/session.hpp"

namespace nl::transport {

inline constexpr std::chrono::milliseconds first_reply_delay{2};

// The accepted stream. Plain in->accept() when the opener sent no early data (it is
// waiting for the answer) or filled its early window.
std::unique_ptr<stream> accept_with_first_reply(incoming_stream& in, const boost::asio::any_io_executor& ex,
                                                std::chrono::milliseconds delay = first_reply_delay);

}  // namespace nl::transport
