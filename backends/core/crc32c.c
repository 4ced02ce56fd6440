/* crc32c.c - CRC-32C, see crc32c.h. The SSE4.2 path runs three independent
 * crc32 streams over adjacent strips (the instruction has a latency of three
 * cycles but issues one per cycle) and joins them with tables that advance a
 * crc over a strip of zeros. The fallback is slicing-by-8.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* Castagnoli, bit-reflected */

/* Both implementations work on the raw register; xd_crc32c inverts. */
typedef uint32_t crc32c_fn(uint32_t crc, const unsigned char *p, size_t len);

static uint32_t slice_table[8][256];
static crc32c_fn *crc32c_impl;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
    const uint32_t (*t)[256] = slice_table;
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
        len--;
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = crc ^ load_le32(p), hi = load_le32(p + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
              t[4][lo >> 24] ^ t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
              t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    while (len--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

static void slice_table_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        slice_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++) {
            uint32_t prev = slice_table[k - 1][i];
            slice_table[k][i] = (prev >> 8) ^ slice_table[0][prev & 0xff];
        }
}

#if defined(__x86_64__)

/* Strip lengths of the three-stream loop: long strips for the bulk of a
 * chunk, short ones so a remainder of a few KiB still runs three wide. */
#define STRIP_LONG 8192
#define STRIP_SHORT 256

/* zeros_table[k][b]: the register b << 8k advanced over a strip of zeros.
 * Advancing is linear over GF(2), so four lookups advance any register. */
static uint32_t zeros_long[4][256], zeros_short[4][256];

/* m[i] is the image of bit i under a linear map. */
static uint32_t gf2_apply(const uint32_t m[32], uint32_t v)
{
    uint32_t r = 0;
    for (int i = 0; v; i++, v >>= 1)
        if (v & 1)
            r ^= m[i];
    return r;
}

/* Tables advancing a register over 2^log2_len zero bytes: start from the
 * map of one zero byte, square it log2_len times. */
static void zeros_table_init(uint32_t table[4][256], int log2_len)
{
    uint32_t m[32], sq[32];
    for (int i = 0; i < 32; i++) {
        uint32_t c = 1u << i;
        m[i] = (c >> 8) ^ slice_table[0][c & 0xff];
    }
    for (int s = 0; s < log2_len; s++) {
        for (int i = 0; i < 32; i++)
            sq[i] = gf2_apply(m, m[i]);
        memcpy(m, sq, sizeof(m));
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            table[k][b] = gf2_apply(m, b << (8 * k));
}

static inline uint32_t zeros_advance(const uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
           table[3][crc >> 24];
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

__attribute__((target("sse4.2"))) static inline uint32_t
crc32c_hw_strips(uint32_t crc, const unsigned char **pp, size_t *lenp, size_t strip,
                 const uint32_t zeros[4][256])
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    for (; len >= 3 * strip; p += 3 * strip, len -= 3 * strip) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        for (size_t i = 0; i < strip; i += 8) {
            c0 = _mm_crc32_u64(c0, load64(p + i));
            c1 = _mm_crc32_u64(c1, load64(p + strip + i));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * strip + i));
        }
        crc = zeros_advance(zeros, (uint32_t)c0) ^ (uint32_t)c1;
        crc = zeros_advance(zeros, crc) ^ (uint32_t)c2;
    }
    *pp = p;
    *lenp = len;
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_raw(uint32_t crc,
                                                               const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    crc = crc32c_hw_strips(crc, &p, &len, STRIP_LONG, zeros_long);
    crc = crc32c_hw_strips(crc, &p, &len, STRIP_SHORT, zeros_short);
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8)
        c = _mm_crc32_u64(c, load64(p));
    crc = (uint32_t)c;
    while (len--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

static bool cpu_has_sse42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

#endif /* __x86_64__ */

static void crc32c_init(void)
{
    slice_table_init();
    crc32c_impl = crc32c_sw_raw;
#if defined(__x86_64__)
    if (cpu_has_sse42()) {
        zeros_table_init(zeros_long, __builtin_ctz(STRIP_LONG));
        zeros_table_init(zeros_short, __builtin_ctz(STRIP_SHORT));
        crc32c_impl = crc32c_hw_raw;
    }
#endif
}

uint32_t xd_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    return ~crc32c_impl(~crc, buf, len);
}

uint32_t xd_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc32c_once, crc32c_init);
    return ~crc32c_sw_raw(~crc, buf, len);
}
