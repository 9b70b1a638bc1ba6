/* Verify blocks: every block a verifying job writes starts with a header
 * (magic, length, offset, a random sequence number) and its crc32c; reads
 * check it. */
#ifndef UWDF_BENCH_VERIFY_H
#define UWDF_BENCH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_VERIFY_MSGS 10 /* verify failures printed per job */

/* The header at the start of every verify block. The crc32c covers the
 * whole block except the crc field itself. */
#define VERIFY_MAGIC 0x56425755u /* "UWBV" in memory order */
struct verify_hdr {
    uint32_t magic;
    uint32_t len;
    uint64_t offset; /* byte offset of the block in its file */
    uint64_t seq;    /* random per write: tells two writes of a block apart */
    uint32_t crc;
    uint32_t reserved;
};
_Static_assert(sizeof(struct verify_hdr) == 32, "verify header layout");

/* Once, before any block is filled or checked. */
void crc32c_init(void);
void verify_fill(void *buf, size_t len, uint64_t offset, uint64_t seed);
/* 0 when the block is the one written at offset; else -1 and why. */
int verify_check(const void *buf, size_t len, uint64_t offset, char *why, size_t n);

struct slot;
/* Checks the block the slot just read; false when the job must stop
 * (verify_fatal). */
bool slot_verify(struct slot *s);

#endif
