// Parses the input as an HTTP CONNECT request head and checks the result's promises;
// also builds a response with the input as the error reason and checks that no header
// can be injected through it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proto/http_connect.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace nl::proto;
using namespace nl::proto::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto r = parse_request(in);
  switch (r.status) {
    case head_status::ok:
      NL_FUZZ_CHECK(r.consumed <= size && r.consumed <= max_head_size);
      NL_FUZZ_CHECK(text.substr(0, r.consumed).ends_with("\r\n\r\n"));
      NL_FUZZ_CHECK(text.substr(0, r.consumed - 4).find("\r\n\r\n") == std::string_view::npos);
      NL_FUZZ_CHECK(r.req.method == "CONNECT");
      NL_FUZZ_CHECK(r.req.version == "HTTP/1.1" || r.req.version == "HTTP/1.0");
      NL_FUZZ_CHECK(valid_host(r.req.dest.host) && r.req.dest.port != 0);
      // Bytes after the head do not change the result.
      NL_FUZZ_CHECK(parse_request(text.substr(0, r.consumed)).status == head_status::ok);
      break;
    case head_status::method_not_allowed:
      NL_FUZZ_CHECK(r.consumed <= size && r.req.method != "CONNECT" && r.error != nullptr);
      break;
    case head_status::malformed:
      NL_FUZZ_CHECK(r.error != nullptr);
      break;
    case head_status::incomplete:
      NL_FUZZ_CHECK(size < max_head_size);
      break;
  }

  if (size > 0) {
    (void)looks_like_http(in[0]);
    (void)status_for(static_cast<nl::errc>(data[0]));
    static constexpr int statuses[] = {200, 400, 403, 405, 407, 502, 504, 999, -1};
    int status = statuses[data[0] % std::size(statuses)];
    auto resp = response(status, text);
    NL_FUZZ_CHECK(resp.starts_with("HTTP/1.1 "));
    NL_FUZZ_CHECK(resp.ends_with("\r\n\r\n"));
    NL_FUZZ_CHECK(resp.find("\r\n\r\n") == resp.size() - 4);
    std::size_t lines = 0;
    for (std::size_t i = 0; i < resp.size(); ++i) {
      auto c = static_cast<unsigned char>(resp[i]);
      if (c == '\n') {
        NL_FUZZ_CHECK(i > 0 && resp[i - 1] == '\r');
        ++lines;
      } else if (c == '\r') {
        NL_FUZZ_CHECK(i + 1 < resp.size() && resp[i + 1] == '\n');
      } else {
        NL_FUZZ_CHECK(c >= 0x20 && c != 0x7f);
      }
    }
    NL_FUZZ_CHECK(lines <= 6);
  }
  return 0;
}
