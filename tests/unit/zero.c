/* zero.c - unit test of xd_is_zero: every length and alignment around its
 * 8-byte head and 64-byte strides, with one non-zero byte at each position
 * (every bit of it) or none at all. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "zero.h"

int main(void)
{
    enum { MAX = 3 * 64 + 40, ALIGN = 16 };
    static _Alignas(64) unsigned char buf[MAX + ALIGN + 64];
    for (size_t align = 0; align < ALIGN; align++)
        for (size_t len = 0; len <= MAX; len++) {
            unsigned char *p = buf + align;
            memset(buf, 0, sizeof(buf));
            CHECK_MSG(xd_is_zero(p, len), "zeros, align %zu len %zu", align, len);
            /* non-zero bytes just outside the range are not looked at */
            if (align)
                p[-1] = 1;
            p[len] = 1;
            CHECK_MSG(xd_is_zero(p, len), "neighbours, align %zu len %zu", align, len);
            for (size_t pos = 0; pos < len; pos++)
                for (int bit = 0; bit < 8; bit++) {
                    p[pos] = (unsigned char)(1u << bit);
                    CHECK_MSG(!xd_is_zero(p, len), "align %zu len %zu byte %zu bit %d", align,
                              len, pos, bit);
                    p[pos] = 0;
                }
        }
    static unsigned char big[1 << 20];
    CHECK(xd_is_zero(big, sizeof(big)));
    big[sizeof(big) - 1] = 0x80;
    CHECK(!xd_is_zero(big, sizeof(big)));
    return check_result();
}
