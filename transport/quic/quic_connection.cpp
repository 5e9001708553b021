#include "transport/quic/quic_connection.hpp"

#include "transport/chunk_queue.hpp"
#include "transport/incoming_adapter.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <gnutls/crypto.h>
#include <spdlog/spdlog.h>

namespace nl::transport::quic::detail {

using proto::frame_type;
using proto::goaway_code;

namespace {

constexpr std::size_t cid_len = 18;               // our connection IDs (the listener demuxes on them)
constexpr std::size_t max_udp_payload = 1452;     // largest datagram we send (Ethernet-safe)
constexpr std::size_t loopback_udp_payload = 16000; // over loopback (MTU 64 KiB), 4 per GSO run
constexpr std::size_t max_packets_per_flush = 64; // then yield to the reader
constexpr std::size_t rx_chunk = 64 * 1024;       // received bytes are gathered in chunks this big
constexpr std::size_t max_vecs = 16;              // iovecs per writev_stream call
constexpr std::size_t max_reason = 512;           // CONNECTION_CLOSE reason phrase, bytes

ngtcp2_tstamp now_ts() {
  return static_cast<ngtcp2_tstamp>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

errc errc_from_wire(std::uint64_t code) {
  if (code >= 1 && code <= 63) {
    return static_cast<errc>(code);
  }
  return errc::aborted;
}

std::string endpoint_text(const udp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

connection* self_of(void* user_data) { return static_cast<connection*>(user_data); }

// ---- ngtcp2 callback trampolines: call the member, never let an exception cross C ----
template <class F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    spdlog::error("quic: callback failed: {}", e.what());
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
}

int cb_recv_stream_data(ngtcp2_conn*, std::uint32_t flags, std::int64_t id, std::uint64_t, const std::uint8_t* data,
                        std::size_t len, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_recv_stream_data(flags, id, data, len); });
}
int cb_acked(ngtcp2_conn*, std::int64_t id, std::uint64_t offset, std::uint64_t len, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_acked(id, offset, len); });
}
int cb_stream_open(ngtcp2_conn*, std::int64_t id, void* ud) {
  return guarded([&] { return self_of(ud)->on_stream_open(id); });
}
int cb_stream_close(ngtcp2_conn*, std::uint32_t flags, std::int64_t id, std::uint64_t code, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_stream_close(flags, id, code); });
}
int cb_stream_reset(ngtcp2_conn*, std::int64_t id, std::uint64_t, std::uint64_t code, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_stream_reset(id, code); });
}
int cb_stop_sending(ngtcp2_conn*, std::int64_t id, std::uint64_t code, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_stream_reset(id, code); });
}
int cb_extend_stream_data(ngtcp2_conn*, std::int64_t id, std::uint64_t, void* ud, void*) {
  return guarded([&] { return self_of(ud)->on_extend_stream_data(id); });
}
int cb_extend_local_streams(ngtcp2_conn*, std::uint64_t, void* ud) {
  return guarded([&] { return self_of(ud)->on_extend_local_streams(); });
}
int cb_handshake_completed(ngtcp2_conn*, void* ud) {
  return guarded([&] { return self_of(ud)->on_handshake_completed(); });
}
int cb_new_cid(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t len, void* ud) {
  return guarded([&] { return self_of(ud)->on_new_cid(cid, token, len); });
}
int cb_remove_cid(ngtcp2_conn*, const ngtcp2_cid* cid, void* ud) {
  return guarded([&] { return self_of(ud)->on_remove_cid(cid); });
}
void cb_rand(std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx*) {
  (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}
ngtcp2_conn* cb_get_conn(ngtcp2_crypto_conn_ref* ref) { return static_cast<connection*>(ref->user_data)->conn(); }

ngtcp2_callbacks make_callbacks(bool server) {
  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    cb.extend_max_local_streams_bidi = cb_extend_local_streams;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.handshake_completed = cb_handshake_completed;
  cb.recv_stream_data = cb_recv_stream_data;
  cb.acked_stream_data_offset = cb_acked;
  cb.stream_open = cb_stream_open;
  cb.stream_close = cb_stream_close;
  cb.stream_reset = cb_stream_reset;
  cb.stream_stop_sending = cb_stop_sending;
  cb.extend_max_stream_data = cb_extend_stream_data;
  cb.extend_max_local_streams_bidi = cb_extend_local_streams;
  cb.rand = cb_rand;
  cb.get_new_connection_id = cb_new_cid;
  cb.remove_connection_id = cb_remove_cid;
  return cb;
}

bool random_cid(ngtcp2_cid& cid) {
  cid.datalen = cid_len;
  return gnutls_rnd(GNUTLS_RND_RANDOM, cid.data, cid.datalen) == 0;
}

proto::hello_body client_hello(const std::string& token, const std::string& endpoint) {
  proto::hello_body h;
  h.identity = token;
  h.info = endpoint.empty() ? "nl-quic client" : endpoint;
  return h;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Per-stream state and the application's handles
// ---------------------------------------------------------------------------------------

struct stream_state {
  stream_state(std::int64_t i, const asio::any_io_executor& ex) : id(i), ev(ex) {}
  enum class phase : std::uint8_t {
    want_open,    // acceptor: waiting for the OPEN frame
    pending,      // acceptor: OPEN queued for the application
    want_result,  // opener: waiting for OPEN_RESULT
    open,         // raw bytes both ways
  };
  std::int64_t id;
  bool control = false;
  phase ph = phase::open;
  // receive
  std::vector<std::byte> head;  // the first frame, while it arrives in pieces
  chunk_queue rx;
  bool rx_fin = false;
  // send: bytes are kept until acknowledged (ngtcp2 retransmits from them)
  chunk_queue tx;
  std::uint64_t tx_base = 0;  // stream offset of tx.front()
  std::uint64_t tx_sent = 0;  // handed to ngtcp2
  std::uint64_t tx_end = 0;   // written by the application (and our frames)
  bool fin_wanted = false;
  bool fin_sent = false;
  bool fc_blocked = false;    // waiting for the peer's MAX_STREAM_DATA
  bool queued = false;        // in send_q_
  // end
  bool reset = false;
  bool closed = false;        // ngtcp2 closed it
  error_code error;
  std::string message;
  std::vector<std::byte> envelope;  // opener: the acceptor's end-to-end answer
  std::unique_ptr<watchdog> answer_wd;  // opener: how long the answer may take
  async_event ev;

  bool has_output() const { return tx_sent < tx_end || (fin_wanted && !fin_sent); }
};

namespace {

class quic_stream final : public stream {
public:
  quic_stream(std::shared_ptr<connection> c, state_ptr st) : c_(std::move(c)), st_(std::move(st)) {}
  ~quic_stream() override { c_->stream_release(st_); }
  std::uint32_t id() const noexcept override { return static_cast<std::uint32_t>(st_->id); }
  awaitable<result<bytes>> read() override { return c_->stream_read(st_); }
  awaitable<error_code> write(bytes data) override { return c_->stream_write(st_, std::move(data)); }
  awaitable<error_code> shutdown_send() override {
    co_await c_->stream_shutdown(st_);
    co_return st_->reset ? st_->error : error_code{};
  }
  void reset(errc code, std::string_view message) override { c_->reset_stream(st_, code, message, true); }
  const std::string& error_message() const noexcept override { return st_->message; }

private:
  std::shared_ptr<connection> c_;
  state_ptr st_;
};

using quic_incoming = answerable_incoming<connection, stream_state, quic_stream>;
using quic_opening = opening_adapter<connection, stream_state, quic_stream>;

}  // namespace

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

connection::connection(asio::any_io_executor ex, bool server, quic_options opts, std::shared_ptr<conn_host> host)
    : ex_(std::move(ex)),
      server_(server),
      opts_(std::move(opts)),
      host_(std::move(host)),
      accept_ev_(ex_),
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
                                    std::shared_ptr<tls::credentials> cred,
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
  ngtcp2_transport_params params;
  fill_params(params, opts_, true);
  params.original_dcid = hd.dcid;
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
    if (!st->reset) {
      st->reset = true;
      st->error = make_error_code(errc::session_closed);
      st->message = close_info_.message;
      st->rx.clear();
    }
    st->ev.notify();
  }
  accept_q_.clear();
  accept_ev_.notify();
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

// ---------------------------------------------------------------------------------------
// Session interface
// ---------------------------------------------------------------------------------------

std::size_t connection::stream_count() const noexcept { return streams_.size() - (ctl_ && !ctl_->closed ? 1 : 0); }

open_outcome connection::outcome_of(const state_ptr& st) {
  open_outcome out;
  out.envelope = std::move(st->envelope);
  if (st->reset) {
    out.error = st->error;
    out.message = st->message;
  } else {
    out.stream = std::make_unique<quic_stream>(shared_from_this(), st);
  }
  return out;
}

namespace {
open_outcome failed_outcome(errc code, std::string message) {
  open_outcome out;
  out.error = make_error_code(code);
  out.message = std::move(message);
  return out;
}
}  // namespace

// Not a coroutine: see the note on g++ 12 and aggregates in mux_session.cpp.
void connection::queue_open(const state_ptr& st, open_request req) {
  proto::open_body body;
  body.window = static_cast<std::uint32_t>(std::min<std::uint64_t>(opts_.stream_window, UINT32_MAX));
  body.dest = std::move(req.dest);
  body.peer = std::move(req.peer);
  body.envelope = std::move(req.envelope);
  body.groups = std::move(req.groups);
  body.policy = std::move(req.policy);
  std::vector<std::byte> frame;
  proto::append_open(frame, static_cast<std::uint32_t>(st->id), body);
  write_stream(st, bytes::copy_of(frame));
}

// The id of a new stream of ours, once the peer allows one more; -1 and `failure` when the
// session ends or `timeout` passes first.
awaitable<std::int64_t> connection::reserve_stream(std::chrono::milliseconds timeout, open_outcome& failure) {
  auto self = shared_from_this();
  auto given_up = std::make_shared<bool>(false);
  watchdog wd(ex_, timeout, [self, given_up] {
    *given_up = true;
    self->streams_ev_.notify();
  });
  std::int64_t id = -1;
  for (;;) {
    if (closed_ || draining_ || !established_) {
      failure = failed_outcome(errc::not_connected, closed_ ? "session closed" : "session draining");
      co_return -1;
    }
    int rv = ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr);
    if (rv == 0) {
      co_return id;
    }
    if (rv != NGTCP2_ERR_STREAM_ID_BLOCKED) {
      failure = failed_outcome(errc::internal, ngtcp2_strerror(rv));
      co_return -1;
    }
    if (*given_up) {
      failure = failed_outcome(errc::limit, "the peer allows no more streams");
      co_return -1;
    }
    co_await streams_ev_.wait();
  }
}

