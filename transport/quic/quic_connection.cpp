#include "transport/quic/quic_connection.hpp"

#include "transport/incoming_adapter.hpp"
#include "transport/quic/quic_internal.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <gnutls/crypto.h>
#include <spdlog/spdlog.h>

namespace nl::transport::quic::detail {

using proto::goaway_code;

namespace {

constexpr std::size_t cid_len = 18;               // our connection IDs (the listener demuxes on them)
constexpr std::size_t max_udp_payload = 1452;     // largest datagram we send (Ethernet-safe)
constexpr std::size_t loopback_udp_payload = 16000; // over loopback (MTU 64 KiB), 4 per GSO run
constexpr std::size_t max_packets_per_flush = 64; // then yield to the reader
constexpr std::size_t max_vecs = 16;              // iovecs per writev_stream call
constexpr std::size_t max_reason = 512;           // CONNECTION_CLOSE reason phrase, bytes

std::string endpoint_text(const udp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// ngtcp2's crypto helpers find the connection through this.
ngtcp2_conn* cb_get_conn(ngtcp2_crypto_conn_ref* ref) { return static_cast<connection*>(ref->user_data)->conn(); }

}  // namespace

bool random_cid(ngtcp2_cid& cid) {
  cid.datalen = cid_len;
  return gnutls_rnd(GNUTLS_RND_RANDOM, cid.data, cid.datalen) == 0;
}

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

connection::connection(asio::any_io_executor ex, bool server, quic_options opts, std::shared_ptr<conn_host> host)
    : ex_(std::move(ex)),
      server_(server),
      opts_(std::move(opts)),
      host_(std::move(host)),
      accept_q_(ex_),
      closed_ev_(ex_),
      state_ev_(ex_),
      streams_ev_(ex_),
      timer_(ex_) {
  if (opts_.log_name.empty()) {
    opts_.log_name = server_ ? "quic server" : "quic client";
  }
}

connection::~connection() {
  if (conn_) {
    ngtcp2_conn_del(conn_);  // before the stream buffers it may still point into
  }
}

std::string connection::init_common(bool server, const udp::endpoint& local, const udp::endpoint& remote) {
  local_ = local;
  remote_ = remote;
  remote_text_ = endpoint_text(remote);
  ref_.get_conn = cb_get_conn;
  ref_.user_data = this;
  (void)server;
  return {};
}

namespace {

// The largest datagram we send to `remote`. Paths across networks get 1452 bytes (fits any
// Ethernet path with IPv6 or tunnels; ngtcp2's PMTUD probes stop at 1444). Over loopback
// the path is the host's own loopback device (MTU 64 KiB), so datagrams can be as large
// as TCP's segments there: far fewer packets to encrypt and account per byte.
// NL_QUIC_MAX_DATAGRAM (1200..65000) overrides this for every peer: for paths whose MTU
// is below 1500 (some tunnels), and to measure loopback with Internet-sized datagrams.
// It is read once per process, not per connection (a bad value warns once); 0 = unset.
std::size_t udp_payload_override() {
  static const std::size_t value = []() -> std::size_t {
    const char* env = std::getenv("NL_QUIC_MAX_DATAGRAM");
    if (!env) {
      return 0;
    }
    char* end = nullptr;
    auto v = std::strtoul(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1200 && v <= max_gso_bytes) {
      return v;
    }
    spdlog::warn("NL_QUIC_MAX_DATAGRAM='{}' ignored: use a number of bytes from 1200 to {}", env, max_gso_bytes);
    return 0;
  }();
  return value;
}

std::size_t udp_payload_for(const udp::endpoint& remote) {
  if (auto v = udp_payload_override()) {
    return v;
  }
  return remote.address().is_loopback() ? loopback_udp_payload : max_udp_payload;
}

void fill_settings(ngtcp2_settings& s, const quic_options& o, std::chrono::milliseconds handshake_timeout,
                   std::size_t payload) {
  ngtcp2_settings_default(&s);
  s.initial_ts = now_ts();
  s.max_tx_udp_payload_size = payload;
  // Without this, ngtcp2 0.12 stays at 1200 bytes until PMTUD raises it (to ≤ 1444).
  s.no_tx_udp_payload_size_shaping = payload > max_udp_payload ? 1 : 0;
  s.max_window = o.max_connection_window;
  s.max_stream_window = o.max_stream_window;
  s.handshake_timeout = static_cast<ngtcp2_duration>(handshake_timeout.count()) * NGTCP2_MILLISECONDS;
}

void fill_params(ngtcp2_transport_params& p, const quic_options& o, bool server) {
  ngtcp2_transport_params_default(&p);
  p.initial_max_stream_data_bidi_local = o.stream_window;
  p.initial_max_stream_data_bidi_remote = o.stream_window;
  p.initial_max_stream_data_uni = 0;
  p.initial_max_data = o.connection_window;
  // The server counts the client's control stream as well.
  p.initial_max_streams_bidi = o.max_streams + (server ? 1 : 0);
  p.initial_max_streams_uni = 0;
  p.max_idle_timeout = static_cast<ngtcp2_duration>(o.idle_timeout.count()) * NGTCP2_MILLISECONDS;
  p.active_connection_id_limit = 4;
}

}  // namespace

std::string connection::init_client(const client_options& o, const udp::endpoint& local, const udp::endpoint& remote,
                                    std::shared_ptr<tls::credentials> cred) {
  init_common(false, local, remote);
  cred_ = std::move(cred);
  client_token_ = o.token;
  client_endpoint_ = o.endpoint;
  auto name = o.server_name.empty() ? o.host : o.server_name;
  if (auto e = tls_.init_client(*cred_, &ref_, name, o.insecure); !e.empty()) {
    return e;
  }
  ngtcp2_cid dcid, scid;
  if (!random_cid(dcid) || !random_cid(scid)) {
    return "no randomness for connection IDs";
  }
  ngtcp2_settings settings;
  max_payload_ = udp_payload_for(remote_);
  fill_settings(settings, opts_, o.timeout, max_payload_);
  ngtcp2_transport_params params;
  fill_params(params, opts_, false);
  ngtcp2_path path{{const_cast<sockaddr*>(local_.data()), static_cast<ngtcp2_socklen>(local_.size())},
                   {const_cast<sockaddr*>(remote_.data()), static_cast<ngtcp2_socklen>(remote_.size())},
                   nullptr};
  auto callbacks = make_callbacks(false);
  if (int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &callbacks, &settings,
                                      &params, nullptr, this);
      rv != 0) {
    return std::string("ngtcp2_conn_client_new: ") + ngtcp2_strerror(rv);
  }
  ngtcp2_conn_set_tls_native_handle(conn_, tls_.get());
  ngtcp2_conn_set_keep_alive_timeout(conn_, static_cast<ngtcp2_duration>(opts_.keepalive.count()) *
                                                NGTCP2_MILLISECONDS);
  schedule_flush();  // the Initial packet
  return {};
}

std::string connection::init_server(const udp::endpoint& local, const udp::endpoint& remote, const ngtcp2_pkt_hd& hd,
                                    const ngtcp2_cid& odcid, std::shared_ptr<tls::credentials> cred,
                                    std::chrono::milliseconds hello_timeout) {
  init_common(true, local, remote);
  cred_ = std::move(cred);
  if (auto e = tls_.init_server(*cred_, &ref_); !e.empty()) {
    return e;
  }
  ngtcp2_cid scid;
  if (!random_cid(scid)) {
    return "no randomness for connection IDs";
  }
  ngtcp2_settings settings;
  max_payload_ = udp_payload_for(remote_);
  fill_settings(settings, opts_, hello_timeout, max_payload_);
  settings.token = hd.token;  // validated: ngtcp2 then lifts the anti-amplification limit
  ngtcp2_transport_params params;
  fill_params(params, opts_, true);
  // After a Retry the client proves it got it: the Initial's first DCID, and the one the Retry gave.
  params.original_dcid = odcid;
  params.retry_scid = hd.dcid;
  params.retry_scid_present = 1;
  params.stateless_reset_token_present = 1;
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, params.stateless_reset_token, sizeof(params.stateless_reset_token));
  params.disable_active_migration = 1;
  ngtcp2_path path{{const_cast<sockaddr*>(local_.data()), static_cast<ngtcp2_socklen>(local_.size())},
                   {const_cast<sockaddr*>(remote_.data()), static_cast<ngtcp2_socklen>(remote_.size())},
                   nullptr};
  auto callbacks = make_callbacks(true);
  if (int rv = ngtcp2_conn_server_new(&conn_, &hd.scid, &scid, &path, hd.version, &callbacks, &settings, &params,
                                      nullptr, this);
      rv != 0) {
    return std::string("ngtcp2_conn_server_new: ") + ngtcp2_strerror(rv);
  }
  ngtcp2_conn_set_tls_native_handle(conn_, tls_.get());
  ngtcp2_conn_set_keep_alive_timeout(conn_, static_cast<ngtcp2_duration>(opts_.keepalive.count()) *
                                                NGTCP2_MILLISECONDS);
  auto self = shared_from_this();
  cids_.push_back(scid);
  cids_.push_back(hd.dcid);
  host_->add_cid(scid, self);
  host_->add_cid(hd.dcid, self);
  std::weak_ptr<connection> weak = self;
  hello_deadline_ = std::make_unique<watchdog>(ex_, hello_timeout, [weak] {
    if (auto c = weak.lock(); c && !c->established_) {
      c->refuse(errc::timeout, "no HELLO or no answer to it in time");
    }
  });
  return {};
}

