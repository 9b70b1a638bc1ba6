/* Helpers of the remote engines (backends/remote.h). */
#include "config.h"
#include "remote.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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

int uwdf_remote_engine_init(struct uwdf_remote_engine *re)
{
    re->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return re->wake_fd < 0 ? -errno : 0;
}

void uwdf_remote_engine_fini(struct uwdf_remote_engine *re)
{
    uwdf_remote_cmd_cache_free(&re->cmds);
    close(re->wake_fd);
}

void uwdf_remote_complete(struct uwdf_remote_engine *re, struct uwdf_io *io, int64_t res)
{
    *uwdf_remote_io_cmd(io) = NULL;
    uwdf_remote_done_push(&re->done, io, res);
}

void uwdf_remote_cmd_complete(struct uwdf_remote_engine *re, struct uwdf_remote_cmd *c)
{
    struct uwdf_io *io = c->io;
    if (!io)
        return;
    c->io = NULL;
    if (c->err) {
        uwdf_remote_complete(re, io, -(int64_t)c->err);
        return;
    }
    if (io->op == UWDF_OP_READ)
        uwdf_remote_copy_out(io, c->b.buf, c->len);
    uwdf_remote_complete(re, io, io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE ? (int64_t)c->len : 0);
}

void *uwdf_remote_cmd_start(struct uwdf_remote_engine *re, struct uwdf_io *io, size_t size, size_t len)
{
    struct uwdf_remote_cmd *c = uwdf_remote_cmd_get(&re->cmds, size, len);
    if (!c)
        return NULL;
    c->io = io;
    c->len = len;
    c->pending = 1;
    c->err = 0;
    c->flush_after = false;
    if (io->op == UWDF_OP_WRITE)
        uwdf_remote_copy_in(c->b.buf, io, len);
    *uwdf_remote_io_cmd(io) = c;
    return c;
}

void *uwdf_remote_rw_start(struct uwdf_remote_engine *re, struct uwdf_io *io, size_t size, uint64_t disk_size,
                           bool read_only, int *ret)
{
    size_t len;
    int64_t res;
    *ret = 0;
    if (io->iovcnt < 0) {
        *ret = -EINVAL;
        return NULL;
    }
    if (!uwdf_remote_rw_clip(io, disk_size, read_only, &len, &res)) {
        uwdf_remote_complete(re, io, res);
        return NULL;
    }
    void *c = uwdf_remote_cmd_start(re, io, size, len);
    if (!c)
        *ret = -ENOMEM;
    return c;
}

bool uwdf_remote_wants_write_through(const struct uwdf_io *io, bool target_write_through)
{
    return target_write_through || (io->rw_flags & (RWF_DSYNC | RWF_SYNC));
}

void uwdf_remote_flush_staged(struct uwdf_engine *e)
{
    (void)e;
}

int uwdf_remote_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct uwdf_remote_cmd *c = *uwdf_remote_io_cmd(io);
    if (!c || c->io != io)
        return -ENOENT; /* answered already: on the done list */
    c->io = NULL;
    uwdf_remote_complete(e->be, io, -ECANCELED);
    return 0;
}

void uwdf_remote_wake(struct uwdf_engine *e)
{
    struct uwdf_remote_engine *re = e->be;
    uwdf_remote_eventfd_signal(re->wake_fd);
}

struct timespec *uwdf_remote_poll_timeout(const struct uwdf_remote_engine *re, int64_t timeout_ns,
                                          struct timespec *ts)
{
    if (re->done.head)
        timeout_ns = 0;
    if (timeout_ns < 0)
        return NULL;
    ts->tv_sec = timeout_ns / 1000000000LL;
    ts->tv_nsec = timeout_ns % 1000000000LL;
    return ts;
}
