#include "common/malloc_tuning.hpp"

// <cstdlib> pulls in <features.h>, which is what defines __GLIBC__: the test below must
// come after a C library header, or it is silently false and nothing gets tuned.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nl {

bool tune_allocator() noexcept {
#if defined(__GLIBC__)
  // Freed heap is kept until 8 MiB sit unused at the top; growth asks for 1 MiB extra.
  bool ok = mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024) == 1;
  ok = mallopt(M_TOP_PAD, 1024 * 1024) == 1 && ok;
  // Fixed threshold (glibc's sliding one would also move the trim threshold back): blocks
  // up to 4 MiB (a QUIC receive chunk is at most 1 MiB) come from the heap, not from mmap.
  ok = mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024) == 1 && ok;
  return ok;
#else
  return false;
#endif
}

}  // namespace nl