// ---------------------------------------------------------------------------------------
// Packets in, packets out, timer
// ---------------------------------------------------------------------------------------

void connection::on_packet(const udp::endpoint& from, const std::uint8_t* p, std::size_t n) {
  if (done_ || !conn_) {
    return;
  }
  auto self = shared_from_this();
  udp::endpoint remote = from;
  ngtcp2_path path{{const_cast<sockaddr*>(local_.data()), static_cast<ngtcp2_socklen>(local_.size())},
                   {remote.data(), static_cast<ngtcp2_socklen>(remote.size())},
                   nullptr};
  ngtcp2_pkt_info pi{};
  if (int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, p, n, now_ts()); rv != 0) {
    on_read_error(rv);
    return;
  }
  schedule_flush();
}

void connection::on_socket_error(const error_code& ec) {
  if (done_) {
    return;
  }
  if (!established_) {
    fail_code_ = errc::not_connected;
    fail_text_ = ec == asio::error::connection_refused
                     ? "nothing answers on UDP " + remote_text_ + " (connection refused)"
                     : "UDP socket error: " + ec.message();
  }
  finish(false, goaway_code::normal, "connection lost: " + ec.message());
  terminate();
}

void connection::fail_dial(errc code, std::string why) {
  if (done_ || established_) {
    return;
  }
  fail_code_ = code;
  fail_text_ = why;
  finish(false, goaway_code::timeout, why);
  send_close(goaway_code_base + static_cast<std::uint64_t>(goaway_code::timeout), why);
  terminate();
}