// A new stream with its OPEN queued; reset with errc::timeout unless answered within `left`
// (the message names the caller's whole `timeout`).
state_ptr connection::start_open(std::int64_t id, open_request req, clock::duration left,
                                 std::chrono::milliseconds timeout) {
  auto st = std::make_shared<stream_state>(id, ex_);
  st->ph = stream_state::phase::want_result;
  streams_.emplace(id, st);
  queue_open(st, std::move(req));
  st->answer_wd = std::make_unique<watchdog>(
      ex_, left, [w = weak_from_this(), ws = std::weak_ptr<stream_state>(st), timeout] {
        auto c = w.lock();
        auto opened = ws.lock();
        if (c && opened && opened->ph == stream_state::phase::want_result && !opened->reset) {
          c->reset_stream(opened, errc::timeout, "no answer within " + std::to_string(timeout.count()) + " ms", true);
        }
      });
  return st;
}

awaitable<open_outcome> connection::open(open_request req, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  auto deadline = clock::now() + timeout;  // one timeout for the stream id and the answer
  open_outcome failure;
  auto id = co_await reserve_stream(timeout, failure);
  if (id < 0) {
    co_return failure;
  }
  auto st = start_open(id, std::move(req), std::max<clock::duration>(deadline - clock::now(), {}), timeout);
  while (st->ph == stream_state::phase::want_result && !st->reset) {
    co_await st->ev.wait();
  }
  co_return outcome_of(st);
}

