// Runs the three config parsers and validate() on arbitrary YAML text: they must answer
// with a value or a config_error (with a message and a non-negative line), never crash,
// hang or throw. The first byte picks the program, the rest is the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

template <class R>
void check(const R& r) {
  if (r) {
    (void)nl::config::validate(*r);
  } else {
    NL_FUZZ_CHECK(!r.error().message.empty() && r.error().line >= 0);
    (void)r.error().to_string();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) {
    return 0;
  }
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: check(nl::config::parse_gateway(text, "fuzz.yaml")); break;
    case 1: check(nl::config::parse_agent(text, "fuzz.yaml")); break;
    default: check(nl::config::parse_client(text, "fuzz.yaml")); break;
  }
  (void)nl::config::parse_forward(text);
  (void)nl::config::parse_gateway_url(text);
  return 0;
}
