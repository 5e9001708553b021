#include "netstack/nat.hpp"
