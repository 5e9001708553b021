#include "transport/quic/quic_tls.hpp"

#include <arpa/inet.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "transport/quic/quic_session.hpp"

namespace nl::transport::quic::tls {
namespace {

// TLS 1.3 only (QUIC requires it), and only the AEADs ngtcp2's GnuTLS backend implements.
constexpr const char* priority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "+AES-128-CCM:%DISABLE_TLS13_COMPAT_MODE";

std::string gtls_error(const char* what, int rv) { return std::string(what) + ": " + gnutls_strerror(rv); }

bool numeric_host(const std::string& h) {
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string common_setup(gnutls_session_t s, const credentials& cred, ngtcp2_crypto_conn_ref* ref) {
  if (int rv = gnutls_priority_set_direct(s, priority, nullptr); rv != 0) {
    return gtls_error("TLS priority", rv);
  }
  gnutls_session_set_ptr(s, ref);
  if (int rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred.get()); rv != 0) {
    return gtls_error("TLS credentials", rv);
  }
  gnutls_datum_t proto{reinterpret_cast<unsigned char*>(const_cast<char*>(alpn.data())),
                       static_cast<unsigned>(alpn.size())};
  if (int rv = gnutls_alpn_set_protocols(s, &proto, 1, GNUTLS_ALPN_MANDATORY); rv != 0) {
    return gtls_error("TLS ALPN", rv);
  }
  return {};
}

}  // namespace

credentials::~credentials() {
  if (cred_) {
    gnutls_certificate_free_credentials(cred_);
  }
}

std::expected<std::shared_ptr<credentials>, std::string> credentials::server(const std::string& cert_file,
                                                                            const std::string& key_file) {
  std::shared_ptr<credentials> c(new credentials());
  if (int rv = gnutls_certificate_allocate_credentials(&c->cred_); rv != 0) {
    return std::unexpected(gtls_error("TLS credentials", rv));
  }
  if (int rv = gnutls_certificate_set_x509_key_file(c->cred_, cert_file.c_str(), key_file.c_str(),
                                                    GNUTLS_X509_FMT_PEM);
      rv < 0) {
    return std::unexpected("cannot load certificate '" + cert_file + "' with key '" + key_file +
                           "': " + gnutls_strerror(rv) + " (both must be PEM files that match)");
  }
  return c;
}

std::expected<std::shared_ptr<credentials>, std::string> credentials::client(const std::string& ca_file) {
  std::shared_ptr<credentials> c(new credentials());
  if (int rv = gnutls_certificate_allocate_credentials(&c->cred_); rv != 0) {
    return std::unexpected(gtls_error("TLS credentials", rv));
  }
  if (ca_file.empty()) {
    if (int rv = gnutls_certificate_set_x509_system_trust(c->cred_); rv < 0) {
      return std::unexpected(gtls_error("cannot load the system trust store", rv));
    }
    return c;
  }
  int n = gnutls_certificate_set_x509_trust_file(c->cred_, ca_file.c_str(), GNUTLS_X509_FMT_PEM);
  if (n < 0) {
    return std::unexpected("cannot load CA file '" + ca_file + "': " + gnutls_strerror(n));
  }
  if (n == 0) {
    return std::unexpected("CA file '" + ca_file + "' holds no PEM certificate");
  }
  return c;
}

session::~session() {
  if (s_) {
    gnutls_deinit(s_);
  }
}

std::string session::init_client(const credentials& cred, ngtcp2_crypto_conn_ref* ref,
                                 const std::string& verify_name, bool insecure) {
  if (int rv = gnutls_init(&s_, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA); rv != 0) {
    return gtls_error("TLS init", rv);
  }
  if (ngtcp2_crypto_gnutls_configure_client_session(s_) != 0) {
    return "ngtcp2_crypto_gnutls_configure_client_session failed";
  }
  if (auto e = common_setup(s_, cred, ref); !e.empty()) {
    return e;
  }
  if (!numeric_host(verify_name) && !verify_name.empty()) {
    gnutls_server_name_set(s_, GNUTLS_NAME_DNS, verify_name.data(), verify_name.size());
  }
  if (!insecure) {
    if (verify_name.empty()) {
      return "no server name to verify the certificate against";
    }
    verify_name_ = verify_name;
    // The handshake itself fails on a bad chain or name; failure_text() says which.
    gnutls_session_set_verify_cert(s_, verify_name_.c_str(), 0);
  }
  return {};
}

std::string session::init_server(const credentials& cred, ngtcp2_crypto_conn_ref* ref) {
  if (int rv = gnutls_init(&s_, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA); rv != 0) {
    return gtls_error("TLS init", rv);
  }
  if (ngtcp2_crypto_gnutls_configure_server_session(s_) != 0) {
    return "ngtcp2_crypto_gnutls_configure_server_session failed";
  }
  return common_setup(s_, cred, ref);
}

std::string session::failure_text(int liberr, std::uint8_t alert) const {
  if (s_ && !verify_name_.empty()) {
    if (unsigned status = gnutls_session_get_verify_cert_status(s_); status != 0) {
      gnutls_datum_t out{};
      std::string why = "untrusted certificate";
      if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
        why.assign(reinterpret_cast<const char*>(out.data), out.size);
        gnutls_free(out.data);
      }
      return "certificate verification failed for '" + verify_name_ + "': " + why +
             " (check the CA file and the server name)";
    }
  }
  if (liberr != 0) {
    return std::string("TLS handshake failed: ") + gnutls_strerror(liberr);
  }
  if (alert != 0) {
    return "TLS handshake failed: " + alert_text(alert);
  }
  return "TLS handshake failed";
}

std::string alert_text(std::uint8_t alert) {
  if (alert == GNUTLS_A_NO_APPLICATION_PROTOCOL) {
    return "no_application_protocol: the peer does not speak " + std::string(alpn) +
           " over QUIC (not nl, or another protocol version)";
  }
  const char* name = gnutls_alert_get_strname(static_cast<gnutls_alert_description_t>(alert));
  return name ? std::string(name) : "alert " + std::to_string(alert);
}

}  // namespace nl::transport::quic::tls
