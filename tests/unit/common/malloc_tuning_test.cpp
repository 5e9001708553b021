// common/malloc_tuning: the allocator settings must really be in effect. (They once were
// not: the glibc test ran before any C library header had defined __GLIBC__, so the body
// compiled to nothing and every 64 KiB chunk of a QUIC download landed on pages the kernel
// had to fault in and zero again.)
#include "common/malloc_tuning.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

TEST_CASE("tune_allocator keeps medium blocks on the heap and freed heap in the process", "[malloc]") {
#if !defined(__GLIBC__)
  WARN("glibc only: nothing to check");  // Catch2 v2 has no SKIP
#elif defined(__SANITIZE_ADDRESS__)
  WARN("AddressSanitizer replaces malloc: glibc's mallopt has nothing to tune");
#else
  REQUIRE(nl::tune_allocator());
  constexpr std::size_t block = 3 * 1024 * 1024;  // above glibc's default mmap threshold
  auto before = mallinfo2();
  void* p = std::malloc(block);
  REQUIRE(p != nullptr);
  [[maybe_unused]] static void* volatile escape;  // so the compiler cannot drop the malloc/free pair
  escape = p;
  std::memset(p, 1, block);
  auto during = mallinfo2();
  // From the heap, not a private mapping (glibc's default would mmap a 3 MiB block).
  CHECK(during.hblks == before.hblks);
  std::free(p);
  // Freed, the block stays at the top of the heap instead of going back to the kernel.
  CHECK(mallinfo2().keepcost >= block);
#endif
}
