#include "netstack/dns.hpp"
