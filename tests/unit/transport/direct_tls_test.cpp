// direct_tls_stream (transport/ws/direct_tls.hpp): OpenSSL on the socket, checked on real
// loopback TCP with a certificate made here. Byte integrity for every buffer shape the
// WebSocket writer produces, WebSocket messages and closing handshake on top, the errors
// (close_notify, bare TCP close, dead peer without SIGPIPE, certificate refused) and the
// handshake deadline.
#include <utility>  // before Asio's awaitable header: g++ 12 needs it

#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "harness.hpp"
#include "transport/ws/direct_tls.hpp"

namespace nl::test {
namespace {

namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using asio::ip::tcp;
using transport::ws::direct_tls_stream;
using role = direct_tls_stream::role;

struct pem_pair {
  std::string cert;
  std::string key;
};

std::string bio_text(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return {p, static_cast<std::size_t>(n)};
}

// A self-signed P-256 certificate for "localhost", valid for an hour either side of now.
const pem_pair& test_cert() {
  static const pem_pair pems = [] {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, key, EVP_sha256());
    BIO* cb = BIO_new(BIO_s_mem());
    BIO* kb = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(cb, x);
    PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
    pem_pair p{bio_text(cb), bio_text(kb)};
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return p;
  }();
  return pems;
}

ssl::context server_ctx() {
  ssl::context ctx(ssl::context::tls_server);
  ctx.use_certificate_chain(asio::buffer(test_cert().cert));
  ctx.use_private_key(asio::buffer(test_cert().key), ssl::context::pem);
  return ctx;
}

ssl::context client_ctx(bool trust) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);
  if (trust) {
    ctx.add_certificate_authority(asio::buffer(test_cert().cert));
  }
  return ctx;
}

// A connected TCP pair on loopback.
struct tcp_pair {
  beast::tcp_stream client;
  beast::tcp_stream server;
};

awaitable<tcp_pair> connect_pair() {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acc(ex, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket c(ex);
  co_await c.async_connect(acc.local_endpoint(), use_awaitable);
  tcp::socket s = co_await acc.async_accept(use_awaitable);
  co_return tcp_pair{beast::tcp_stream(std::move(c)), beast::tcp_stream(std::move(s))};
}

// Both ends after a good handshake.
struct tls_pair {
  direct_tls_stream client;
  direct_tls_stream server;
};

awaitable<tls_pair> handshaken(ssl::context& sctx, ssl::context& cctx) {
  auto p = co_await connect_pair();
  tls_pair t{direct_tls_stream(std::move(p.client), cctx), direct_tls_stream(std::move(p.server), sctx)};
  X509_VERIFY_PARAM_set1_host(SSL_get0_param(t.client.native_handle()), "localhost", 0);
  boost::system::error_code sec, cec;
  co_await when_both(
      [&]() -> awaitable<void> { sec = co_await t.server.handshake(role::server); }(),
      [&]() -> awaitable<void> { cec = co_await t.client.handshake(role::client); }());
  REQUIRE_FALSE(sec);
  REQUIRE_FALSE(cec);
  co_return t;
}

// Sends `total` pattern bytes as frames shaped like the WebSocket writer's: a short header
// buffer followed by a payload buffer, in a mix of sizes around the TLS record size.
awaitable<boost::system::error_code> send_framed(direct_tls_stream& s, std::uint32_t seed, std::size_t total) {
  static constexpr std::size_t payloads[] = {1, 100, 16370, 16384, 16400, 65520, 100000, 7};
  std::vector<std::uint8_t> data(total);
  for (std::size_t i = 0; i < total; ++i) data[i] = pattern_byte(seed, i);
  std::size_t off = 0;
  for (std::size_t k = 0; off < total; ++k) {
    std::size_t hdr = std::min<std::size_t>(2 + k % 13, total - off);
    std::size_t pay = std::min(payloads[k % std::size(payloads)], total - off - hdr);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(data.data() + off, hdr),
                                           asio::buffer(data.data() + off + hdr, pay)};
    boost::system::error_code ec;
    auto n = co_await asio::async_write(s, bufs, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return ec;
    REQUIRE(n == hdr + pay);
    off += n;
  }
  co_return boost::system::error_code{};
}

// Reads exactly `total` bytes and checks them against the pattern.
awaitable<std::size_t> receive_checked(direct_tls_stream& s, std::uint32_t seed, std::size_t total) {
  std::vector<std::uint8_t> buf(48 * 1024);
  std::size_t got = 0;
  std::size_t bad = 0;
  while (got < total) {
    boost::system::error_code ec;
    auto n = co_await s.async_read_some(asio::buffer(buf.data(), std::min(buf.size(), total - got)),
                                        asio::redirect_error(use_awaitable, ec));
    if (ec) break;
    for (std::size_t i = 0; i < n; ++i) bad += buf[i] != pattern_byte(seed, got + i);
    got += n;
  }
  REQUIRE(bad == 0);
  co_return got;
}

}  // namespace

