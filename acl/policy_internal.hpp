// Internal to acl/: what policy.cpp (parsing and building rules), policy_text.cpp
// (readable forms, JSON) and policy_match.cpp (evaluation) share. Not installed, not
// included outside acl/.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <date/tz.h>

#include "acl/policy.hpp"

namespace nl::acl::detail {

inline constexpr std::uint16_t minutes_per_day = 24 * 60;
inline constexpr std::uint8_t all_days = 0x7f;
inline constexpr std::array<std::string_view, 7> day_names{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

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
