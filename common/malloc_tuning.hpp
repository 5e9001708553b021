// Allocator settings for the relay processes. Every nl binary calls tune_allocator() at
// the top of main.
//
// Why: stream data moves in 64 KiB chunks that are allocated on receive and freed once
// sent (and, over QUIC, acknowledged). With glibc's defaults the freed top of the heap is
// returned to the kernel as soon as it exceeds 128 KiB, so the next burst faults the same
// pages back in, each one zeroed by the kernel: 5-7 % of the gateway's CPU in a QUIC bulk
// transfer went to page faults. Keeping a few MiB of freed heap avoids that.
#pragma once

namespace nl {

// Returns whether the settings were applied (false on a C library other than glibc).
bool tune_allocator() noexcept;

}  // namespace nl