TEST_CASE("direct_tls_stream carries bytes intact both ways for every buffer shape", "[direct_tls]") {
  asio::io_context io;
  auto sctx = server_ctx();
  auto cctx = client_ctx(true);
  constexpr std::size_t total = 3 * 1024 * 1024 + 777;
  REQUIRE(run_test(io, [&]() -> awaitable<void> {
    auto t = co_await handshaken(sctx, cctx);
    std::size_t at_server = 0, at_client = 0;
    boost::system::error_code e1, e2;
    co_await when_both(
        when_both([&]() -> awaitable<void> { e1 = co_await send_framed(t.client, 1, total); }(),
                  [&]() -> awaitable<void> { at_server = co_await receive_checked(t.server, 1, total); }()),
        when_both([&]() -> awaitable<void> { e2 = co_await send_framed(t.server, 2, total); }(),
                  [&]() -> awaitable<void> { at_client = co_await receive_checked(t.client, 2, total); }()));
    CHECK_FALSE(e1);
    CHECK_FALSE(e2);
    CHECK(at_server == total);
    CHECK(at_client == total);
  }, 20'000ms));
}

TEST_CASE("direct_tls_stream: close_notify reads as eof, a bare TCP close as stream_truncated", "[direct_tls]") {
  asio::io_context io;
  auto sctx = server_ctx();
  auto cctx = client_ctx(true);
  for (bool notify : {true, false}) {
    CAPTURE(notify);
    REQUIRE(run_test(io, [&]() -> awaitable<void> {
      auto t = co_await handshaken(sctx, cctx);
      co_await asio::async_write(t.server, asio::buffer("bye", 3), use_awaitable);
      if (notify) t.server.send_close_notify();
      t.server.close();
      std::array<char, 16> buf{};
      boost::system::error_code ec;
      auto n = co_await asio::async_read(t.client, asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      CHECK(n == 3);
      CHECK(std::string(buf.data(), 3) == "bye");
      if (notify) {
        CHECK(ec == asio::error::eof);
      } else {
        CHECK(ec == ssl::error::stream_truncated);
      }
    }));
  }
}

TEST_CASE("direct_tls_stream: writing to a peer that has gone is an error, not SIGPIPE", "[direct_tls]") {
  asio::io_context io;
  auto sctx = server_ctx();
  auto cctx = client_ctx(true);
  REQUIRE(run_test(io, [&]() -> awaitable<void> {
    auto t = co_await handshaken(sctx, cctx);
    t.server.close();
    std::vector<char> chunk(256 * 1024, 'x');
    boost::system::error_code ec;
    for (int i = 0; i < 200 && !ec; ++i) {
      co_await asio::async_write(t.client, asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
    }
    CHECK((ec == asio::error::broken_pipe || ec == asio::error::connection_reset));
  }, 10'000ms));
}

TEST_CASE("direct_tls_stream: an unknown certificate is refused with OpenSSL's reason", "[direct_tls]") {
  asio::io_context io;
  auto sctx = server_ctx();
  auto cctx = client_ctx(false);
  REQUIRE(run_test(io, [&]() -> awaitable<void> {
    auto p = co_await connect_pair();
    direct_tls_stream client(std::move(p.client), cctx);
    direct_tls_stream server(std::move(p.server), sctx);
    boost::system::error_code sec, cec;
    co_await when_both([&]() -> awaitable<void> { sec = co_await server.handshake(role::server); }(),
                       [&]() -> awaitable<void> { cec = co_await client.handshake(role::client); }());
    REQUIRE(cec);
    CHECK(cec.category() == asio::error::get_ssl_category());
    CHECK(SSL_get_verify_result(client.native_handle()) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    CHECK(sec);  // the server hears the alert
  }));
}

TEST_CASE("direct_tls_stream: a silent peer ends the handshake at the deadline", "[direct_tls]") {
  asio::io_context io;
  auto cctx = client_ctx(true);
  REQUIRE(run_test(io, [&]() -> awaitable<void> {
    auto p = co_await connect_pair();  // the server end never speaks
    direct_tls_stream client(std::move(p.client), cctx);
    client.expires_after(150ms);
    auto t0 = clock::now();
    auto ec = co_await client.handshake(role::client);
    CHECK(ec == beast::error::timeout);
    CHECK(clock::now() - t0 < 2s);
    // A cleared deadline no longer cuts operations: the read ends because the peer closes.
    client.expires_never();
    p.server.close();
    std::array<char, 4> buf{};
    boost::system::error_code rec;
    co_await client.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, rec));
    CHECK(rec != beast::error::timeout);
  }));
}

TEST_CASE("direct_tls_stream under Beast WebSocket: messages of every size and the closing handshake",
          "[direct_tls]") {
  asio::io_context io;
  auto sctx = server_ctx();
  auto cctx = client_ctx(true);
  REQUIRE(run_test(io, [&]() -> awaitable<void> {
    auto t = co_await handshaken(sctx, cctx);
    websocket::stream<direct_tls_stream> cws(std::move(t.client));
    websocket::stream<direct_tls_stream> sws(std::move(t.server));
    for (auto* ws : {&cws, &sws}) {
      ws->binary(true);
      ws->auto_fragment(true);
      ws->write_buffer_bytes(4 * direct_tls_stream::record - 16);
      ws->read_message_max(4 * 1024 * 1024);
    }
    co_await when_both([&]() -> awaitable<void> { co_await sws.async_accept(use_awaitable); }(),
                       [&]() -> awaitable<void> { co_await cws.async_handshake("localhost", "/", use_awaitable); }());
    // The server echoes every message; the client checks what comes back.
    std::uint32_t seed = 10;
    for (std::size_t size : {std::size_t{1}, std::size_t{125}, std::size_t{16368}, std::size_t{65520},
                             std::size_t{70000}, std::size_t{1'000'003}}) {
      CAPTURE(size);
      std::vector<std::uint8_t> msg(size);
      for (std::size_t i = 0; i < size; ++i) msg[i] = pattern_byte(seed, i);
      beast::flat_buffer sbuf, cbuf;
      co_await when_both(
          [&]() -> awaitable<void> { co_await cws.async_write(asio::buffer(msg), use_awaitable); }(),
          [&]() -> awaitable<void> {
            co_await sws.async_read(sbuf, use_awaitable);
            co_await sws.async_write(sbuf.data(), use_awaitable);
          }());
      co_await cws.async_read(cbuf, use_awaitable);
      REQUIRE(cbuf.size() == size);
      CHECK(std::memcmp(cbuf.data().data(), msg.data(), size) == 0);
      ++seed;
    }
    boost::system::error_code sec;
    beast::flat_buffer rest;
    co_await when_both(
        [&]() -> awaitable<void> { co_await cws.async_close(websocket::close_code::normal, use_awaitable); }(),
        [&]() -> awaitable<void> {
          co_await sws.async_read(rest, asio::redirect_error(use_awaitable, sec));
        }());
    CHECK(sec == websocket::error::closed);
    CHECK(sws.reason().code == websocket::close_code::normal);
  }, 10'000ms));
}

TEST_CASE("set_cipher_preference: AES-128-GCM by the server's order, ChaCha20 for a client that asks first",
          "[direct_tls]") {
  using transport::ws::set_cipher_preference;
  auto suite_of = [](ssl::context& sctx, ssl::context& cctx) {
    asio::io_context io;
    std::string name;
    REQUIRE(run_test(io, [&]() -> awaitable<void> {
      auto t = co_await handshaken(sctx, cctx);
      name = SSL_CIPHER_get_name(SSL_get_current_cipher(t.client.native_handle()));
    }));
    return name;
  };
  auto sctx = server_ctx();
  set_cipher_preference(sctx, true);
  auto plain = client_ctx(true);  // OpenSSL's default order: AES-256-GCM first
  CHECK(suite_of(sctx, plain) == "TLS_AES_128_GCM_SHA256");
  auto ours = client_ctx(true);
  set_cipher_preference(ours, false);
  auto untuned = server_ctx();
  CHECK(suite_of(untuned, ours) == "TLS_AES_128_GCM_SHA256");  // a server that takes the client's order
  auto chacha_first = client_ctx(true);
  SSL_CTX_set_ciphersuites(chacha_first.native_handle(), "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  CHECK(suite_of(sctx, chacha_first) == "TLS_CHACHA20_POLY1305_SHA256");
}

}  // namespace nl::test
