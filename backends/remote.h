/* What the remote engines (nbd.c, rbd.c) share: neither protocol can
 * cancel a request, so both run every read and write through a bounce
 * buffer the engine owns (a request that times out or is cancelled
 * completes at once; the server's late answer lands in the bounce, never
 * in the caller's buffer), and both hand finished ops to reap() through a
 * list kept on the engine thread. Engine thread only. */
#ifndef UWDF_BACKEND_REMOTE_H
#define UWDF_BACKEND_REMOTE_H

#include "backend.h"

#include <stddef.h>
#include <time.h>

/* The largest read or write a remote engine issues as one command (its
 * ops table's max_bytes; the core runs a larger one as pieces): the bounce
 * buffer of one command is at most this large. libnbd refuses more than
 * 64 MiB in one command; librbd states no maximum, and splits a command
 * into its objects' requests itself (8 of the default 4 MiB objects here). */
#define UWDF_REMOTE_MAX_BYTES (32u << 20)
/* Bounce buffers above this size are not kept when their command is idle. */
#define UWDF_REMOTE_BOUNCE_KEEP (1u << 20)
/* Idle commands (with their bounce buffers) an engine keeps for reuse. */
#define UWDF_REMOTE_CMD_CACHE 256

/* A bounce buffer, grown on demand and kept for the next op. */
struct uwdf_remote_bounce {
    char *buf;
    size_t cap;
};

/* Room for len bytes in b (contents not kept). 0 or -ENOMEM (b unchanged). */
int uwdf_remote_bounce_reserve(struct uwdf_remote_bounce *b, size_t len);
/* b goes idle: a large buffer is freed rather than kept. */
void uwdf_remote_bounce_idle(struct uwdf_remote_bounce *b);
void uwdf_remote_bounce_free(struct uwdf_remote_bounce *b);

/* What every remote engine's command starts with: its bounce buffer, its
 * link in the engine's cache of idle commands, and the op it carries. */
struct uwdf_remote_cmd {
    struct uwdf_remote_bounce b;
    struct uwdf_remote_cmd *next_idle;
    struct uwdf_io *io; /* NULL once completed or cancelled (orphaned) */
    size_t len;         /* bytes of the op (after clipping at the disk's end) */
    unsigned pending;   /* requests not yet answered, plus the issuer's hold */
    int err;            /* the first error of its requests */
    bool flush_after;   /* write-through done as a flush after the write */
};

/* An engine's idle commands (at most UWDF_REMOTE_CMD_CACHE), so steady
 * state allocates nothing. */
struct uwdf_remote_cmd_cache {
    struct uwdf_remote_cmd *idle;
    unsigned n;
};

/* A command of size bytes (a struct whose first member is struct
 * uwdf_remote_cmd) with room for len bytes in its bounce buffer: an idle
 * one, or a new one zeroed; NULL when out of memory. The caller sets every
 * field of its own. */
void *uwdf_remote_cmd_get(struct uwdf_remote_cmd_cache *cache, size_t size, size_t len);
/* c goes idle (or is freed when the cache is full). */
void uwdf_remote_cmd_put(struct uwdf_remote_cmd_cache *cache, struct uwdf_remote_cmd *c);
/* Free c (and its bounce) outright. */
void uwdf_remote_cmd_free(struct uwdf_remote_cmd *c);
/* Free every idle command (the engine closes). */
void uwdf_remote_cmd_cache_free(struct uwdf_remote_cmd_cache *cache);

/* The block-device rules of a read or write of io on a remote disk of size
 * bytes. False and *res when it completes without the server: a write to a
 * read-only disk (-EROFS), at or past the end (0 bytes read; -ENOSPC for a
 * write), nothing to transfer (0). Otherwise true and *len, the bytes to
 * transfer (clipped at the end: short, as on a block device). */
bool uwdf_remote_rw_clip(const struct uwdf_io *io, uint64_t size, bool read_only, size_t *len, int64_t *res);

/* Bytes of io's iovecs. */
size_t uwdf_remote_iov_len(const struct uwdf_io *io);
/* Gather the first len bytes of io's iovecs into buf, or scatter buf's
 * len bytes into them. */
