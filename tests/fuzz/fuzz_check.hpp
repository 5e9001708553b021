// Shared by the fuzz targets: an invariant check that crashes (so libFuzzer records the
// input) even in release builds where assert() is compiled out.
#pragma once

#include <cstdio>
#include <cstdlib>

#define NL_FUZZ_CHECK(cond)                                                               \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);   \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