void connection::schedule_flush() {
  if (flush_posted_ || done_) {
    return;
  }
  flush_posted_ = true;
  asio::post(ex_, [self = shared_from_this()] { self->flush(); });
}

void connection::flush() {
  flush_posted_ = false;
  if (done_ || !conn_) {
    return;
  }
  if (send_blocked_ || ngtcp2_conn_is_in_closing_period(conn_) || ngtcp2_conn_is_in_draining_period(conn_)) {
    return;
  }
  auto ts = now_ts();
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  std::array<ngtcp2_vec, max_vecs> vec{};
  std::size_t packets = 0;
  // Packets are written one after another into buf_ and sent in runs (udp_io.hpp).
  struct {
    std::size_t bytes = 0, segment = 0, count = 0;
    udp::endpoint to;
  } run;
  auto send_run = [&] { return send_packet(run.to, buf_.data(), run.bytes, run.count > 1 ? run.segment : 0); };
  while (packets < max_packets_per_flush) {
    auto st = closed_ ? nullptr : pick();
    std::int64_t sid = -1;
    std::size_t nvec = 0;
    std::uint64_t offered = 0;
    bool fin = false;
    std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    if (st) {
      sid = st->id;
      std::uint64_t off = st->tx_base;
      for (auto& c : st->tx) {
        std::uint64_t end = off + c.size();
        if (end > st->tx_sent && nvec < max_vecs) {
          auto from = std::max(off, st->tx_sent);
          vec[nvec].base = reinterpret_cast<std::uint8_t*>(c.data()) + (from - off);
          vec[nvec].len = static_cast<std::size_t>(end - from);
          offered += vec[nvec].len;
          ++nvec;
        }
        off = end;
      }
      fin = st->fin_wanted && st->tx_sent + offered == st->tx_end;
      if (fin) {
        flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
    }
    ngtcp2_ssize ndatalen = -1;
    auto nwrite = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, buf_.data() + run.bytes, max_payload_,
                                            &ndatalen, flags, sid, vec.data(), nvec, ts);
    auto account = [&] {
      if (!st || ndatalen < 0) {
        return;
      }
      st->tx_sent += static_cast<std::uint64_t>(ndatalen);
      if (fin && st->tx_sent == st->tx_end) {
        st->fin_sent = true;
      }
      send_q_.pop_front();
      if (st->has_output()) {
        send_q_.push_back(st);  // round robin
      } else {
        st->queued = false;
      }
    };
    if (nwrite < 0) {
      if (nwrite == NGTCP2_ERR_WRITE_MORE) {
        account();
        continue;
      }
      if (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED && st) {
        st->fc_blocked = true;
        st->queued = false;
        send_q_.pop_front();
        continue;
      }
      if ((nwrite == NGTCP2_ERR_STREAM_SHUT_WR || nwrite == NGTCP2_ERR_STREAM_NOT_FOUND) && st) {
        st->queued = false;
        send_q_.pop_front();
        continue;
      }
      spdlog::warn("{}: ngtcp2_conn_writev_stream: {}", opts_.log_name, ngtcp2_strerror(static_cast<int>(nwrite)));
      finish(false, goaway_code::protocol, std::string("QUIC error: ") + ngtcp2_strerror(static_cast<int>(nwrite)));
      terminate();
      return;
    }
    account();
    if (nwrite == 0) {
      break;
    }
    udp::endpoint to = remote_;
    if (server_ && ps.path.remote.addrlen > 0 && ps.path.remote.addrlen <= to.capacity()) {
      std::memcpy(to.data(), ps.path.remote.addr, ps.path.remote.addrlen);
      to.resize(ps.path.remote.addrlen);
    }
    ++packets;
    auto len = static_cast<std::size_t>(nwrite);
    // A GSO run is equal-sized packets to one peer, the last one possibly shorter. A packet
    // that does not fit the run (longer, or to another address) starts the next one.
    if (run.count > 0 && (len > run.segment || to != run.to)) {
      bool ok = send_run();
      std::memmove(buf_.data(), buf_.data() + run.bytes, len);
      run = {};
      if (!ok) {
        send_packet(to, buf_.data(), len, 0);  // queued behind the blocked run
        break;
      }
    }
    if (run.count == 0) {
      run.segment = len;
      run.to = to;
    }
    run.bytes += len;
    ++run.count;
    if (len < run.segment || run.count == max_gso_segments || run.bytes + max_payload_ > buf_.size()) {
      bool ok = send_run();
      run = {};
      if (!ok) {
        break;
      }
    }
  }
  if (run.count > 0) {
    send_run();
  }
  // Stream resets go after this round of packets, so that a RESET frame with the message
  // (control stream, written first) usually reaches the peer before RESET_STREAM does.
  if (!shutdowns_.empty() && !send_blocked_ && !done_) {
    for (const auto& s : shutdowns_) {
      if (s.read_only) {
        ngtcp2_conn_shutdown_stream_read(conn_, s.id, s.code);
      } else {
        ngtcp2_conn_shutdown_stream(conn_, s.id, s.code);
      }
    }
    shutdowns_.clear();
    schedule_flush();
  }
  // Pacing only once the handshake is done: ngtcp2 0.12 paces the handshake with its
  // 333 ms initial RTT guess, which would add ~22 ms to every connect.
  if (handshake_done_) {
    ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  }
  if (packets == max_packets_per_flush) {
    schedule_flush();
  }
  if (!done_) {
    arm_timer();
  }
}

