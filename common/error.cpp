#include "common/error.hpp"

#include <boost/asio/error.hpp>

namespace nl {
namespace {

class nl_category final : public boost::system::error_category {
public:
  const char* name() const noexcept override { return "nl"; }
  std::string message(int v) const override {
    return std::string(describe(static_cast<errc>(v)));
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const nl_category c;
  return c;
}

std::string_view describe(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::refused: return "connection refused by target";
    case errc::net_unreachable: return "target network unreachable";
    case errc::host_unreachable: return "target host unreachable";
    case errc::timeout: return "connection to target timed out";
    case errc::dns_failure: return "target name did not resolve";
    case errc::denied: return "denied by policy";
    case errc::no_agent: return "agent not online";
    case errc::protocol: return "protocol error";
    case errc::internal: return "internal error";
    case errc::aborted: return "stream aborted by peer";
    case errc::limit: return "stream limit reached";
    case errc::unsupported: return "unsupported by peer";
    case errc::bad_request: return "malformed request";
    case errc::e2e_failed: return "end-to-end encryption failed";
    case errc::session_closed: return "session to gateway closed";
    case errc::not_connected: return "not connected to gateway";
    case errc::auth_failed: return "authentication refused by gateway";
    case errc::stream_closed: return "stream already closed";
    case errc::config: return "invalid configuration";
  }
  return "unknown nl error";
}

errc to_wire_code(const error_code& ec) noexcept {
  if (!ec) {
    return errc::ok;
  }
  if (ec.category() == category()) {
    auto v = static_cast<errc>(ec.value());
    return static_cast<int>(v) < 64 ? v : errc::aborted;
  }
  namespace ae = boost::asio::error;
  if (ec == ae::connection_refused) return errc::refused;
  if (ec == ae::network_unreachable) return errc::net_unreachable;
  if (ec == ae::host_unreachable) return errc::host_unreachable;
  if (ec == ae::timed_out) return errc::timeout;
  if (ec == ae::host_not_found || ec == ae::host_not_found_try_again || ec == ae::no_data ||
      ec == ae::no_recovery) {
    return errc::dns_failure;
  }
  if (ec == ae::connection_reset || ec == ae::broken_pipe || ec == ae::operation_aborted ||
      ec == ae::eof) {
    return errc::aborted;
  }
  if (ec == ae::access_denied) return errc::denied;
  return errc::internal;
}

}  // namespace nl
