#include "common/fd_limit.hpp"

#include <sys/resource.h>

namespace nl {

void raise_fd_limit() noexcept {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= rl.rlim_max) {
    return;
  }
  rlimit want = rl;
  // Linux refuses more than fs.nr_open (1 048 576 by default), whatever the hard limit says.
  constexpr rlim_t nr_open_default = 1024 * 1024;
  want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? nr_open_default : rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &want);
}

}  // namespace nl