// False when the socket is full (the packets wait for writability) or the peer is gone.
bool connection::send_packet(const udp::endpoint& to, const std::uint8_t* p, std::size_t n, std::size_t segment) {
  if (send_blocked_) {
    blocked_.push_back({to, std::vector<std::uint8_t>(p, p + n), segment});
    return false;
  }
  auto ec = host_->send(to, p, n, segment);
  if (!ec) {
    return true;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::no_buffer_space) {
    blocked_.push_back({to, std::vector<std::uint8_t>(p, p + n), segment});
    wait_socket();
    return false;
  }
  if (ec == asio::error::connection_refused && !server_) {
    on_socket_error(ec);
    return false;
  }
  spdlog::debug("{}: send failed: {}", opts_.log_name, ec.message());  // lost: QUIC recovers
  return true;
}

void connection::wait_socket() {
  send_blocked_ = true;
  auto self = shared_from_this();
  asio::co_spawn(
      ex_,
      [self]() -> awaitable<void> {
        while (!self->done_ && !self->blocked_.empty()) {
          auto ec = co_await self->host_->wait_writable();
          if (ec || self->done_) {
            break;
          }
          auto& b = self->blocked_.front();
          auto sec = self->host_->send(b.to, b.bytes.data(), b.bytes.size(), b.segment);
          if (sec == asio::error::would_block || sec == asio::error::try_again) {
            continue;
          }
          self->blocked_.pop_front();  // sent, or lost (QUIC recovers)
        }
        self->blocked_.clear();
        self->send_blocked_ = false;
        self->schedule_flush();
      },
      asio::detached);
}