// QUIC streams take early data natively: the acceptor keeps what follows the OPEN frame
// (within the stream's flow-control window) until it answers.
awaitable<early_outcome> connection::open_early(open_request req, std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  early_outcome out;
  open_outcome failure;
  auto id = co_await reserve_stream(timeout, failure);
  if (id < 0) {
    out.error = failure.error;
    out.message = std::move(failure.message);
    co_return out;
  }
  auto st = start_open(id, std::move(req), timeout, timeout);
  out.stream = std::make_unique<quic_opening>(self, st);
  co_return out;
}

awaitable<open_answer> connection::wait_answer(state_ptr st) {
  auto self = shared_from_this();
  while (st->ph == stream_state::phase::want_result && !st->reset) {
    co_await st->ev.wait();
  }
  open_answer a;
  a.envelope = std::move(st->envelope);
  if (st->ph == stream_state::phase::want_result) {  // refused, or failed before any answer
    a.error = st->error;
    a.message = st->message;
  }
  co_return a;
}

awaitable<result<std::unique_ptr<incoming_stream>>> connection::accept() {
  auto self = shared_from_this();
  while (accept_q_.empty() && !closed_) {
    co_await accept_ev_.wait();
  }
  if (accept_q_.empty()) {
    co_return fail(errc::session_closed);
  }
  auto [st, req] = std::move(accept_q_.front());
  accept_q_.pop_front();
  co_return std::make_unique<quic_incoming>(self, std::move(st), std::move(req));
}

