// Shared by the acl tests: rules and policies from rule text, failing the test (with the
// parser's message) when the text does not parse.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "acl/policy.hpp"

namespace acl_test {

inline nl::acl::rule rule_of(std::string_view spec, nl::acl::action a) {
  auto r = nl::acl::parse_rule_spec(spec, a);
  INFO(spec << ": " << (r ? std::string() : r.error()));
  REQUIRE(r);
  return *r;
}

// Rule i's label is "r<i>" so that expectations read plainly.
inline nl::acl::policy make_policy(std::vector<std::pair<nl::acl::action, std::string_view>> specs,
                                   nl::acl::action default_action = nl::acl::action::deny) {
  nl::acl::policy p;
  p.default_action = default_action;
  int i = 0;
  for (auto [a, s] : specs) {
    auto r = rule_of(s, a);
    r.label = "r" + std::to_string(++i);
    p.rules.push_back(r);
  }
  return p;
}

}  // namespace acl_test
