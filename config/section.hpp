// The YAML walker behind config.cpp's readers (internal to config/): `section` walks one
// map once, refuses duplicate and unknown keys, records each key's line in the `context`,
// and hands out typed values; a problem ends the walk by throwing `stop`.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/units.hpp"
#include "config/config.hpp"

namespace nl::config::detail {

using keys = std::vector<std::string_view>;

// ---------------------------------------------------------------------------------------
// Key tables. Top-level keys of each program, and the keys of each nested map.
extern const keys session_keys;
extern const keys server_tls_keys;
extern const keys client_tls_keys;
extern const keys socks_keys;
extern const keys policy_keys;
extern const keys condition_keys;
extern const keys udp_keys;
extern const keys agent_e2e_keys;
extern const keys client_e2e_keys;
extern const keys gateway_keys;
extern const keys peer_keys;
extern const keys agent_only_keys;
extern const keys client_only_keys;

keys concat(const keys& a, const keys& b);
bool has(const keys& k, std::string_view key);
std::string join(const keys& k);

// ---------------------------------------------------------------------------------------
// Thrown inside config/ only and caught by parse_*(): the walk is deep and stops at the
// first problem, and this keeps the early exit out of every helper's signature.
struct stop {
  config_error error;
};

struct context {
  std::string file;
  std::string_view program;
  std::map<std::string, int, std::less<>> lines;  // "session.window" -> 1-based line

  [[noreturn]] void fail(int line, std::string message) const {
    throw stop{config_error{file, line, std::move(message)}};
  }

  // Line of the first of `paths` given in the file; else of the nearest enclosing map
  // that was given (a missing key has no line of its own); else 0.
  int line_of(const std::vector<std::string>& paths) const {
    for (const auto& p : paths) {
      if (auto it = lines.find(p); it != lines.end()) {
        return it->second;
      }
    }
    for (const auto& p : paths) {
      std::string_view parent = p;
      while (true) {
        auto dot = parent.rfind('.');
        if (dot == std::string_view::npos) {
          break;
        }
        parent = parent.substr(0, dot);
        if (auto it = lines.find(parent); it != lines.end()) {
          return it->second;
        }
      }
    }
    return 0;
  }
};

inline int line_of(const YAML::Node& n) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
}

// "unknown key 'x'" with the likeliest fix: a near miss, the nested map or the other
// program the key belongs to, or else the list of keys allowed at `path`.
std::string unknown_key_message(const context& ctx, std::string_view key, std::string_view path,
                                const keys& known);

// One YAML map, walked once: duplicate and unknown keys are refused up front, and the
// line of every key is recorded in the context under its dotted path.
class section {
public:
  // `path` is the dotted path of this map ("" at the top); `line` where it was introduced.
  section(context& ctx, const YAML::Node& node, std::string path, int line, const keys& known)
      : ctx_(ctx), path_(std::move(path)), line_(line) {
    if (node.IsNull()) {
      return;  // "session:" with every entry commented out: all defaults
    }
    if (!node.IsMap()) {
      if (path_.empty()) {
        ctx_.fail(line_of(node),
                  "the config must be a map of 'key: value' lines, e.g. 'log_level: info'; "
                  "see examples/nl-" + std::string(ctx_.program) + ".yaml");
      }
      ctx_.fail(line_, "'" + name() + "' must be a map of keys (" + join(known) + "), e.g. " +
                           name() + ": { " + std::string(known.front()) + ": ... }");
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      YAML::Node k = it->first;  // copies: the iterator hands out a temporary
      int kline = line_of(k);
      if (!k.IsScalar()) {
        ctx_.fail(kline, "a key must be a plain word (one of: " + join(known) + ")");
      }
      const std::string& key = k.Scalar();
      if (auto prev = find(key)) {
        ctx_.fail(kline, "duplicate key '" + key + "' (first given at line " + std::to_string(prev->line) +
                             "); keep only one of them");
      }
      if (!has(known, key)) {
        ctx_.fail(kline, unknown_key_message(ctx_, key, path_, known));
      }
      entries_.push_back({key, YAML::Node(it->second), kline});
      ctx_.lines[dotted(key)] = kline;
    }
  }