void connection::drain(goaway_code code, std::string message) {
  if (closed_ || local_goaway_) {
    return;
  }
  local_goaway_ = true;
  draining_ = true;
  drain_code_ = code;
  drain_message_ = message;
  std::vector<std::byte> frame;
  proto::append_goaway(frame, {code, std::move(message)});
  write_control(frame);
  close_if_drained();
}

void connection::close(goaway_code code, std::string message) {
  if (done_) {
    return;
  }
  if (!closing_ && !closed_ && tx_pending()) {
    closing_ = true;
    closing_code_ = code;
    closing_message_ = std::move(message);
    std::weak_ptr<connection> w = shared_from_this();
    close_grace_.emplace(ex_, std::chrono::seconds(2), [w] {
      if (auto c = w.lock()) c->close_now(c->closing_code_, c->closing_message_);
    });
    return;
  }
  close_now(code, std::move(message));
}

void connection::close_now(goaway_code code, std::string message) {
  if (done_) {
    return;
  }
  auto self = shared_from_this();
  if (close_grace_) close_grace_->cancel();
  finish(false, code, message);
  send_close(goaway_code_base + static_cast<std::uint64_t>(code), message);
  terminate();
}

bool connection::tx_pending() const {
  for (auto& [id, st] : streams_) {
    if (st->control || st->reset) continue;
    if (!st->tx.empty() || st->has_output() || (st->fin_sent && st->rx_fin)) return true;
  }
  return false;
}

void connection::check_closing() {
  if (closing_ && !done_ && !tx_pending()) {
    auto self = shared_from_this();
    asio::post(ex_, [self] { self->close_now(self->closing_code_, self->closing_message_); });
    closing_ = false;
  }
}

void connection::close_if_drained() {
  if (!draining_ || closed_ || stream_count() != 0 || !accept_q_.empty()) {
    return;
  }
  auto self = shared_from_this();
  auto code = close_info_.remote ? close_info_.code : drain_code_;
  auto msg = close_info_.remote ? close_info_.message : drain_message_.empty() ? "drained" : drain_message_;
  asio::post(ex_, [self, code, msg] { self->close(code, msg); });
}

awaitable<void> connection::wait_closed() {
  auto self = shared_from_this();
  while (!done_) {
    co_await closed_ev_.wait();
  }
}

void connection::server_accept(const proto::hello_body& hello) {
  if (closed_ || established_) {
    return;
  }
  established_ = true;
  hello_deadline_.reset();
  std::vector<std::byte> frame;
  proto::append_hello(frame, hello);
  write_control(frame);
  state_ev_.notify();
}

