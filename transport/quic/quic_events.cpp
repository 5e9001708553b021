#include "transport/quic/quic_connection.hpp"

#include "transport/quic/quic_internal.hpp"

#include <boost/asio/post.hpp>
#include <gnutls/crypto.h>
#include <spdlog/spdlog.h>

// What ngtcp2 calls back into a QUIC connection: C trampolines and the members they call.

namespace nl::transport::quic::detail {

using proto::frame_type;
using proto::goaway_code;

namespace {

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
proto::hello_body client_hello(const std::string& token, const std::string& endpoint) {
  proto::hello_body h;
  h.identity = token;
  h.info = endpoint.empty() ? "nl-quic client" : endpoint;
  return h;
}

}  // namespace

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
    accept_q_.push(st, std::move(*b));
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
      accept_q_.drop(st);
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
