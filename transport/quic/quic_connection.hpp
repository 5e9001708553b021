// Internal to transport/quic: one QUIC connection (ngtcp2_conn + GnuTLS session) that
// implements transport::session, and the interface to whoever owns its UDP socket (the
// client's own socket, or the listener's shared one). Sans-IO in the ngtcp2 way: the owner
// feeds datagrams in with on_packet(); the connection drains packets out through its host
// and re-arms one timer from ngtcp2_conn_get_expiry(). C callbacks are trampolines in
// quic_events.cpp that call members and never throw across C. The members are defined in
// quic_connection.cpp (set-up, packets, timer, close), quic_streams.cpp (session and
// stream interface) and quic_events.cpp (what ngtcp2 calls back).
// Thread-safety: one executor.
#pragma once

#include <utility>

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "common/async.hpp"
#include "transport/accept_queue.hpp"
#include "transport/quic/quic_session.hpp"
#include "transport/quic/quic_tls.hpp"
#include "transport/quic/udp_io.hpp"

namespace nl::transport::quic::detail {

namespace asio = boost::asio;
using udp = asio::ip::udp;

class connection;

// What a connection needs from the owner of its socket.
class conn_host {
public:
  virtual ~conn_host() = default;
  // Sends one datagram, or with segment > 0 and < n a run of datagrams of `segment` bytes
  // (the last may be shorter) in one call; would_block means "wait_writable() and retry".
  virtual error_code send(const udp::endpoint& to, const std::uint8_t* p, std::size_t n, std::size_t segment) = 0;
  virtual awaitable<error_code> wait_writable() = 0;
  virtual void add_cid(const ngtcp2_cid&, const std::shared_ptr<connection>&) {}
  virtual void remove_cid(const ngtcp2_cid&) {}
  virtual void on_pending(const std::shared_ptr<connection>&) {}  // server: client HELLO arrived
  virtual void on_done(connection&) {}                            // the connection ended
};

// A new connection ID of our length (cid_len), from the system's randomness; false if none.
bool random_cid(ngtcp2_cid& cid);

struct stream_state;
using state_ptr = std::shared_ptr<stream_state>;

class connection final : public session, public std::enable_shared_from_this<connection> {
public:
  connection(asio::any_io_executor ex, bool server, quic_options opts, std::shared_ptr<conn_host> host);
  ~connection() override;

  // Both return "" or why the connection could not be set up.
  std::string init_client(const client_options& o, const udp::endpoint& local, const udp::endpoint& remote,
                          std::shared_ptr<tls::credentials> cred);
  // Server: `hd` is a client Initial that carried a valid Retry token, and `odcid` the
  // Destination Connection ID of the Initial that the Retry answered (from the token).
  std::string init_server(const udp::endpoint& local, const udp::endpoint& remote, const ngtcp2_pkt_hd& hd,
                          const ngtcp2_cid& odcid, std::shared_ptr<tls::credentials> cred,
                          std::chrono::milliseconds hello_timeout);

  void on_packet(const udp::endpoint& from, const std::uint8_t* p, std::size_t n);
  void on_socket_error(const error_code& ec);  // client: the connected socket failed
  void fail_dial(errc code, std::string why);  // client: give up before HELLO (timeout)

  // ---- session ----
  awaitable<open_outcome> open(open_request req, std::chrono::milliseconds timeout) override;
  awaitable<early_outcome> open_early(open_request req, std::chrono::milliseconds timeout) override;
  awaitable<result<std::unique_ptr<incoming_stream>>> accept() override;
  void drain(proto::goaway_code code, std::string message) override;
  void close(proto::goaway_code code, std::string message) override;
  awaitable<void> wait_closed() override;
  bool is_open() const noexcept override { return !closed_; }
  bool is_draining() const noexcept override { return draining_ || closed_; }
  const close_info& closed_by() const noexcept override { return close_info_; }
  std::size_t stream_count() const noexcept override;
  std::string_view transport_name() const noexcept override { return "quic"; }
  std::string_view remote_address() const noexcept override { return remote_text_; }
  const std::string& identity() const noexcept override { return hello_ ? hello_->identity : empty_; }

  // ---- dial / accept of the session itself ----
  bool established() const noexcept { return established_; }
  bool done() const noexcept { return done_; }
  async_event& state_event() noexcept { return state_ev_; }
  const proto::hello_body& server_hello() const { return *hello_; }
  errc fail_code() const noexcept { return fail_code_; }
  const std::string& fail_text() const noexcept { return fail_text_; }
  const std::string& token() const noexcept { return token_; }
  const std::string& client_info() const noexcept { return client_info_; }
  const std::vector<ngtcp2_cid>& cids() const noexcept { return cids_; }
  void server_accept(const proto::hello_body& hello);
  void refuse(errc code, std::string message);  // server: close before HELLO

  // ---- used by stream handles (stream.cpp) ----
  awaitable<result<bytes>> stream_read(state_ptr st);
  awaitable<error_code> stream_write(state_ptr st, bytes data);
  void stream_fin(const state_ptr& st);
  awaitable<void> stream_shutdown(state_ptr st);
  awaitable<open_answer> wait_answer(state_ptr st);
  void reset_stream(const state_ptr& st, errc code, std::string_view message, bool send);
  void stream_release(const state_ptr& st);
  void answer(const state_ptr& st, errc code, std::string_view message, std::vector<std::byte> envelope);