void connection::refuse(errc code, std::string message) {
  if (done_) {
    return;
  }
  auto self = shared_from_this();
  finish(false, goaway_code::normal, message);
  send_close(refusal_code_base + static_cast<std::uint64_t>(code), message);
  terminate();
}

// ---------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------

state_ptr connection::find(std::int64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void connection::consume(std::int64_t id, std::size_t n) {
  if (n == 0 || !conn_ || done_) {
    return;
  }
  ngtcp2_conn_extend_max_stream_offset(conn_, id, n);
  ngtcp2_conn_extend_max_offset(conn_, n);
}

void connection::push_rx(stream_state& st, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    if (st.rx.empty() || st.rx.back().tailroom() == 0) {
      st.rx.emplace_back(std::max(rx_chunk, std::min<std::size_t>(n, 1024 * 1024)));
    }
    auto& back = st.rx.back();
    auto take = std::min(n, back.tailroom());
    std::memcpy(back.data() + back.size(), p, take);
    back.commit(take);
    p += take;
    n -= take;
  }
}

void connection::write_stream(const state_ptr& st, bytes data) {
  if (data.empty()) {
    return;
  }
  st->tx_end += data.size();
  st->tx.push_back(std::move(data));
  enqueue_send(st);
}

void connection::write_control(const std::vector<std::byte>& frame) {
  if (ctl_ && !ctl_->reset) {
    write_stream(ctl_, bytes::copy_of(frame));
  }
}

void connection::enqueue_send(const state_ptr& st) {
  if (!st->queued && !st->reset && !st->closed && !st->fc_blocked && st->has_output()) {
    st->queued = true;
    send_q_.push_back(st);
  }
  schedule_flush();
}

state_ptr connection::pick() {
  // Control frames (HELLO, GOAWAY, RESET messages) go before stream data.
  if (ctl_ && ctl_->queued && !ctl_->reset && !ctl_->closed && !ctl_->fc_blocked && ctl_->has_output()) {
    if (auto it = std::find(send_q_.begin(), send_q_.end(), ctl_); it != send_q_.begin() && it != send_q_.end()) {
      send_q_.erase(it);
      send_q_.push_front(ctl_);
    }
  }
  while (!send_q_.empty()) {
    auto st = send_q_.front();
    if (st->reset || st->closed || st->fc_blocked || !st->has_output()) {
      st->queued = false;
      send_q_.pop_front();
      continue;
    }
    return st;
  }
  return nullptr;
}

awaitable<result<bytes>> connection::stream_read(state_ptr st) {
  auto self = shared_from_this();
  while (st->rx.empty() && !st->rx_fin && !st->reset) {
    co_await st->ev.wait();
  }
  if (st->reset) {
    co_return fail(st->error);
  }
  if (st->rx.empty()) {
    co_return bytes{};  // EOF
  }
  bytes b = st->rx.pop_front();
  // Credit goes back only now that the application has the bytes: end-to-end backpressure.
  consume(st->id, b.size());
  schedule_flush();
  co_return b;
}

awaitable<error_code> connection::stream_write(state_ptr st, bytes data) {
  auto self = shared_from_this();
  // An incoming stream taken before its answer (defer()) writes only after the OPEN_RESULT.
  while (!st->reset && !st->fin_wanted &&
         (st->ph == stream_state::phase::pending || st->tx_end - st->tx_base >= opts_.send_buffer)) {
    co_await st->ev.wait();
  }
  if (st->reset) {
    co_return st->error;
  }
  if (st->fin_wanted) {
    co_return make_error_code(errc::stream_closed);
  }
  write_stream(st, std::move(data));
  co_return error_code{};
}

awaitable<void> connection::stream_shutdown(state_ptr st) {
  auto self = shared_from_this();
  while (st->ph == stream_state::phase::pending && !st->reset) {
    co_await st->ev.wait();  // our FIN goes after our answer
  }
  stream_fin(st);
}

void connection::stream_fin(const state_ptr& st) {
  if (st->fin_wanted || st->reset || closed_) {
    return;
  }
  st->fin_wanted = true;
  st->ev.notify();
  enqueue_send(st);
}

