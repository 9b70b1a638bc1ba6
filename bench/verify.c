/* crc32c and verify blocks (verify.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "io.h"
#include "util.h"
#include "verify.h"

static uint32_t crc32c_table[256];
static bool crc32c_use_hw;

void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc32c_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len--)
        crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *buf,
                                                               size_t len)
{
    const unsigned char *p = buf;
    unsigned long long c = crc;
    while (len >= 8) {
        unsigned long long v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

/* Raw register update (no pre/post inversion). */
static uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
    if (crc32c_use_hw)
        return crc32c_sse42(crc, buf, len);
#endif
    return crc32c_sw(crc, buf, len);
}

static uint32_t verify_block_crc(const unsigned char *buf, size_t len)
{
    size_t crc_at = offsetof(struct verify_hdr, crc);
    uint32_t c = crc32c_update(0xFFFFFFFFu, buf, crc_at);
    c = crc32c_update(c, buf + crc_at + 4, len - crc_at - 4);
    return ~c;
}

void verify_fill(void *buf, size_t len, uint64_t offset, uint64_t seed)
{
    struct verify_hdr h = { .magic = VERIFY_MAGIC, .len = (uint32_t)len, .offset = offset, .seq = seed };
    fill_random((unsigned char *)buf + sizeof(h), len - sizeof(h), seed);
    memcpy(buf, &h, sizeof(h));
    h.crc = verify_block_crc(buf, len);
    memcpy(buf, &h, sizeof(h));
}

int verify_check(const void *buf, size_t len, uint64_t offset, char *why, size_t n)
{
    struct verify_hdr h;
    memcpy(&h, buf, sizeof(h));
    if (h.magic != VERIFY_MAGIC) {
        snprintf(why, n, "bad header magic 0x%08" PRIx32 " (expected 0x%08" PRIx32 ")", h.magic,
                 (uint32_t)VERIFY_MAGIC);
        return -1;
    }
    if (h.len != len) {
        snprintf(why, n, "header length %" PRIu32 ", block size %zu", h.len, len);
        return -1;
    }
    if (h.offset != offset) {
        snprintf(why, n, "header offset %" PRIu64 " (block was written for another offset)", h.offset);
        return -1;
    }
    uint32_t c = verify_block_crc(buf, len);
    if (c != h.crc) {
        snprintf(why, n, "crc32c mismatch: stored 0x%08" PRIx32 ", computed 0x%08" PRIx32, h.crc, c);
        return -1;
    }
    return 0;
}

bool slot_verify(struct slot *s)
{
    struct job *j = s->job;
    char why[160];
    if (verify_check(s->buf, s->len, s->offset, why, sizeof(why)) == 0) {
        __atomic_fetch_add(&j->verified, 1, __ATOMIC_RELAXED);
        return true;
    }
    __atomic_fetch_add(&j->verify_errors, 1, __ATOMIC_RELAXED);
    unsigned nmsg = __atomic_fetch_add(&j->verify_msgs, 1, __ATOMIC_RELAXED);
    if (nmsg < MAX_VERIFY_MSGS)
        errmsg("%s: verify failed at offset %" PRIu64 " of '%s': %s", j->o.name, s->offset,
               j->files[s->file].path, why);
    else if (nmsg == MAX_VERIFY_MSGS)
        errmsg("%s: more verify failures; counting them only", j->o.name);
    job_set_error(j, EILSEQ, STATUS_SUCCESS);
    if (j->o.verify_fatal) {
        __atomic_store_n(&j->stop, 1, __ATOMIC_RELAXED);
        return false;
    }
    return true;
}
