#include "transport/relay.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/async.hpp"

namespace nl::transport {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

void note(relay_stats& st, const error_code& ec, std::string_view detail = {}) {
  if (!st.error) {
    st.error = ec;
    st.detail = std::string(detail);
  }
}

awaitable<void> socket_to_stream(tcp::socket& sock, stream& s, relay_stats& st) {
  std::size_t want = relay_small_chunk;
  for (;;) {
    error_code ec;
    co_await sock.async_wait(tcp::socket::wait_read, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      s.reset(errc::aborted, "relay closed");
      break;
    }
    bytes b = bytes::with_room(want, relay_headroom, relay_tailroom);
    auto n = sock.read_some(b.prepare(), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      continue;
    }
    if (ec == asio::error::eof) {
      if (auto sec = co_await s.shutdown_send(); sec) {
        note(st, sec, s.error_message());
        sock.close(ec);
      }
      break;
    }
    if (ec) {
      note(st, ec);
      s.reset(errc::aborted, "connection reset: " + ec.message());
      break;
    }
    b.commit(n);
    st.to_stream += n;
    want = n == want ? relay_chunk : n <= relay_small_chunk ? relay_small_chunk : want;
    if (auto wec = co_await s.write(std::move(b)); wec) {
      note(st, wec, s.error_message());
      sock.close(ec);
      break;
    }
  }
}

awaitable<void> stream_to_socket(stream& s, tcp::socket& sock, relay_stats& st) {
  for (;;) {
    auto r = co_await s.read();
    error_code ec;
    if (!r) {
      note(st, r.error(), s.error_message());
      sock.close(ec);  // also wakes the other direction
      break;
    }
    if (r->empty()) {
      sock.shutdown(tcp::socket::shutdown_send, ec);
      break;
    }
    co_await asio::async_write(sock, r->buffer(), asio::redirect_error(use_awaitable, ec));
    if (ec) {
      note(st, ec);
      s.reset(errc::aborted, "connection reset: " + ec.message());
      sock.close(ec);
      break;
    }
    st.from_stream += r->size();
  }
}

// from -> to until EOF or failure. A failure of `to` resets `from` too, except while
// `*unanswered` (splice_answering: until b has answered, b's refusal becomes a's answer).
awaitable<void> pump(stream& from, stream& to, std::uint64_t& counter, relay_stats& st,
                     const bool* unanswered = nullptr) {
  for (;;) {
    auto r = co_await from.read();
    if (!r) {
      note(st, r.error(), from.error_message());
      to.reset(to_wire_code(r.error()), from.error_message());
      break;
    }
    if (r->empty()) {
      if (auto ec = co_await to.shutdown_send(); ec) {
        note(st, ec, to.error_message());
        if (!unanswered || !*unanswered) from.reset(to_wire_code(ec), to.error_message());
      }
      break;
    }
    auto n = r->size();
    if (auto ec = co_await to.write(std::move(*r)); ec) {
      note(st, ec, to.error_message());
      if (!unanswered || !*unanswered) from.reset(to_wire_code(ec), to.error_message());
      break;
    }
    counter += n;
  }
}

awaitable<void> pass_answer(deferred_stream& a, opening_stream& b, answered_relay_stats& st, bool& unanswered) {
  auto ans = co_await b.answer();
  if (ans.error) {
    st.refused = true;
    note(st, ans.error, ans.message);
    a.answer(to_wire_code(ans.error), ans.message.empty() ? ans.error.message() : ans.message,
             std::move(ans.envelope));
    co_return;
  }
  a.answer(errc::ok, {}, std::move(ans.envelope));
  unanswered = false;
  co_await pump(b, a, st.from_stream, st);
}

}  // namespace

awaitable<relay_stats> relay(stream& s, tcp::socket& sock) {
  relay_stats st;
  error_code ec;
  sock.non_blocking(true, ec);
  co_await when_both(socket_to_stream(sock, s, st), stream_to_socket(s, sock, st));
  co_return st;
}

awaitable<answered_relay_stats> splice_answering(deferred_stream& a, opening_stream& b) {
  answered_relay_stats st;
  bool unanswered = true;
  co_await when_both(pump(a, b, st.to_stream, st, &unanswered), pass_answer(a, b, st, unanswered));
  co_return st;
}

awaitable<relay_stats> splice(stream& a, stream& b) {
  relay_stats st;
  co_await when_both(pump(a, b, st.to_stream, st), pump(b, a, st.from_stream, st));
  co_return st;
}

}  // namespace nl::transport