void uwdf_remote_copy_in(char *buf, const struct uwdf_io *io, size_t len);
void uwdf_remote_copy_out(struct uwdf_io *io, const char *buf, size_t len);

/* Finished ops waiting for reap(), in completion order. */
struct uwdf_remote_done {
    struct uwdf_io *head, *tail;
};

/* io finished with res (bytes or -errno). */
void uwdf_remote_done_push(struct uwdf_remote_done *d, struct uwdf_io *io, int64_t res);
/* Move up to max finished ops into done[]; how many. */
int uwdf_remote_done_pop(struct uwdf_remote_done *d, struct uwdf_io **done, int max);

/* The engine's wake-up eventfd: wake it (any thread), or consume its count. */
void uwdf_remote_eventfd_signal(int fd);
void uwdf_remote_eventfd_drain(int fd);

/* What every remote engine's state (e->be) starts with. */
struct uwdf_remote_engine {
    int wake_fd; /* eventfd: wake() (rbd: librbd's completions too) */
    struct uwdf_remote_done done;
    struct uwdf_remote_cmd_cache cmds;
};

/* Set up / tear down re (its eventfd). 0 or -errno. */
int uwdf_remote_engine_init(struct uwdf_remote_engine *re);
void uwdf_remote_engine_fini(struct uwdf_remote_engine *re);

/* The command io is carried by (in its be_area), NULL when none. */
static inline struct uwdf_remote_cmd **uwdf_remote_io_cmd(struct uwdf_io *io)
{
    _Static_assert(sizeof(struct uwdf_remote_cmd *) <= sizeof(io->be_area), "be_area holds the command");
    return (struct uwdf_remote_cmd **)(void *)io->be_area;
}

/* io completes with res (bytes or -errno): to the done list, no command. */
void uwdf_remote_complete(struct uwdf_remote_engine *re, struct uwdf_io *io, int64_t res);
/* Every request of c answered: its op (unless orphaned) completes with
 * -c->err, or its bytes (a read's copied out of the bounce first). */
void uwdf_remote_cmd_complete(struct uwdf_remote_engine *re, struct uwdf_remote_cmd *c);

/* A command of size bytes for io, with room for len bytes of data (a
 * write's gathered into it), io and len set, pending 1 (the issuer's hold),
 * no error; NULL when out of memory. */
void *uwdf_remote_cmd_start(struct uwdf_remote_engine *re, struct uwdf_io *io, size_t size, size_t len);
/* The start of a read or write on a disk of disk_size bytes: its command
 * (as uwdf_remote_cmd_start), or NULL with *ret, 0 when it completed by
 * the block-device rules (uwdf_remote_rw_clip) and -errno when refused. */
void *uwdf_remote_rw_start(struct uwdf_remote_engine *re, struct uwdf_io *io, size_t size, uint64_t disk_size,
                           bool read_only, int *ret);
/* Whether a write asks for write-through: the target's, or the request's
 * (RWF_DSYNC/RWF_SYNC). */
bool uwdf_remote_wants_write_through(const struct uwdf_io *io, bool target_write_through);

/* Ops table entries both engines share (e->be starts with struct
 * uwdf_remote_engine). flush: nothing is ever staged (libnbd and librbd
 * take each request as it is issued). cancel: the requests stay with the
 * library, the bounce buffer with them; the op completes now with
 * -ECANCELED, or -ENOENT when it is answered already. wake: the eventfd. */
void uwdf_remote_flush_staged(struct uwdf_engine *e);
int uwdf_remote_cancel(struct uwdf_engine *e, struct uwdf_io *io);
void uwdf_remote_wake(struct uwdf_engine *e);
/* ppoll's timeout for reap's timeout_ns (-1: none), 0 when finished ops
 * wait already; NULL for no limit. */
struct timespec *uwdf_remote_poll_timeout(const struct uwdf_remote_engine *re, int64_t timeout_ns,
                                          struct timespec *ts);

/* snprintf into a reason buffer the opener logs. */
void uwdf_remote_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