void connection::arm_timer() {
  auto expiry = ngtcp2_conn_get_expiry(conn_);
  if (expiry == armed_) {
    return;
  }
  armed_ = expiry;
  if (expiry == UINT64_MAX) {
    timer_.cancel();
    return;
  }
  if (expiry <= now_ts()) {
    // Already due, which on a fast path is the common case: ngtcp2 reports the
    // pacer's next send time, and that is usually "now". Arming the steady
    // timer for a past instant costs a timerfd_settime and an extra reactor
    // wake-up for nothing; run the expiry as the next handler instead. This
    // fires no sooner than the timer would have, so it cannot spin more than
    // the timer could: each run calls ngtcp2_conn_handle_expiry, which moves
    // the expiry on, and posted handlers still let the reactor poll.
    timer_.cancel();
    asio::post(ex_, [self = shared_from_this(), expiry] {
      if (self->done_ || self->armed_ != expiry) {
        return;
      }
      self->armed_ = UINT64_MAX;
      self->on_expiry();
    });
    return;
  }
  timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(expiry)));
  timer_.async_wait([self = shared_from_this(), expiry](const error_code& ec) {
    if (ec || self->done_ || self->armed_ != expiry) {
      return;
    }
    self->armed_ = UINT64_MAX;
    self->on_expiry();
  });
}

void connection::on_expiry() {
  int rv = ngtcp2_conn_handle_expiry(conn_, now_ts());
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    spdlog::warn("{}: no packet from {} within the idle timeout; closing", opts_.log_name, remote_text_);
    if (!established_ && fail_text_.empty()) {
      fail_text_ = "no answer from " + remote_text_ + " (QUIC idle timeout)";
    }
    finish(false, goaway_code::timeout, "peer unresponsive (QUIC idle timeout)");
    terminate();  // silently, as the idle timeout prescribes
    return;
  }
  if (rv != 0) {
    on_read_error(rv);
    return;
  }
  flush();
}

void connection::on_read_error(int rv) {
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      on_peer_close();
      return;
    case NGTCP2_ERR_DROP_CONN:
      finish(false, goaway_code::protocol, "connection dropped");
      terminate();
      return;
    case NGTCP2_ERR_CRYPTO: {
      auto why = tls_.failure_text(ngtcp2_conn_get_tls_error(conn_), ngtcp2_conn_get_tls_alert(conn_));
      spdlog::warn("{}: {} ({})", opts_.log_name, why, remote_text_);
      if (fail_text_.empty()) {
        fail_text_ = why;
      }
      finish(false, goaway_code::protocol, why);
      ngtcp2_connection_close_error ccerr;
      ngtcp2_connection_close_error_default(&ccerr);
      ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, ngtcp2_conn_get_tls_alert(conn_), nullptr,
                                                                  0);
      write_close(ccerr);
      terminate();
      return;
    }
    default: {
      auto why = std::string("QUIC error: ") + ngtcp2_strerror(rv);
      if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        why = "QUIC handshake with " + remote_text_ + " timed out";
      }
      if (fail_text_.empty()) {
        fail_text_ = why;
      }
      finish(false, goaway_code::protocol, why);
      ngtcp2_connection_close_error ccerr;
      ngtcp2_connection_close_error_default(&ccerr);
      ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
      if (!ngtcp2_conn_is_in_closing_period(conn_) && !ngtcp2_conn_is_in_draining_period(conn_)) {
        write_close(ccerr);
      }
      terminate();
      return;
    }
  }
}

