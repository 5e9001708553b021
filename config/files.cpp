// Everything in config/ that touches the file system: config search, file and token reads.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config/detail.hpp"

namespace nl::config {
namespace fs = std::filesystem;

namespace detail {

std::expected<std::string, config_error> read_text_file(const std::string& path, std::string_view what,
                                                        std::size_t max_bytes) {
  auto fail = [&](std::string msg) { return std::unexpected(config_error{path, 0, std::move(msg)}); };
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return fail("is a directory, not a " + std::string(what) + "; give the path of the file itself");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return fail("cannot read " + std::string(what) + ": " + std::strerror(err) +
                "; check the path and that this user may read it");
  }
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return fail(std::string(what) + " is larger than " + std::to_string(max_bytes / 1024) +
                  " KiB; is this the right file?");
    }
  }
  if (in.bad()) {
    int err = errno;
    return fail("error reading " + std::string(what) + ": " + std::strerror(err) + "; check the file");
  }
  return text;
}

}  // namespace detail

std::string find_config(std::string_view program, const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    // Returned even when missing: the loader then reports it with the path the user typed.
    return explicit_path;
  }
  std::string file = "nl-" + std::string(program) + ".yaml";
  std::vector<fs::path> candidates{fs::path(".") / file};
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  if (xdg != nullptr && xdg[0] == '/') {
    candidates.push_back(fs::path(xdg) / "nl" / file);
  } else if (home != nullptr && home[0] != '\0') {
    candidates.push_back(fs::path(home) / ".config" / "nl" / file);
  }
  candidates.push_back(fs::path("/etc/nl") / file);
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) {
      return c.string();
    }
  }
  return "";
}

std::expected<std::string, config_error> read_token(const peer_config& p) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
      s.remove_suffix(1);
    }
    return s;
  };
  if (auto t = trim(p.token); !t.empty()) {
    return std::string(t);
  }
  if (p.token_file.empty()) {
    return std::unexpected(config_error{
        "<command line>", 0,
        "no token configured; set token_file (a file holding the token from `nl-gateway token`) "
        "in the config, or pass --token-file FILE or --token TOKEN"});
  }
  auto text = detail::read_text_file(p.token_file, "token file", 64 * 1024);
  if (!text) {
    return std::unexpected(text.error());
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = trim(rest.substr(0, nl));
    if (!line.empty()) {
      return std::string(line);
    }
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  }
  return std::unexpected(config_error{
      p.token_file, 0,
      "token file is empty; put the token printed by `nl-gateway token ...` on its first line"});
}

}  // namespace nl::config
