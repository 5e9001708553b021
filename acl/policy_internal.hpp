// Internal to acl/: what policy.cpp (parsing values), policy_rules.cpp (building rules),
// policy_text.cpp (readable forms, JSON) and policy_match.cpp (evaluation) share. Not
// installed, not included outside acl/.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <date/tz.h>

#include "acl/policy.hpp"

namespace nl::acl::detail {

inline constexpr std::uint16_t minutes_per_day = 24 * 60;
inline constexpr std::uint8_t all_days = 0x7f;
inline constexpr std::array<std::string_view, 7> day_names{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

// Blanks and tabs removed at both ends.
std::string_view trim(std::string_view s);

// ASCII lower case.
std::string lower(std::string_view s);

// "8", "08", "8:30", "08:30", "24:00" -> minutes since midnight; nullopt otherwise.
std::optional<unsigned> parse_clock(std::string_view s);

// The tz database's closest zone name to a mistyped `tz`, or "" when none is close.
std::string zone_suggestion(std::string_view tz);

// Lower-case, one trailing dot removed: the form names are compared in.
std::string normalize_name(std::string_view name);

// "" and "UTC" both mean UTC (no zone lookup).
bool is_utc(std::string_view tz);

// The named zone, or nullptr for an implausible or unknown name (or no tz database).
const date::time_zone* find_zone(std::string_view tz);

// A window that can match some instant.
inline bool window_can_match(const time_window& w) {
  return w.days != 0 && w.start_minute < minutes_per_day && w.start_minute != w.end_minute;
}

}  // namespace nl::acl::detail
