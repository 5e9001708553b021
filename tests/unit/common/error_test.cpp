// The nl error category (common/error.hpp): stable wire values, texts, and the mapping of
// system errors to stream codes that travel in OPEN_RESULT / RESET.
#include "common/error.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>

using nl::errc;
using nl::make_error_code;
using nl::to_wire_code;
namespace ae = boost::asio::error;

TEST_CASE("errc values are the wire codes and never change", "[error]") {
  CHECK(static_cast<int>(errc::refused) == 1);
  CHECK(static_cast<int>(errc::net_unreachable) == 2);
  CHECK(static_cast<int>(errc::host_unreachable) == 3);
  CHECK(static_cast<int>(errc::timeout) == 4);
  CHECK(static_cast<int>(errc::dns_failure) == 5);
  CHECK(static_cast<int>(errc::denied) == 6);
  CHECK(static_cast<int>(errc::no_agent) == 7);
  CHECK(static_cast<int>(errc::protocol) == 8);
  CHECK(static_cast<int>(errc::internal) == 9);
  CHECK(static_cast<int>(errc::aborted) == 10);
  CHECK(static_cast<int>(errc::limit) == 11);
  CHECK(static_cast<int>(errc::unsupported) == 12);
  CHECK(static_cast<int>(errc::bad_request) == 13);
  CHECK(static_cast<int>(errc::session_closed) == 64);
}

TEST_CASE("error codes of the nl category compare and describe themselves", "[error]") {
  auto ec = make_error_code(errc::denied);
  CHECK(ec);
  CHECK(ec.category() == nl::category());
  CHECK(std::string(nl::category().name()) == "nl");
  CHECK(ec.message() == "denied by policy");
  CHECK(ec == errc::denied);  // is_error_code_enum
  CHECK(ec != make_error_code(errc::refused));
  CHECK_FALSE(make_error_code(errc::ok));
  for (int v = 0; v <= 68; ++v) {
    auto text = nl::describe(static_cast<errc>(v));
    CHECK_FALSE(text.empty());
  }
  CHECK(nl::describe(static_cast<errc>(200)) == "unknown nl error");
}

TEST_CASE("to_wire_code maps system errors to stream codes", "[error]") {
  CHECK(to_wire_code({}) == errc::ok);
  CHECK(to_wire_code(make_error_code(errc::dns_failure)) == errc::dns_failure);
  // Local conditions never go on the wire as themselves.
  CHECK(to_wire_code(make_error_code(errc::session_closed)) == errc::aborted);
  CHECK(to_wire_code(make_error_code(errc::stream_closed)) == errc::aborted);
  CHECK(to_wire_code(ae::connection_refused) == errc::refused);
  CHECK(to_wire_code(ae::network_unreachable) == errc::net_unreachable);
  CHECK(to_wire_code(ae::host_unreachable) == errc::host_unreachable);
  CHECK(to_wire_code(ae::timed_out) == errc::timeout);
  CHECK(to_wire_code(ae::host_not_found) == errc::dns_failure);
  CHECK(to_wire_code(ae::host_not_found_try_again) == errc::dns_failure);
  CHECK(to_wire_code(ae::connection_reset) == errc::aborted);
  CHECK(to_wire_code(ae::broken_pipe) == errc::aborted);
  CHECK(to_wire_code(ae::eof) == errc::aborted);
  CHECK(to_wire_code(ae::access_denied) == errc::denied);
  CHECK(to_wire_code(ae::no_buffer_space) == errc::internal);
  for (int v = 1; v < 64; ++v) {
    auto w = to_wire_code(make_error_code(static_cast<errc>(v)));
    CHECK(static_cast<int>(w) >= 1);
    CHECK(static_cast<int>(w) < 64);
  }
}
