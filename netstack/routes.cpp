#include "netstack/routes.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <sstream>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace nl::netstack {

bool cidr::contains(const ip_address& a) const noexcept {
  if (a.v6 != addr.v6) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.b.data(), addr.b.data(), full) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.b[full] & mask) == (addr.b[full] & mask);
}

std::string cidr::to_string() const { return addr.to_string() + "/" + std::to_string(prefix); }

std::optional<cidr> parse_cidr(const std::string& text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) return std::nullopt;
  cidr c;
  c.addr = ip_address::from_asio(a);
  unsigned max = c.addr.v6 ? 128 : 32;
  c.prefix = max;
  if (slash != std::string::npos) {
    auto s = std::string_view(text).substr(slash + 1);
    auto [p, e] = std::from_chars(s.data(), s.data() + s.size(), c.prefix);
    if (e != std::errc() || p != s.data() + s.size() || s.empty() || c.prefix > max) return std::nullopt;
  }
  cidr net = c;
  for (unsigned bit = c.prefix; bit < max; ++bit) {
    net.addr.b[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (net.addr != c.addr) return std::nullopt;  // host bits set: probably a typo
  return c;
}

namespace {

// Runs ip with args; captures its output (stdout+stderr).
int run_capture(const std::vector<std::string>& args, std::string& out) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    out = std::strerror(errno);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  std::vector<char*> argv;
  std::string prog = "ip";
  argv.push_back(prog.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, "ip", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    out = std::string("cannot run ip (install iproute2): ") + std::strerror(rc);
    return -1;
  }
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0 && out.size() < 4096) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string command_text(const std::vector<std::string>& args) {
  std::string s = "ip";
  for (auto& a : args) s += " " + a;
  return s;
}

}  // namespace

std::string run_ip(const std::vector<std::string>& args) {
  std::string out;
  if (run_capture(args, out) == 0) return {};
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return "`" + command_text(args) + "` failed" + (out.empty() ? "" : ": " + out);
}

std::string bring_up(const std::string& dev, unsigned mtu, bool* v6) {
  if (auto e = run_ip({"link", "set", "dev", dev, "mtu", std::to_string(mtu), "txqueuelen", "10000", "up"}); !e.empty()) {
    return e;
  }
  if (auto e = run_ip({"addr", "add", tun_address_v4, "dev", dev}); !e.empty()) {
    return e;
  }
  bool has_v6 = run_ip({"-6", "addr", "add", tun_address_v6, "dev", dev, "nodad"}).empty();
  if (v6) *v6 = has_v6;
  return {};
}

std::string route_guard::route_via(const std::string& cidr, const std::string& dev) {
  return apply({"route", "add", cidr, "dev", dev}, {"route", "del", cidr, "dev", dev});
}

std::string route_guard::apply(std::vector<std::string> do_args, std::vector<std::string> undo_args) {
  auto e = run_ip(do_args);
  if (e.empty()) undo_.push_back(std::move(undo_args));
  return e;
}

std::string route_guard::bypass(const ip_address& gw) {
  std::string out;
  auto host = gw.to_string();
  std::vector<std::string> get = {gw.v6 ? "-6" : "-4", "route", "get", host};
  if (run_capture(get, out) != 0) {
    return "`" + command_text(get) + "` failed: " + out;
  }
  // "<addr> via <gw> dev <dev> src ..." or "<addr> dev <dev> src ..."
  std::istringstream in(out);
  std::string word, via, dev;
  while (in >> word) {
    if (word == "via") in >> via;
    else if (word == "dev") in >> dev;
  }
  if (dev.empty()) return "cannot tell how " + host + " is reached: " + out;
  if (dev == "lo") return {};  // local: never through the TUN
  std::vector<std::string> add = {"route", "replace", host + (gw.v6 ? "/128" : "/32")};
  if (!via.empty()) {
    add.push_back("via");
    add.push_back(via);
  }
  add.push_back("dev");
  add.push_back(dev);
  std::vector<std::string> del = {"route", "del", host + (gw.v6 ? "/128" : "/32"), "dev", dev};
  return apply(std::move(add), std::move(del));
}

void route_guard::restore() {
  while (!undo_.empty()) {
    (void)run_ip(undo_.back());
    undo_.pop_back();
  }
}

}  // namespace nl::netstack