  struct entry {
    std::string key;
    YAML::Node value;
    int line = 0;
  };

  const entry* find(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) {
        return &e;
      }
    }
    return nullptr;
  }
  int line() const { return line_; }
  context& ctx() const { return ctx_; }

  // The value of a key, as scalar text; nullopt when the key is absent.
  std::optional<std::string> scalar(std::string_view key, std::string_view example) const {
    auto e = find(key);
    if (e == nullptr) {
      return std::nullopt;
    }
    if (e->value.IsNull()) {
      ctx_.fail(e->line, "'" + e->key + "' has no value; write e.g. " + e->key + ": " +
                             std::string(example) + ", or delete the line for the default");
    }
    if (!e->value.IsScalar()) {
      ctx_.fail(e->line, "'" + e->key + "' must be a single value like " + std::string(example) +
                             ", not a list or map");
    }
    return e->value.Scalar();
  }

  void get(std::string_view key, std::string& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      out = *v;
    }
  }

  void get_duration(std::string_view key, std::chrono::milliseconds& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      auto d = parse_duration(*v);
      if (!d) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a duration like " +
                                       std::string(example) +
                                       " (units ms, s, m, h, d; a plain number means seconds), not '" +
                                       *v + "'");
      }
      out = *d;
    }
  }

  void get_size(std::string_view key, std::uint32_t& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      auto n = parse_size(*v);
      if (!n || *n > 0xffffffffu) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a size like " + std::string(example) +
                                       " (units KiB, MiB; a plain number means bytes), not '" + *v + "'");
      }
      out = static_cast<std::uint32_t>(*n);
    }
  }

  void get_count(std::string_view key, std::uint32_t& out, std::string_view example) const {
    if (auto v = scalar(key, example)) {
      bool digits = !v->empty() && v->size() <= 9 &&
                    std::all_of(v->begin(), v->end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be a whole number like " +
                                       std::string(example) + ", not '" + *v + "'");
      }
      out = static_cast<std::uint32_t>(std::stoul(*v));
    }
  }

  void get_bool(std::string_view key, bool& out) const {
    if (auto v = scalar(key, "false")) {
      std::string l = *v;
      std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
      if (l == "true" || l == "yes" || l == "on") {
        out = true;
      } else if (l == "false" || l == "no" || l == "off") {
        out = false;
      } else {
        ctx_.fail(find(key)->line, "'" + std::string(key) + "' must be true or false, not '" + *v + "'");
      }
    }
  }

  // A list of scalars; a single scalar counts as a list of one; empty when absent or
  // null. Each item comes with its own line.
  std::vector<std::pair<std::string, int>> get_list(std::string_view key, std::string_view example) const {
    std::vector<std::pair<std::string, int>> out;
    auto e = find(key);
    if (e == nullptr || e->value.IsNull()) {
      return out;
    }
    if (e->value.IsScalar()) {
      out.emplace_back(e->value.Scalar(), e->line);
      return out;
    }
    if (!e->value.IsSequence()) {
      ctx_.fail(e->line, "'" + e->key + "' must be a list like " + std::string(example));
    }
    for (const auto& item : e->value) {
      int l = line_of(item);
      if (!item.IsScalar()) {
        ctx_.fail(l ? l : e->line, "each entry of '" + e->key + "' must be a single value, as in " +
                                       std::string(example));
      }
      out.emplace_back(item.Scalar(), l ? l : e->line);
    }
    return out;
  }

  // A nested map; nullopt when absent.
  std::optional<section> sub(std::string_view key, const keys& known) const {
    auto e = find(key);
    if (e == nullptr) {
      return std::nullopt;
    }
    return section(ctx_, e->value, dotted(key), e->line, known);
  }

private:
  std::string dotted(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  std::string name() const {
    auto dot = path_.rfind('.');
    return dot == std::string::npos ? path_ : path_.substr(dot + 1);
  }

  context& ctx_;
  std::string path_;
  int line_ = 0;
  std::vector<entry> entries_;
};

}  // namespace nl::config::detail
