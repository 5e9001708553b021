#include "transport/secure_stream.hpp"

#include <array>
#include <cstring>
#include <optional>

#include "transport/relay.hpp"

namespace nl::transport {
namespace {

static_assert(relay_headroom >= e2e::record_header_size && relay_tailroom >= e2e::record_tag_size,
              "the relay must leave room to seal its chunks in place");
static_assert(relay_chunk <= e2e::max_record_plaintext, "a relay chunk must fit one e2e record");

class secure_stream final : public stream {
public:
  secure_stream(std::unique_ptr<stream> inner, const e2e::traffic_keys& keys)
      : inner_(std::move(inner)), sealer_(keys.send), opener_(keys.recv) {}

  std::uint32_t id() const noexcept override { return inner_->id(); }

  // Records are opened straight from the chunks the inner stream yields: a chunk that holds
  // whole records is decrypted in place; a record split over chunks is decrypted piece by
  // piece into its own buffer as the pieces come (no joining copy), and handed out only
  // once its tag has been checked.
  awaitable<result<bytes>> read() override {
    for (;;) {
      if (failed_) {
        co_return fail(errc::e2e_failed);
      }
      if (eof_) {
        co_return bytes{};
      }
      if (in_.empty()) {
        auto r = co_await inner_->read();
        if (!r) {
          co_return fail(r.error());
        }
        if (r->empty()) {
          co_return integrity_failure("the stream ended without the final record (truncated on the way)");
        }
        in_ = std::move(*r);
      }
      std::optional<bytes> out;
      bool final = false;
      if (!opener_.in_record() && header_have_ == 0 && in_.size() >= e2e::record_header_size) {
        e2e::opened_record rec;
        auto st = opener_.open(in_.span(), std::span(in_.data() + e2e::record_header_size,
                                                     in_.size() - e2e::record_header_size),
                               rec);
        if (st == e2e::open_status::error) {
          co_return integrity_failure(rec.error);
        }
        if (st == e2e::open_status::ok) {
          if (rec.consumed == in_.size()) {  // the usual case: one record per chunk
            out = std::move(in_);
            out->consume(e2e::record_header_size);
            out->resize(rec.plain_size);
            in_ = bytes{};
          } else {
            out = bytes::copy_of(in_.data() + e2e::record_header_size, rec.plain_size);
            in_.consume(rec.consumed);
          }
          final = rec.final;
        }
      }
      if (!out) {
        out = open_piece();
        if (failed_) {
          co_return fail(errc::e2e_failed);
        }
        if (!out) {
          continue;  // the record needs more of the stream
        }
        final = record_final_;
      }
      if (final) {
        if (auto r = co_await finish_input(); !r) {
          co_return fail(r.error());
        }
      }
      if (out->empty()) {
        if (eof_) {
          co_return bytes{};
        }
        continue;  // an empty non-final record carries nothing: keep reading
      }
      co_return std::move(*out);
    }
  }

  awaitable<error_code> write(bytes data) override {
    if (sealer_.finished()) {
      co_return make_error_code(errc::stream_closed);
    }
    while (!data.empty()) {
      // Records of at most a relay chunk: sealed, each still fits one DATA frame.
      auto n = std::min(data.size(), relay_chunk);
      bytes rec;
      if (n == data.size() && data.headroom() >= e2e::record_header_size &&
          data.tailroom() >= e2e::record_tag_size) {
        // Seal in place: the record header goes in front of the data, the tag after it.
        auto plain = std::span<const std::byte>(data.data(), n);
        auto out = std::span<std::byte>(data.data() - e2e::record_header_size, n + e2e::record_overhead);
        auto w = sealer_.seal(plain, false, out);
        rec = std::move(data);
        rec.extend_front(e2e::record_header_size);
        rec.resize(w);
      } else {
        rec = bytes(n + e2e::record_overhead);
        auto w = sealer_.seal(std::span<const std::byte>(data.data(), n), false,
                              std::span<std::byte>(rec.data(), n + e2e::record_overhead));
        rec.commit(w);
        data.consume(n);
      }
      if (auto ec = co_await inner_->write(std::move(rec)); ec) {
        co_return ec;
      }
    }
    co_return error_code{};
  }

