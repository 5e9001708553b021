#include "transport/first_reply.hpp"

#include "common/async.hpp"

namespace nl::transport {
namespace {

class answered_on_reply final : public stream {
public:
  answered_on_reply(std::unique_ptr<deferred_stream> d, const boost::asio::any_io_executor& ex,
                    std::chrono::milliseconds delay)
      : d_(std::move(d)), wd_(ex, delay, [this] { answer(); }) {}

  std::uint32_t id() const noexcept override { return d_->id(); }
  awaitable<result<bytes>> read() override { return d_->read(); }
  awaitable<error_code> write(bytes data) override {
    answer();
    return d_->write(std::move(data));
  }
  awaitable<error_code> shutdown_send() override {
    answer();
    return d_->shutdown_send();
  }
  void reset(errc code, std::string_view message) override {
    answer();
    d_->reset(code, message);
  }
  const std::string& error_message() const noexcept override { return d_->error_message(); }

private:
  void answer() {
    if (!answered_) {
      answered_ = true;
      wd_.cancel();
      d_->answer(errc::ok, {}, {});
    }
  }

  std::unique_ptr<deferred_stream> d_;
  watchdog wd_;  // declared after d_: destroyed (cancelled) first
  bool answered_ = false;
};

}  // namespace

std::unique_ptr<stream> accept_with_first_reply(incoming_stream& in, const boost::asio::any_io_executor& ex,
                                                std::chrono::milliseconds delay) {
  auto n = in.early_bytes();
  if (n == 0 || n >= proto::early_window) {
    return in.accept();
  }
  return std::make_unique<answered_on_reply>(in.defer(), ex, delay);
}

}  // namespace nl::transport