  // ---- ngtcp2 callbacks (called through trampolines) ----
  ngtcp2_conn* conn() const noexcept { return conn_; }
  int on_recv_stream_data(std::uint32_t flags, std::int64_t id, const std::uint8_t* data, std::size_t len);
  int on_acked(std::int64_t id, std::uint64_t offset, std::uint64_t len);
  int on_stream_open(std::int64_t id);
  int on_stream_close(std::uint32_t flags, std::int64_t id, std::uint64_t code);
  int on_stream_reset(std::int64_t id, std::uint64_t code);
  int on_extend_stream_data(std::int64_t id);
  int on_extend_local_streams();
  int on_handshake_completed();
  int on_new_cid(ngtcp2_cid* cid, std::uint8_t* token, std::size_t len);
  int on_remove_cid(const ngtcp2_cid* cid);

private:
  struct shutdown_req {
    std::int64_t id;
    std::uint64_t code;
    bool read_only;
  };

  std::string init_common(bool server, const udp::endpoint& local, const udp::endpoint& remote);
  void start_client_control();
  void schedule_flush();
  void flush();
  bool send_packet(const udp::endpoint& to, const std::uint8_t* p, std::size_t n, std::size_t segment);
  void wait_socket();
  void arm_timer();
  void on_expiry();
  void on_read_error(int rv);
  void on_peer_close();
  void send_close(std::uint64_t app_code, const std::string& reason);
  // Writes one packet carrying CONNECTION_CLOSE with `ccerr` and sends it to the peer.
  void write_close(const ngtcp2_connection_close_error& ccerr);
  void finish(bool remote, proto::goaway_code code, std::string message);
  void terminate();
  void protocol_error(std::string why);
  void close_if_drained();
  // close() waits (up to close_grace) until data already written is acknowledged, as the
  // WebSocket mux flushes its queue before closing: a stream finished just before the
  // session closes must still arrive whole.
  bool tx_pending() const;
  void close_now(proto::goaway_code code, std::string message);
  void check_closing();
  void consume(std::int64_t id, std::size_t n);
  void push_rx(stream_state& st, const std::uint8_t* p, std::size_t n);
  void on_control_bytes(const std::uint8_t* p, std::size_t n, bool fin);
  void on_control_frame(const proto::frame_view& f);
  bool on_first_frame(const state_ptr& st);
  void write_control(const std::vector<std::byte>& frame);
  void write_stream(const state_ptr& st, bytes data);
  void enqueue_send(const state_ptr& st);
  state_ptr find(std::int64_t id) const;
  state_ptr pick();
  void queue_open(const state_ptr& st, open_request req);
  awaitable<std::int64_t> reserve_stream(std::chrono::milliseconds timeout, open_outcome& failure);
  state_ptr start_open(std::int64_t id, open_request req, clock::duration left, std::chrono::milliseconds timeout);
  open_outcome outcome_of(const state_ptr& st);

  asio::any_io_executor ex_;
  bool server_;
  quic_options opts_;
  std::shared_ptr<conn_host> host_;
  std::shared_ptr<tls::credentials> cred_;
  tls::session tls_;
  ngtcp2_crypto_conn_ref ref_{};
  ngtcp2_conn* conn_ = nullptr;
  udp::endpoint local_, remote_;
  std::string remote_text_;
  std::vector<ngtcp2_cid> cids_;  // registered with the host (server)
  std::unordered_map<std::int64_t, state_ptr> streams_;
  state_ptr ctl_;
  std::deque<state_ptr> send_q_;
  std::vector<shutdown_req> shutdowns_;  // ngtcp2 calls deferred out of callbacks
  accept_queue<stream_state> accept_q_;
  async_event closed_ev_, state_ev_, streams_ev_;
  asio::steady_timer timer_;
  ngtcp2_tstamp armed_ = UINT64_MAX;
  std::size_t max_payload_ = 1200;                        // largest datagram to this peer
  std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(max_gso_bytes);  // one GSO run
  struct blocked_run {
    udp::endpoint to;
    std::vector<std::uint8_t> bytes;
    std::size_t segment;
  };
  std::deque<blocked_run> blocked_;  // packets written while the socket was full
  std::unique_ptr<watchdog> hello_deadline_;
  std::optional<proto::hello_body> hello_;  // client: the gateway's HELLO
  std::string token_, client_info_;         // server: from the client's HELLO
  std::string client_endpoint_;             // client: sent as its HELLO's info
  std::string client_token_;                // client: to send
  std::vector<std::byte> ctl_rx_;
  close_info close_info_;
  proto::goaway_code drain_code_ = proto::goaway_code::normal;
  std::string drain_message_;
  errc fail_code_ = errc::not_connected;
  std::string fail_text_;
  bool flush_posted_ = false;
  bool send_blocked_ = false;
  bool handshake_done_ = false;
  bool established_ = false;
  bool pending_reported_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool local_goaway_ = false;
  bool done_ = false;
  bool closing_ = false;  // close() asked; waiting for acknowledgements
  proto::goaway_code closing_code_ = proto::goaway_code::normal;
  std::string closing_message_;
  std::optional<watchdog> close_grace_;
  std::string empty_;
};

}  // namespace nl::transport::quic::detail