void connection::reset_stream(const state_ptr& st, errc code, std::string_view message, bool send) {
  if (st->reset) {
    if (st->message.empty()) {
      st->message = std::string(message);
    }
    return;
  }
  st->reset = true;
  st->answer_wd.reset();
  st->error = make_error_code(code);
  if (st->message.empty()) {
    st->message = std::string(message);
  }
  // Bytes received but never read still hold connection credit: give it back.
  std::size_t unread = 0;
  for (auto& b : st->rx) {
    unread += b.size();
  }
  st->rx.clear();
  if (unread && conn_ && !done_) {
    ngtcp2_conn_extend_max_offset(conn_, unread);
  }
  if (!st->closed && !closed_) {
    if (send && !message.empty()) {
      std::vector<std::byte> frame;
      proto::append_reset(frame, static_cast<std::uint32_t>(st->id), {code, std::string(message)});
      write_control(frame);
    }
    shutdowns_.push_back({st->id, static_cast<std::uint64_t>(code), false});
    schedule_flush();
  }
  st->ev.notify();
}

void connection::stream_release(const state_ptr& st) {
  if (!st->reset && !st->closed && !(st->fin_wanted && st->rx_fin)) {
    reset_stream(st, errc::aborted, "stream abandoned", true);
  }
}

void connection::answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope) {
  if (closed_ || st->reset || st->closed) {
    return;
  }
  proto::open_result_body body;
  body.code = code;
  body.window = code == errc::ok ? static_cast<std::uint32_t>(std::min<std::uint64_t>(opts_.stream_window, UINT32_MAX))
                                 : 0;
  body.message = std::string(message);
  body.envelope = std::move(envelope);
  std::vector<std::byte> frame;
  proto::append_open_result(frame, static_cast<std::uint32_t>(st->id), body);
  st->ph = stream_state::phase::open;
  write_stream(st, bytes::copy_of(frame));
  st->ev.notify();  // a deferred stream's writer may go on
  if (code != errc::ok) {
    // OPEN_RESULT, FIN, and STOP_SENDING: the stream ends once the opener has read it.
    st->fin_wanted = true;
    st->error = make_error_code(code);
    shutdowns_.push_back({st->id, static_cast<std::uint64_t>(code), true});
    enqueue_send(st);
  }
}

// ---------------------------------------------------------------------------------------
// ngtcp2 callbacks
// ---------------------------------------------------------------------------------------

int connection::on_handshake_completed() {
  handshake_done_ = true;
  if (!server_) {
    asio::post(ex_, [self = shared_from_this()] { self->start_client_control(); });
  }
  return 0;
}

void connection::start_client_control() {
  if (closed_) {
    return;
  }
  std::int64_t id = -1;
  if (int rv = ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr); rv != 0) {
    fail_dial(errc::protocol, std::string("cannot open the control stream: ") + ngtcp2_strerror(rv));
    return;
  }
  ctl_ = std::make_shared<stream_state>(id, ex_);
  ctl_->control = true;
  streams_.emplace(id, ctl_);
  std::vector<std::byte> frame;
  proto::append_hello(frame, client_hello(client_token_, client_endpoint_));
  write_control(frame);
}

int connection::on_stream_open(std::int64_t id) {
  if (!ngtcp2_is_bidi_stream(id)) {
    return 0;  // no unidirectional streams are allowed (max 0): cannot happen
  }
  auto st = std::make_shared<stream_state>(id, ex_);
  if (server_ && !ctl_) {
    st->control = true;  // the client's first stream
    ctl_ = st;
  } else {
    st->ph = stream_state::phase::want_open;
  }
  streams_.emplace(id, st);
  return 0;
}