  awaitable<error_code> shutdown_send() override {
    if (sealer_.finished()) {
      co_return error_code{};
    }
    bytes rec(e2e::record_overhead);
    auto w = sealer_.seal({}, true, std::span<std::byte>(rec.data(), e2e::record_overhead));
    rec.commit(w);
    if (auto ec = co_await inner_->write(std::move(rec)); ec) {
      co_return ec;
    }
    co_return co_await inner_->shutdown_send();
  }

  void reset(errc code, std::string_view message) override { inner_->reset(code, message); }

  const std::string& error_message() const noexcept override {
    return failed_ ? message_ : inner_->error_message();
  }

private:
  // Moves bytes from in_ into dst after the `have` already there; true once dst is full.
  bool fill(std::span<std::byte> dst, std::size_t& have) {
    const auto n = std::min(in_.size(), dst.size() - have);
    std::memcpy(dst.data() + have, in_.data(), n);
    have += n;
    in_.consume(n);
    return have == dst.size();
  }

  // Takes what in_ holds of the record being opened in pieces; the record's plaintext once
  // it is complete and authentic, nullopt while more is needed or when it failed (failed_).
  std::optional<bytes> open_piece() {
    e2e::opened_record rec;
    if (!opener_.in_record()) {
      if (!fill(header_, header_have_)) {
        return std::nullopt;
      }
      if (opener_.begin(header_, rec) != e2e::open_status::ok) {
        (void)integrity_failure(rec.error);
        return std::nullopt;
      }
      record_ = bytes(rec.plain_size);
      record_.commit(rec.plain_size);
      record_have_ = 0;
      tag_have_ = 0;
    }
    if (record_have_ < record_.size()) {
      const auto n = std::min(in_.size(), record_.size() - record_have_);
      opener_.update(std::span(in_.data(), n), record_.data() + record_have_);
      record_have_ += n;
      in_.consume(n);
      if (record_have_ < record_.size()) {
        return std::nullopt;
      }
    }
    if (!fill(tag_, tag_have_)) {
      return std::nullopt;
    }
    header_have_ = 0;
    if (opener_.finish(tag_, std::span(record_.data(), record_.size()), rec) != e2e::open_status::ok) {
      record_ = bytes{};
      (void)integrity_failure(rec.error);
      return std::nullopt;
    }
    record_final_ = rec.final;
    return std::move(record_);
  }

  // After the final record only the inner end of stream may follow.
  awaitable<result<void>> finish_input() {
    eof_ = true;
    if (!in_.empty()) {
      (void)integrity_failure("data after the final record");
      co_return fail(errc::e2e_failed);
    }
    auto r = co_await inner_->read();
    if (!r) {
      co_return fail(r.error());
    }
    if (!r->empty()) {
      (void)integrity_failure("data after the final record");
      co_return fail(errc::e2e_failed);
    }
    co_return result<void>{};
  }

  result<bytes> integrity_failure(std::string_view what) {
    if (!failed_) {
      failed_ = true;
      message_ = "end-to-end check failed: " + std::string(what);
      inner_->reset(errc::e2e_failed, message_);
    }
    return fail(errc::e2e_failed);
  }

