/* crc32c.h - CRC-32C (Castagnoli), the checksum of the compressed type's
 * chunks and map entries. SSE4.2's crc32 instruction when the CPU has it
 * (checked once), a table-driven fallback otherwise; both give the same value.
 */
#ifndef XD_CRC32C_H
#define XD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Standard CRC-32C: xd_crc32c(0, "123456789", 9) == 0xE3069283. Chain calls
 * by passing the previous result as crc. */
uint32_t xd_crc32c(uint32_t crc, const void *buf, size_t len);
/* The table-driven fallback alone, whatever the CPU; for tests. */
uint32_t xd_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
