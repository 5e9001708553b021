// Beast WebSocket implementation of message_channel, for plain TCP or TLS. Included only
// by the two Beast translation units (ws_client.cpp, ws_listener.cpp) to keep compile
// times down. Thread-safety: one executor.
#pragma once

#include <utility>

#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "proto/frame.hpp"
#include "transport/mux/channel.hpp"
#include "transport/mux/mux_session.hpp"
#include "transport/relay.hpp"
#include "transport/ws/direct_tls.hpp"
#include "transport/ws/subprotocol.hpp"

namespace nl::transport::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

using tcp_stream = beast::tcp_stream;
using tls_stream = direct_tls_stream;

// One message holds at most the mux writer's batch (512 KiB) plus headers.
inline constexpr std::size_t max_message = 1024 * 1024;

// WebSocket frame payload. With its header (4 bytes, 8 when masked) a frame is four TLS
// records minus a few bytes: direct_tls_stream copies the header and the rest of the first
// record into one record and sends the other three straight from the frame, so no record
// is tiny and three quarters of the bytes are never copied. (Beast's default 4 KiB frames
// cost 2.4x the CPU of large ones.)
inline constexpr std::size_t frame_payload = 4 * direct_tls_stream::record - 16;
// A full relay chunk, possibly sealed end to end, is one DATA frame, and a full DATA frame
// is one WebSocket frame.
static_assert(relay_chunk + relay_headroom + relay_tailroom <= default_max_chunk);
static_assert(default_max_chunk + proto::frame_header_size <= frame_payload);

// Per-connection WebSocket settings that matter for throughput.
template <class Ws>
void tune(Ws& ws) {
  ws.binary(true);
  ws.auto_fragment(true);
  ws.write_buffer_bytes(frame_payload);
  ws.read_message_max(max_message);
}

template <class NextLayer>
class ws_channel final : public message_channel {
public:
  ws_channel(websocket::stream<NextLayer> ws, std::string name, std::string remote)
      : ws_(std::move(ws)), name_(std::move(name)), remote_(std::move(remote)) {
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(10),
                                                   websocket::stream_base::none(), false});
  }

  asio::any_io_executor executor() override { return ws_.get_executor(); }

  asio::awaitable<result<std::span<const std::byte>>> read_message() override {
    buf_.clear();
    error_code ec;
    co_await ws_.async_read(buf_, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      co_return fail(ec);
    }
    if (!ws_.got_binary()) {
      co_return fail(errc::protocol);
    }
    auto d = buf_.data();
    co_return std::span<const std::byte>(static_cast<const std::byte*>(d.data()), d.size());
  }

  asio::awaitable<error_code> write_message(std::span<const asio::const_buffer> buffers) override {
    error_code ec;
    co_await ws_.async_write(buffers, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  asio::awaitable<void> close_gracefully() override {
    if (!ws_.is_open()) {
      co_return;
    }
    error_code ec;
    co_await ws_.async_close(websocket::close_code::normal, asio::redirect_error(asio::use_awaitable, ec));
  }

  void close_now() override {
    error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close();
  }

  std::string_view name() const noexcept override { return name_; }
  std::string_view remote_address() const noexcept override { return remote_; }

private:
  websocket::stream<NextLayer> ws_;
  beast::flat_buffer buf_;
  std::string name_;
  std::string remote_;
};

}  // namespace nl::transport::ws
