/* lwIP's platform header for nl (Linux, one thread, NO_SYS). */
#ifndef NL_LWIP_ARCH_CC_H
#define NL_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif
/* Defined in netstack/lwip_glue.cpp: diagnostics go to nl's log; a failed lwIP assertion
 * is a bug in nl's use of lwIP, so it is logged and the process aborts. */
void nl_lwip_diag(const char* fmt, ...);
void nl_lwip_assert(const char* msg, const char* file, int line);
uint32_t nl_lwip_rand(void);
/* The Internet checksum, host order, not complemented (netstack/packet.cpp's, 8 bytes per
 * step; lwIP's own sums 2). */
uint16_t nl_lwip_chksum(const void* data, int len);
#ifdef __cplusplus
}
#endif

#define LWIP_PLATFORM_DIAG(x) do { nl_lwip_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) nl_lwip_assert((x), __FILE__, __LINE__)
#define LWIP_RAND() (nl_lwip_rand())
#define LWIP_CHKSUM nl_lwip_chksum
#define LWIP_NO_STDINT_H 0
#define LWIP_NO_INTTYPES_H 0
#define LWIP_ERRNO_STDINCLUDE 1

#endif /* NL_LWIP_ARCH_CC_H */
