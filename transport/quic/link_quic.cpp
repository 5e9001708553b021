#include "transport/quic/link_quic.hpp"

#include "transport/quic/quic_session.hpp"

namespace nl::transport::quic {

namespace {

client_options options_for(const link_options& o, const config::peer_config& p) {
  client_options c;
  c.host = o.dial.url.host;
  c.port = o.dial.url.port;
  c.server_name = p.tls.server_name;
  c.ca_file = p.tls.ca_file;
  c.insecure = p.tls.insecure;
  c.token = o.dial.token;
  c.endpoint = o.dial.endpoint;
  c.quic.keepalive = p.session.keepalive;
  c.quic.idle_timeout = p.session.keepalive_timeout;
  c.quic.max_streams = p.session.max_streams;
  c.quic.log_name = "gateway session";
  return c;
}

}  // namespace

void enable(link_options& o, const config::peer_config& p) {
  auto base = options_for(o, p);
  o.dial_quic = [base](std::chrono::milliseconds timeout, bool probe) -> awaitable<dial_outcome> {
    auto c = base;
    c.timeout = timeout;
    if (probe) c.token.clear();  // the gateway refuses it: enough to know QUIC gets through
    auto ex = co_await boost::asio::this_coro::executor;
    auto r = co_await connect(ex, c);
    if (!r) {
      co_return std::unexpected(ws::dial_error{r.error().code, 0, r.error().message});
    }
    co_return ws::dial_result{std::move(r->session), std::move(r->hello)};
  };
}

}  // namespace nl::transport::quic