  std::unique_ptr<stream> inner_;
  e2e::sealer sealer_;
  e2e::opener opener_;
  bytes in_;        // received from the inner stream, not yet opened
  // the record being opened in pieces (open_piece)
  std::array<std::byte, e2e::record_header_size> header_{};
  std::size_t header_have_ = 0;
  bytes record_;  // its plaintext, written as the ciphertext arrives
  std::size_t record_have_ = 0;
  std::array<std::byte, e2e::record_tag_size> tag_{};
  std::size_t tag_have_ = 0;
  bool record_final_ = false;
  bool eof_ = false;
  bool failed_ = false;
  std::string message_;
};

}  // namespace

std::unique_ptr<stream> make_secure_stream(std::unique_ptr<stream> inner, const e2e::traffic_keys& keys) {
  return std::make_unique<secure_stream>(std::move(inner), keys);
}

namespace {

std::string fingerprint_text(const e2e::key& k) { return e2e::fingerprint(k); }

// Built outside the coroutine (see the g++ 12 note in transport/mux/mux_internal.hpp).
open_request hidden_request(std::string agent, std::vector<std::byte> message1) {
  proto::target hidden;
  hidden.protocol = proto::transport_protocol::hidden;
  return make_open_request(std::move(hidden), std::move(agent), std::move(message1));
}

}  // namespace

awaitable<open_outcome> open_secure(session& s, std::string agent, const proto::target& dest, const e2e_peer& pin,
                                    std::chrono::milliseconds timeout) {
  std::vector<std::byte> message1;
  std::optional<e2e::initiator> hs;
  try {
    hs.emplace(e2e::initiator::start(pin.public_key, pin.psk, proto::encode_e2e_request(dest), message1));
  } catch (const std::invalid_argument& e) {  // a low-order pinned key, an oversized target
    co_return open_outcome::failed(errc::e2e_failed, "cannot start the end-to-end handshake with agent '" + agent +
                                                         "': " + e.what());
  }
  auto out = co_await s.open(hidden_request(agent, std::move(message1)), timeout);
  if (out.envelope.empty()) {
    // No end-to-end answer: a gateway-level refusal (agent offline, session trouble), or an
    // agent that cannot do e2e. Never fall back to plaintext.
    if (out.stream) {
      out.stream->reset(errc::e2e_failed, "no end-to-end answer");
      co_return open_outcome::failed(errc::e2e_failed, "agent '" + agent + "' accepted the stream without end-to-end "
                                                       "encryption; refusing to send plaintext to a pinned agent");
    }
    if (out.error == make_error_code(errc::e2e_failed) || out.error == make_error_code(errc::unsupported)) {
      out.message = "agent '" + agent + "' refused the end-to-end handshake for pinned key " +
                    fingerprint_text(pin.public_key) + (out.message.empty() ? "" : ": " + out.message);
      out.error = make_error_code(errc::e2e_failed);
    }
    co_return out;
  }
  e2e::traffic_keys keys;
  auto payload = hs->finish(out.envelope, keys);
  if (!payload) {
    if (out.stream) {
      out.stream->reset(errc::e2e_failed, "end-to-end handshake failed");
    }
    co_return open_outcome::failed(errc::e2e_failed, "agent '" + agent + "' failed the end-to-end handshake: " +
                                                         payload.error() + " (pinned key " +
                                                         fingerprint_text(pin.public_key) + ")");
  }
  auto verdict = proto::decode_e2e_verdict(*payload);
  if (!verdict || (verdict->code == errc::ok) != static_cast<bool>(out.stream)) {
    if (out.stream) {
      out.stream->reset(errc::e2e_failed, "malformed end-to-end verdict");
    }
    co_return open_outcome::failed(errc::e2e_failed, "agent '" + agent + "' sent a malformed end-to-end answer");
  }
  if (!out.stream) {
    co_return open_outcome::failed(verdict->code, verdict->message);
  }
  out.stream = make_secure_stream(std::move(out.stream), keys);
  co_return out;
}

std::expected<secure_request, std::string> read_secure_open(const incoming_stream& in, const e2e::static_keypair& self,
                                                            const std::optional<e2e::key>& psk) {
  auto r = e2e::responder::read(self, psk, in.request().envelope);
  if (!r) {
    return std::unexpected(r.error() + " (this agent's key fingerprint is " + fingerprint_text(self.public_key) + ")");
  }
  auto dest = proto::decode_e2e_request(r->payload());
  if (!dest) {
    return std::unexpected(std::string("malformed end-to-end request"));
  }
  return secure_request{std::move(*dest), std::move(*r)};
}

std::unique_ptr<stream> accept_secure(incoming_stream& in, secure_request& req) {
  e2e::traffic_keys keys;
  proto::e2e_verdict ok;
  auto message2 = req.handshake.finish(proto::encode_e2e_verdict(ok), keys);
  return make_secure_stream(in.accept(std::move(message2)), keys);
}

void reject_secure(incoming_stream& in, secure_request& req, errc code, const std::string& message) {
  e2e::traffic_keys keys;
  proto::e2e_verdict v;
  v.code = code;
  v.message = message;
  auto message2 = req.handshake.finish(proto::encode_e2e_verdict(v), keys);
  // The plaintext text the gateway sees says nothing about the destination.
  in.reject(code, "refused (details are end-to-end encrypted)", std::move(message2));
}

}  // namespace nl::transport