int connection::on_recv_stream_data(std::uint32_t flags, std::int64_t id, const std::uint8_t* data, std::size_t len) {
  bool fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;
  auto st = find(id);
  if (!st || st->reset || closed_) {
    consume(id, len);
    return 0;
  }
  if (st->control) {
    consume(id, len);
    on_control_bytes(data, len, fin);
    return 0;
  }
  if (st->ph == stream_state::phase::want_open || st->ph == stream_state::phase::want_result) {
    std::size_t before = st->head.size();
    auto* b = reinterpret_cast<const std::byte*>(data);
    st->head.insert(st->head.end(), b, b + len);
    auto r = proto::parse_frame(st->head);
    if (r.status == proto::parse_status::incomplete) {
      consume(id, len);
      if (st->head.size() > proto::frame_header_size + proto::max_control_payload || fin) {
        reset_stream(st, errc::protocol, fin ? "stream ended inside its first frame" : "first frame too large", true);
      }
      return 0;
    }
    if (r.status == proto::parse_status::malformed) {
      consume(id, len);
      reset_stream(st, errc::protocol, r.error, true);
      return 0;
    }
    auto used = r.frame.consumed;
    consume(id, used - before);
    std::vector<std::byte> rest(st->head.begin() + static_cast<std::ptrdiff_t>(used), st->head.end());
    if (!on_first_frame(st)) {
      consume(id, rest.size());
      return 0;
    }
    std::vector<std::byte>().swap(st->head);
    if (!rest.empty()) {
      push_rx(*st, reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size());
    }
  } else {
    push_rx(*st, data, len);
  }
  if (fin) {
    st->rx_fin = true;
  }
  st->ev.notify();
  return 0;
}

// The OPEN (acceptor) or OPEN_RESULT (opener) at the start of st->head. False when the
// stream was reset instead.
bool connection::on_first_frame(const state_ptr& st) {
  auto r = proto::parse_frame(st->head);
  const auto& f = r.frame;
  if (f.header.stream_id != static_cast<std::uint32_t>(st->id)) {
    reset_stream(st, errc::protocol, "first frame names another stream", true);
    return false;
  }
  if (st->ph == stream_state::phase::want_open) {
    auto b = f.header.type == frame_type::open ? proto::decode_open(f.payload) : std::nullopt;
    if (!b) {
      reset_stream(st, errc::protocol, "stream does not start with a valid OPEN", true);
      return false;
    }
    if (draining_) {
      answer(st, errc::aborted, "session is draining", {});
      return false;
    }
    st->ph = stream_state::phase::pending;
    accept_q_.emplace_back(st, make_open_request(std::move(b->dest), std::move(b->peer), std::move(b->envelope)));
    accept_q_.back().second.groups = std::move(b->groups);
    accept_q_.back().second.policy = std::move(b->policy);
    accept_ev_.notify();
    return true;
  }
  st->answer_wd.reset();
  auto b = f.header.type == frame_type::open_result ? proto::decode_open_result(f.payload) : std::nullopt;
  if (!b) {
    reset_stream(st, errc::protocol, "stream answer is not a valid OPEN_RESULT", true);
    return false;
  }
  st->envelope = std::move(b->envelope);
  if (b->code != errc::ok) {
    st->message = std::move(b->message);
    reset_stream(st, b->code, {}, false);
    return false;
  }
  st->ph = stream_state::phase::open;
  return true;
}

void connection::on_control_bytes(const std::uint8_t* p, std::size_t n, bool fin) {
  auto* b = reinterpret_cast<const std::byte*>(p);
  ctl_rx_.insert(ctl_rx_.end(), b, b + n);
  std::size_t off = 0;
  while (off < ctl_rx_.size() && !closed_) {
    auto r = proto::parse_frame(std::span<const std::byte>(ctl_rx_).subspan(off));
    if (r.status == proto::parse_status::incomplete) {
      break;
    }
    if (r.status == proto::parse_status::malformed) {
      protocol_error(std::string("control stream: ") + r.error);
      return;
    }
    on_control_frame(r.frame);
    off += r.frame.consumed;
  }
  ctl_rx_.erase(ctl_rx_.begin(), ctl_rx_.begin() + static_cast<std::ptrdiff_t>(off));
  if (fin && !closed_) {
    protocol_error("control stream closed by the peer");
  }
}