void connection::on_peer_close() {
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_conn_get_connection_close_error(conn_, &ccerr);
  std::string reason(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
  auto code = goaway_code::normal;
  if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
    if (ccerr.error_code >= refusal_code_base && ccerr.error_code < refusal_code_base + 0x100) {
      fail_code_ = static_cast<errc>(ccerr.error_code - refusal_code_base);
      fail_text_ = reason.empty() ? std::string(describe(fail_code_)) : reason;
    } else if (ccerr.error_code >= goaway_code_base && ccerr.error_code <= goaway_code_base + 5) {
      code = static_cast<goaway_code>(ccerr.error_code - goaway_code_base);
    }
  } else if (ccerr.error_code != 0) {
    if (ccerr.error_code >= 0x100 && ccerr.error_code < 0x200) {
      reason = (server_ ? "the client" : "the server") + std::string(" refused the TLS handshake: ") +
               tls::alert_text(static_cast<std::uint8_t>(ccerr.error_code - 0x100));
    } else {
      reason = "closed by peer: QUIC transport error " + std::to_string(ccerr.error_code) +
               (reason.empty() ? "" : " (" + reason + ")");
    }
    code = goaway_code::protocol;
  }
  if (fail_text_.empty()) {
    fail_text_ = reason.empty() ? "connection closed by " + remote_text_ : reason;
  }
  spdlog::debug("{}: peer closed: {} ({})", opts_.log_name, proto::describe(code), reason);
  finish(true, code, reason);
  terminate();
}

void connection::send_close(std::uint64_t app_code, const std::string& reason) {
  if (!conn_ || done_ || ngtcp2_conn_is_in_closing_period(conn_) || ngtcp2_conn_is_in_draining_period(conn_)) {
    return;
  }
  auto r = reason.substr(0, max_reason);
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default(&ccerr);
  ngtcp2_connection_close_error_set_application_error(&ccerr, app_code, reinterpret_cast<const std::uint8_t*>(r.data()),
                                                      r.size());
  write_close(ccerr);
}

void connection::write_close(const ngtcp2_connection_close_error& ccerr) {
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  auto n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, buf_.data(), max_payload_, &ccerr, now_ts());
  if (n > 0) {
    host_->send(remote_, buf_.data(), static_cast<std::size_t>(n), 0);
  }
}

// Marks the session closed and fails every stream; terminate() releases the connection.
void connection::finish(bool remote, goaway_code code, std::string message) {
  if (closed_) {
    return;
  }
  closed_ = true;
  draining_ = true;
  if (!close_info_.remote) {
    close_info_.remote = remote;
    close_info_.code = code;
    close_info_.message = std::move(message);
  }
  for (auto& [id, st] : streams_) {
    fail_with_session(*st, close_info_.message);
  }
  accept_q_.close();
  state_ev_.notify();
  streams_ev_.notify();
}

void connection::terminate() {
  if (done_) {
    return;
  }
  auto self = shared_from_this();
  done_ = true;
  timer_.cancel();
  hello_deadline_.reset();
  for (auto& [id, st] : streams_) {
    st->ev.notify();
  }
  send_q_.clear();
  host_->on_done(*this);
  closed_ev_.notify();
  state_ev_.notify();
}

void connection::protocol_error(std::string why) {
  spdlog::warn("{}: protocol error from {}: {}", opts_.log_name, remote_text_, why);
  auto self = shared_from_this();
  // Not from inside an ngtcp2 callback: close() writes a packet.
  asio::post(ex_, [self, why = std::move(why)] { self->close(goaway_code::protocol, why); });
}

}  // namespace nl::transport::quic::detail
