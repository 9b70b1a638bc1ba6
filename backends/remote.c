/* Helpers of the remote engines (backends/remote.h). */
#include "config.h"
#include "remote.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int uwdf_remote_bounce_reserve(struct uwdf_remote_bounce *b, size_t len)
{
    if (b->cap >= len)
        return 0;
    char *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    free(b->buf);
    b->buf = buf;
    b->cap = len;
    return 0;
}

void uwdf_remote_bounce_idle(struct uwdf_remote_bounce *b)
{
    if (b->cap > UWDF_REMOTE_BOUNCE_KEEP)
        uwdf_remote_bounce_free(b);
}

void uwdf_remote_bounce_free(struct uwdf_remote_bounce *b)
{
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}

void *uwdf_remote_cmd_get(struct uwdf_remote_cmd_cache *cache, size_t size, size_t len)
{
    struct uwdf_remote_cmd *c = cache->idle;
    if (c) {
        cache->idle = c->next_idle;
        cache->n--;
    } else if (!(c = calloc(1, size))) {
        return NULL;
    }
    if (uwdf_remote_bounce_reserve(&c->b, len)) {
        uwdf_remote_cmd_free(c);
        return NULL;
    }
    c->next_idle = NULL;
    return c;
}

void uwdf_remote_cmd_free(struct uwdf_remote_cmd *c)
{
    uwdf_remote_bounce_free(&c->b);
    free(c);
}

void uwdf_remote_cmd_put(struct uwdf_remote_cmd_cache *cache, struct uwdf_remote_cmd *c)
{
    if (cache->n >= UWDF_REMOTE_CMD_CACHE) {
        uwdf_remote_cmd_free(c);
        return;
    }
    uwdf_remote_bounce_idle(&c->b);
    c->next_idle = cache->idle;
    cache->idle = c;
    cache->n++;
}

void uwdf_remote_cmd_cache_free(struct uwdf_remote_cmd_cache *cache)
{
    while (cache->idle) {
        struct uwdf_remote_cmd *c = cache->idle;
        cache->idle = c->next_idle;
        uwdf_remote_cmd_free(c);
    }
    cache->n = 0;
}

bool uwdf_remote_rw_clip(const struct uwdf_io *io, uint64_t size, bool read_only, size_t *len, int64_t *res)
{
    bool write = io->op == UWDF_OP_WRITE;
    if (write && read_only) {
        *res = -EROFS;
        return false;
    }
    size_t n = uwdf_remote_iov_len(io);
    if (io->offset >= size || n == 0) {
        *res = write && n ? -ENOSPC : 0;
        return false;
    }
    if (n > size - io->offset)
        n = (size_t)(size - io->offset);
    *len = n;
    return true;
}

size_t uwdf_remote_iov_len(const struct uwdf_io *io)
{
    size_t len = 0;
    for (int i = 0; i < io->iovcnt; i++)
        len += io->iov[i].iov_len;
    return len;
}

void uwdf_remote_copy_in(char *buf, const struct uwdf_io *io, size_t len)
{
    for (int i = 0; i < io->iovcnt && len > 0; i++) {
        size_t n = io->iov[i].iov_len < len ? io->iov[i].iov_len : len;
        memcpy(buf, io->iov[i].iov_base, n);
        buf += n;
        len -= n;
    }
}

void uwdf_remote_copy_out(struct uwdf_io *io, const char *buf, size_t len)
{
    for (int i = 0; i < io->iovcnt && len > 0; i++) {
        size_t n = io->iov[i].iov_len < len ? io->iov[i].iov_len : len;
        memcpy(io->iov[i].iov_base, buf, n);
        buf += n;
        len -= n;
    }
}

void uwdf_remote_done_push(struct uwdf_remote_done *d, struct uwdf_io *io, int64_t res)
{
    io->res = res;
    io->timed_out = false;
    io->next = NULL;
    if (d->tail)
        d->tail->next = io;
    else
        d->head = io;
    d->tail = io;
}

int uwdf_remote_done_pop(struct uwdf_remote_done *d, struct uwdf_io **done, int max)
{
    int got = 0;
    while (got < max && d->head) {
        struct uwdf_io *io = d->head;
        d->head = io->next;
        io->next = NULL;
        done[got++] = io;
    }
    if (!d->head)
        d->tail = NULL;
    return got;
}

void uwdf_remote_eventfd_signal(int fd)
{
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
}

void uwdf_remote_eventfd_drain(int fd)
{
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
}

void uwdf_remote_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}
