// GnuTLS pieces of the QUIC transport: credentials (server certificate, client trust
// anchors), per-connection TLS sessions configured for ngtcp2, and readable failure text.
// Internal to transport/quic. Thread-safety: credentials are immutable once built and may
// be shared by sessions of one thread.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

namespace nl::transport::quic::tls {

// Owns a gnutls_certificate_credentials_t.
class credentials {
public:
  ~credentials();
  credentials(const credentials&) = delete;
  credentials& operator=(const credentials&) = delete;
  gnutls_certificate_credentials_t get() const noexcept { return cred_; }

  static std::expected<std::shared_ptr<credentials>, std::string> server(const std::string& cert_file,
                                                                         const std::string& key_file);
  // ca_file "" = system trust store.
  static std::expected<std::shared_ptr<credentials>, std::string> client(const std::string& ca_file);

private:
  credentials() = default;
  gnutls_certificate_credentials_t cred_ = nullptr;
};

// Owns a gnutls_session_t configured for QUIC (TLS 1.3 only, ALPN nl/1, ngtcp2 hooks).
class session {
public:
  session() = default;
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  gnutls_session_t get() const noexcept { return s_; }

  // `verify_name` empty with !insecure is an error; numeric names are verified against IP
  // SANs and not sent as SNI.
  std::string init_client(const credentials& cred, ngtcp2_crypto_conn_ref* ref, const std::string& verify_name,
                          bool insecure);
  std::string init_server(const credentials& cred, ngtcp2_crypto_conn_ref* ref);

  // Why the handshake failed, as far as TLS knows ("certificate verification failed for
  // 'x': The certificate is NOT trusted. ..."); `liberr` is ngtcp2_conn_get_tls_error(),
  // `alert` the TLS alert we sent (ngtcp2_conn_get_tls_alert()), 0 if none.
  std::string failure_text(int liberr, std::uint8_t alert) const;

private:
  gnutls_session_t s_ = nullptr;
  std::string verify_name_;
};

// A TLS alert in words, for logs and dial errors: "no_application_protocol: the peer does
// not speak nl/1 ...", or GnuTLS's name of the alert.
std::string alert_text(std::uint8_t alert);

}  // namespace nl::transport::quic::tls
