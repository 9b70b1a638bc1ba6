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

/* snprintf into a reason buffer the opener logs. */
void uwdf_remote_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
