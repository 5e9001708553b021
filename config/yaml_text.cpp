// Checks of a config file's text made before yaml-cpp 0.7 parses it: inputs that make that
// version loop forever are refused here with their line (fuzz_config found them), and the
// tab test behind the YAML error hints.
#include <fmt/format.h>

#include "config/detail.hpp"

namespace nl::config::detail {

// yaml-cpp reports a tab in the indentation as various other errors ("illegal map
// value"): look at the text of the 0-based line `line` and the one before it.
bool tab_indented(std::string_view yaml, int line) {
  int n = 0;
  while (!yaml.empty()) {
    auto end = yaml.find('\n');
    auto text = yaml.substr(0, end);
    if (n == line - 1 || n == line) {
      auto first = text.find_first_not_of(" \t");
      if (text.substr(0, first).find('\t') != std::string_view::npos) {
        return true;
      }
    }
    if (end == std::string_view::npos || ++n > line) {
      break;
    }
    yaml.remove_prefix(end + 1);
  }
  return false;
}

namespace {

// yaml-cpp 0.7 never returns when a document's root node starts with ',' (a file that is
// just "," spins forever; so does a root scalar followed by a ',' line). An nl config's
// root is a mapping, so each document's first significant line must be a "key: value"
// line starting in column 0; refuse anything else here, before yaml-cpp sees it.
// True when `line` (without indentation) starts with a mapping key: a plain scalar that
// does not begin with an indicator, or a quoted one, then ':' and a space or the end.
bool starts_with_mapping_key(std::string_view line) {
  auto colon_ends_key = [&](std::size_t i) {
    return i < line.size() && line[i] == ':' && (i + 1 == line.size() || line[i + 1] == ' ' || line[i + 1] == '\t');
  };
  char c = line.front();
  if (c == '\'' || c == '"') {
    std::size_t i = 1;
    for (;; ++i) {
      if (i >= line.size()) {
        return false;  // unterminated on this line
      }
      if (c == '"' && line[i] == '\\') {
        ++i;
      } else if (line[i] == c) {
        if (c == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
          ++i;  // '' is an escaped quote
        } else {
          break;
        }
      }
    }
    ++i;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    return colon_ends_key(i);
  }
  if (std::string_view(",[]{}#&*!|>%@`").find(c) != std::string_view::npos) {
    return false;
  }
  if ((c == '-' || c == '?' || c == ':') && (line.size() == 1 || line[1] == ' ' || line[1] == '\t')) {
    return false;
  }
  // A '#' after whitespace starts a comment: a ':' behind it is not part of the key
  // ("o #see: x" is the plain scalar "o", and a ',' line after it would spin yaml-cpp).
  auto comment = std::min(line.find(" #"), line.find("\t#"));
  line = line.substr(0, comment);
  for (std::size_t i = line.find(':'); i != std::string_view::npos; i = line.find(':', i + 1)) {
    if (colon_ends_key(i)) {
      return true;
    }
  }
  return false;
}

}  // namespace

// An nl config is one YAML document. Once it has content, a line in column 0 that starts
// another one ('---', a '%' directive, which yaml-cpp also takes as a document start, or
// content after '...') is refused here: yaml-cpp would otherwise go on to parse the next
// document's root, and "s:\n%\n," spins it forever just as a ',' root does.
std::optional<text_finding> check_yaml_text(std::string_view yaml) {
  // YAML allows no C0 control character but tab, LF and CR, nor DEL; yaml-cpp 0.7 takes a
  // NUL for the end of the stream (so "\0,:" passes the root check and then spins it).
  int l = 1;
  for (char ch : yaml) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      ++l;
    } else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
      return text_finding{l, fmt::format("control character 0x{:02x}; a config file must be plain text (UTF-8)", c)};
    }
  }
  enum { before, inside, ended } state = before;
  int line = 0;
  while (!yaml.empty()) {
    ++line;
    auto end = yaml.find('\n');
    auto text = yaml.substr(0, end);
    yaml = end == std::string_view::npos ? std::string_view{} : yaml.substr(end + 1);
    if (!text.empty() && text.back() == '\r') {
      text.remove_suffix(1);
    }
    auto first = text.find_first_not_of(" \t");
    bool blank = first == std::string_view::npos || text[first] == '#';
    bool start = text == "---" || text.starts_with("--- ") || text.starts_with("---\t");
    bool finish = text == "..." || text.starts_with("... ") || text.starts_with("...\t");
    if ((state == inside && (start || text.starts_with('%'))) || (state == ended && !blank)) {
      return text_finding{line, "only one YAML document is allowed; remove the '" + std::string(text.substr(0, 3)) +
                                    "' line and merge the documents"};
    }
    if (finish) {
      auto after = text.substr(3);
      auto f = after.find_first_not_of(" \t");
      if (f != std::string_view::npos && after[f] != '#') {
        return text_finding{line, "nothing but a comment may follow '...' (the end of the document) on its line"};
      }
      state = ended;
      continue;
    }
    if (start) {
      text = text.substr(3);
      first = text.find_first_not_of(" \t");
      blank = first == std::string_view::npos || text[first] == '#';
    }
    if (state != before || blank || text[first] == '%') {
      continue;  // inside the document, or blank, comment or directive before it
    }
    auto rest = text.substr(first);
    state = inside;
    // A flow map at the root ("{a: b}") is refused too: "{a: b}," also never returns. So is
    // an indented root map: "  a: b" followed by a ',' line in column 0 spins as well.
    if (first != 0 || !starts_with_mapping_key(rest)) {
      return text_finding{line, "the config must be a map of 'key: value' lines at the top level, starting in the "
                                "first column (found '" + std::string(text.substr(0, 40)) +
                                    "'); see examples/ for the layout"};
    }
  }
  return std::nullopt;
}

}  // namespace nl::config::detail
