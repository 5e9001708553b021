#include "netstack/packet.hpp"
