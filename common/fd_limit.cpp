#include "common/fd_limit.hpp"

#include <sys/resource.h>

namespace nl {

fd_limit raise_fd_limit() noexcept {
  fd_limit out;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return out;
  }
  out.before = out.now = rl.rlim_cur;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= rl.rlim_max) {
    return out;
  }
  rlimit want = rl;
  // Linux refuses more than fs.nr_open (1 048 576 by default), whatever the hard limit says.
  constexpr rlim_t nr_open_default = 1024 * 1024;
  want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? nr_open_default : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
    out.now = want.rlim_cur;
  }
  return out;
}

}  // namespace nl
