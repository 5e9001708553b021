// How the gateway reads a Sec-WebSocket-Protocol offer (transport/ws/subprotocol.hpp): whole
// comma-separated tokens, blanks around them ignored; never a prefix or substring match.
#include "transport/ws/subprotocol.hpp"

#include <catch2/catch.hpp>

using nl::transport::ws::lists_subprotocol;

TEST_CASE("subprotocol offers are matched token by token", "[ws]") {
  CHECK(lists_subprotocol("nl.2, nl.1", "nl.2"));
  CHECK(lists_subprotocol("nl.2, nl.1", "nl.1"));
  CHECK(lists_subprotocol("nl.1", "nl.1"));
  CHECK(lists_subprotocol("  nl.1\t,x", "nl.1"));
  CHECK(lists_subprotocol("x,,nl.2,", "nl.2"));
  CHECK_FALSE(lists_subprotocol("nl.10", "nl.1"));
  CHECK_FALSE(lists_subprotocol("xnl.1", "nl.1"));
  CHECK_FALSE(lists_subprotocol("nl.1x, nl", "nl.1"));
  CHECK_FALSE(lists_subprotocol("", "nl.1"));
  CHECK_FALSE(lists_subprotocol(",,, ,", "nl.1"));
  CHECK_FALSE(lists_subprotocol("NL.1", "nl.1"));  // tokens are case-sensitive (RFC 6455)
}
