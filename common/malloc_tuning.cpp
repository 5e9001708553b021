#include "common/malloc_tuning.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace nl {

void tune_allocator() noexcept {
#if defined(__GLIBC__)
  // Freed heap is kept until 8 MiB sit unused at the top; growth asks for 1 MiB extra.
  (void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  (void)mallopt(M_TOP_PAD, 1024 * 1024);
  // Fixed threshold (glibc's sliding one would also move the trim threshold back): blocks
  // up to 4 MiB (a QUIC receive chunk is at most 1 MiB) come from the heap, not from mmap.
  (void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
#endif
}

}  // namespace nl
