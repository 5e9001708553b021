/* nl's build options for the pristine lwIP 2.1.3 (netstack/CMakeLists.txt compiles lwIP's
 * source from Debian's source package with this file; lwIP itself is never patched).
 * One thread, no OS layer (NO_SYS): nl's Asio event loop feeds packets in and drives the
 * timers. Only TCP runs through lwIP: UDP, DNS and ICMP replies are built by nl directly.
 * Sizes are for throughput on a local TUN: large windows, a send buffer of 128 KiB per
 * flow, the MSS taken from the netif MTU at run time (TCP_CALCULATE_EFF_SEND_MSS, with
 * TCP_MSS as the ceiling: with TUN segmentation offload the netif MTU is 64 KiB and the
 * kernel cuts lwIP's 16000-byte segments to the real MTU) and a short TIME_WAIT, because lwIP's
 * peer is the NAT in the same process, not the Internet. */
#ifndef NL_LWIPOPTS_H
#define NL_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_TIMERS 1
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_NETIF_API 0
#define LWIP_SINGLE_NETIF 1
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0
#define LWIP_ALTCP 0

/* Memory: the C library's malloc for everything; no fixed pools to run out of. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 1
#define MEM_ALIGNMENT 8
#define MEMP_NUM_TCP_PCB 65535
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_TCP_SEG 65535
#define MEMP_NUM_PBUF 65535
#define PBUF_POOL_SIZE 64
#define LWIP_SUPPORT_CUSTOM_PBUF 0

/* Protocols. */
#define LWIP_IPV4 1
#define LWIP_IPV6 1
#define LWIP_ARP 0
#define LWIP_ETHERNET 0
#define LWIP_ICMP 1
#define LWIP_RAW 0
#define LWIP_UDP 0
#define LWIP_DNS 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define IP_FORWARD 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define LWIP_IPV6_MLD 0
#define LWIP_IPV6_AUTOCONFIG 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 0
#define LWIP_IPV6_FRAG 0
#define LWIP_IPV6_REASS 0
#define LWIP_IPV6_DHCP6 0
#define LWIP_ND6_QUEUEING 0
#define LWIP_ND6_TCP_REACHABILITY_HINTS 0
#define LWIP_IPV6_SCOPES 0

/* TCP. */
#define LWIP_TCP 1
#define LWIP_CALLBACK_API 1
#define LWIP_EVENT_API 0
#define LWIP_TCP_KEEPALIVE 0
#define TCP_MSS 16000                      /* ceiling: with TUN offload the kernel cuts segments to the MTU */
#define TCP_CALCULATE_EFF_SEND_MSS 1       /* per flow: min(TCP_MSS, netif MTU - headers, peer MSS) */
#define LWIP_WND_SCALE 1
#define TCP_RCV_SCALE 5
#define TCP_WND (1024 * 1024)              /* advertised; data is acknowledged to lwIP only as streams take it */
#define TCP_SND_BUF (128 * 1024)
#define TCP_SND_QUEUELEN 1024              /* segments: TCP_SND_BUF at the smallest MSS we expect */
#define TCP_SNDLOWAT 1024                  /* unused by nl (no sockets); lwIP: must stay 4 MSS below 64 KiB */
#define TCP_SNDQUEUELOWAT (TCP_SND_QUEUELEN / 2)
#define TCP_OVERSIZE TCP_MSS
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_SACK_OUT 1
#define LWIP_TCP_MAX_SACK_NUM 4
#define TCP_MSL 500UL                      /* TIME_WAIT = 2 * MSL = 1 s between lwIP and the NAT */
#define TCP_LISTEN_BACKLOG 0
#define TCP_DEFAULT_LISTEN_BACKLOG 0xff
#define LWIP_TCP_TIMESTAMPS 0
#define TCP_TTL 64
#define LWIP_TCP_PCB_NUM_EXT_ARGS 0

/* Checksums: the kernel's TUN packets carry correct ones and the NAT keeps them correct,
 * so lwIP does not verify them again; it must generate them (the kernel verifies ours),
 * and does so while copying data in. */
#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_ICMP 0
#define CHECKSUM_CHECK_ICMP6 0
#define CHECKSUM_GEN_IP 1
#define CHECKSUM_GEN_TCP 1
#define CHECKSUM_GEN_ICMP 1
#define CHECKSUM_GEN_ICMP6 1
#define LWIP_CHECKSUM_ON_COPY 1

#define LWIP_STATS 0
#define LWIP_STATS_DISPLAY 0
#define LWIP_DEBUG 0
#define LWIP_PERF 0

#endif /* NL_LWIPOPTS_H */