void connection::on_control_frame(const proto::frame_view& f) {
  bool hello_seen = server_ ? pending_reported_ : hello_.has_value();
  if (!hello_seen && f.header.type != frame_type::hello) {
    protocol_error("control stream does not start with HELLO");
    return;
  }
  switch (f.header.type) {
    case frame_type::hello: {
      auto h = proto::decode_hello(f.payload);
      if (hello_seen || !h) {
        protocol_error("unexpected or malformed HELLO");
        return;
      }
      if (h->version != proto::protocol_version) {
        protocol_error("unsupported protocol version " + std::to_string(h->version));
        return;
      }
      if (server_) {
        pending_reported_ = true;
        token_ = std::move(h->identity);
        client_info_ = std::move(h->info);
        host_->on_pending(shared_from_this());
      } else {
        hello_ = std::move(*h);
        established_ = true;
        state_ev_.notify();
      }
      return;
    }
    case frame_type::goaway: {
      auto b = proto::decode_goaway(f.payload);
      if (!b) {
        protocol_error("malformed GOAWAY");
        return;
      }
      close_info_.remote = true;
      close_info_.code = b->code;
      close_info_.message = b->message;
      draining_ = true;
      streams_ev_.notify();
      close_if_drained();
      return;
    }
    case frame_type::reset: {
      auto b = proto::decode_reset(f.payload);
      if (!b) {
        protocol_error("malformed RESET");
        return;
      }
      if (auto st = find(static_cast<std::int64_t>(f.header.stream_id)); st && !st->control) {
        reset_stream(st, b->code, b->message, false);
      }
      return;
    }
    default:
      protocol_error("unexpected frame on the control stream");
      return;
  }
}

int connection::on_acked(std::int64_t id, std::uint64_t offset, std::uint64_t len) {
  auto st = find(id);
  if (!st) {
    return 0;
  }
  auto acked = offset + len;
  while (!st->tx.empty() && st->tx_base + st->tx.front().size() <= acked) {
    st->tx_base += st->tx.front().size();
    (void)st->tx.pop_front();
  }
  st->ev.notify();  // a writer may wait for buffer space
  check_closing();
  return 0;
}

int connection::on_stream_close(std::uint32_t flags, std::int64_t id, std::uint64_t code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    return 0;
  }
  auto st = it->second;
  streams_.erase(it);
  st->closed = true;
  st->queued = false;
  if (!st->reset && !(st->rx_fin && st->fin_sent)) {
    auto e = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) ? errc_from_wire(code) : errc::aborted;
    reset_stream(st, e, {}, false);
  }
  // Unacknowledged bytes are of no more use to ngtcp2 now.
  st->tx.clear();
  check_closing();
  if (!ngtcp2_conn_is_local_stream(conn_, id)) {
    ngtcp2_conn_extend_max_streams_bidi(conn_, 1);
  }
  st->ev.notify();
  if (st->control && !closed_) {
    protocol_error("control stream closed");
  }
  close_if_drained();
  return 0;
}

int connection::on_stream_reset(std::int64_t id, std::uint64_t code) {
  if (auto st = find(id); st) {
    if (st->control) {
      protocol_error("control stream reset");
    } else if (st->ph == stream_state::phase::pending) {
      // Still in the accept queue: drop it there (the application never sees it).
      reset_stream(st, errc_from_wire(code), {}, false);
      std::erase_if(accept_q_, [&](const auto& e) { return e.first == st; });
    } else {
      reset_stream(st, errc_from_wire(code), {}, false);
    }
  }
  return 0;
}

int connection::on_extend_stream_data(std::int64_t id) {
  if (auto st = find(id); st && st->fc_blocked) {
    st->fc_blocked = false;
    enqueue_send(st);
  }
  return 0;
}

int connection::on_extend_local_streams() {
  streams_ev_.notify();
  return 0;
}

int connection::on_new_cid(ngtcp2_cid* cid, std::uint8_t* token, std::size_t len) {
  cid->datalen = len;
  if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, len) != 0 ||
      gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0) {
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (server_) {
    cids_.push_back(*cid);
    host_->add_cid(*cid, shared_from_this());
  }
  return 0;
}

int connection::on_remove_cid(const ngtcp2_cid* cid) {
  if (server_) {
    host_->remove_cid(*cid);
    std::erase_if(cids_, [&](const ngtcp2_cid& c) { return ngtcp2_cid_eq(&c, cid); });
  }
  return 0;
}

}  // namespace nl::transport::quic::detail
