/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types and helpers that dm-parallax/parallax-format.[ch]
 * use, for the userspace build of that shared code.
 */
#ifndef PLX_KCOMPAT_H
#define PLX_KCOMPAT_H

#include <endian.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define __packed __attribute__((packed))

#define BIT(nr)		(1UL << (nr))
#define BIT_ULL(nr)	(1ULL << (nr))

#define le16_to_cpu(x) le16toh((__force u16)(x))
#define le32_to_cpu(x) le32toh((__force u32)(x))
#define le64_to_cpu(x) le64toh((__force u64)(x))
#define cpu_to_le16(x) ((__force __le16)htole16(x))
#define cpu_to_le32(x) ((__force __le32)htole32(x))
#define cpu_to_le64(x) ((__force __le64)htole64(x))

#ifndef __force
#define __force
#endif

#define ilog2(n) (63 - __builtin_clzll((unsigned long long)(n)))

/* The kernel exports the shared code to its KUnit suite only. */
#define EXPORT_SYMBOL_IF_KUNIT(sym)

/* Same contract as the kernel's crc32c(): no pre- or post-inversion. */
u32 crc32c(u32 crc, const void *buf, size_t len);

#endif
