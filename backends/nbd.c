/* NBD engine: I/O targets on NBD exports through libnbd's asynchronous API.
 *
 * Connections and engines. An NBD target's opener connects (blocking, on
 * its own thread, so a bad name fails WdfIoTargetOpen with the reason) one
 * connection, or N when the URI asks for uwdf-connections=N and the server
 * allows multi-conn. The export is then attached to one engine of the nbd
 * pool (lib/engine_pool.c: the engine serving the fewest targets) and all
 * its connections belong to that engine's thread from then on: the thread
 * polls every attached connection's socket (direction from
 * nbd_aio_get_direction, re-read before each poll) plus its own wake-up
 * eventfd, issues commands and runs libnbd's completion callbacks. No
 * thread per request or per connection. An op goes to one connection
 * (round robin over the live ones); one larger than the server's maximum
 * request is split into several commands.
 *
 * Buffers. Every read and write goes through a bounce buffer owned by the
 * command (struct nbd_cmd): NBD cannot cancel a command, so a request that
 * times out or is cancelled completes at once while the server may still
 * answer later; libnbd then writes into, or had not finished sending from,
 * the bounce buffer, never the caller's. The bounce also gathers scattered
 * buffers (iovecs, MDL chains) into the one buffer a libnbd command takes.
 * Commands and their buffers are recycled on the engine thread, so steady
 * state allocates nothing; a cancelled command's buffer returns when libnbd
 * lets go of it (its .free callback, also from nbd_close).
 *
 * Statuses. Ops past the export's end behave as on a block device (a read
 * at or past the end reads 0 bytes, one crossing it is short; a write there
 * fails with ENOSPC or is short). Server errors come back as errno (NBD's
 * EPERM, a write to a read-only export, becomes EROFS). A connection that
 * dies completes every op on it with ENOTCONN
 * (STATUS_CONNECTION_DISCONNECTED), and so does every later op on the
 * export until the target is closed and opened again (which reconnects).
 * Write-through (per request or per target) is NBD FUA; a server without
 * FUA gets a flush after the write, and one with neither a plain write.
 * Flush, trim and zero fail with EOPNOTSUPP when the server lacks them. */
#include "config.h"
#include "backend.h"
#include "remote.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NBD_MAX_CONNECTIONS 16
/* The largest command sent when the server states no maximum: libnbd
 * refuses more than 64 MiB per read or write. */
#define NBD_DEFAULT_MAX_REQUEST (32u << 20)
/* Trim and zero lengths are 32-bit in the protocol. */
#define NBD_MAX_RANGE_CHUNK (1u << 30)
#define NBD_NS_PER_SEC 1000000000LL
#define NBD_URI_OPTION "uwdf-connections="

struct nbd_engine;

struct nbd_conn {
    struct nbd_handle *h;
    bool dead; /* engine thread: the connection is gone */
};

struct uwdf_nbd_export {
    struct nbd_conn conns[NBD_MAX_CONNECTIONS];
    unsigned nconns;
    unsigned next; /* round robin */
    struct nbd_engine *engine; /* while attached */
    uint64_t size;
    uint32_t max_request;
    bool can_fua, can_flush, can_trim, can_zero, read_only;
    bool write_through;
    bool told_lost;
    char *uri; /* for messages */
};

/* One op in libnbd's hands: one or more commands on one connection. */
struct nbd_cmd {
    struct uwdf_remote_cmd base; /* first: bounce buffer, idle link */
    struct uwdf_io *io; /* NULL once completed or cancelled (orphaned) */
    struct nbd_engine *eng;
    struct uwdf_nbd_export *x;
    struct nbd_conn *conn;
    size_t len;     /* bytes of the op (after clipping at the export's end) */
    unsigned refs;  /* commands whose .free has not run, plus the issuer's hold */
    unsigned pending; /* commands whose completion has not run, plus the hold */
    unsigned frees; /* .free calls seen (tells whether a failed issue freed) */
    int err;
    bool flush_after; /* write-through without FUA: a flush follows */
    struct nbd_cmd *next;
};

struct nbd_engine {
    int wake_fd;
    struct uwdf_nbd_export **exports;
    unsigned nexports, exports_cap;
    struct pollfd *pfds;
    struct nbd_conn **pconns;
    unsigned pfds_cap;
    struct uwdf_remote_done done;
    struct nbd_cmd *flush_head; /* write-through writes waiting for their flush */
    struct uwdf_remote_cmd_cache cmds;
};

static inline struct nbd_cmd **io_cmd(struct uwdf_io *io)
{
    _Static_assert(sizeof(struct nbd_cmd *) <= sizeof(io->be_area), "be_area holds the command");
    return (struct nbd_cmd **)(void *)io->be_area;
}

/* ---- connecting (the opener's thread) ---- */

/* uri without our own query parameter, and the connection count it asked
 * for (1 if none). NULL on a bad count. */
static char *nbd_uri_strip(const char *uri, unsigned *connections, char *why, size_t why_len)
{
    char *copy = strdup(uri);
    *connections = 1;
    if (!copy)
        return NULL;
    char *q = strchr(copy, '?');
    if (!q)
        return copy;
    char *out = q; /* rebuild the query in place without our parameter */
    char *p = q + 1;
    bool first = true;
    while (*p) {
        char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (strncmp(p, NBD_URI_OPTION, strlen(NBD_URI_OPTION)) == 0) {
            char *end;
            unsigned long v = strtoul(p + strlen(NBD_URI_OPTION), &end, 10);
            if (end != p + n || v < 1 || v > NBD_MAX_CONNECTIONS) {
                uwdf_remote_why(why, why_len, "uwdf-connections must be 1..%u", NBD_MAX_CONNECTIONS);
                free(copy);
                return NULL;
            }
            *connections = (unsigned)v;
        } else {
            *out++ = first ? '?' : '&';
            memmove(out, p, n);
            out += n;
            first = false;
        }
        p += n + (amp ? 1 : 0);
    }
    *out = '\0';
    return copy;
}

static struct nbd_handle *nbd_connect_one(const char *uri, char *why, size_t why_len, int *err)
{
    struct nbd_handle *h = nbd_create();
    if (!h) {
        *err = nbd_get_errno() ? nbd_get_errno() : ENOMEM;
        uwdf_remote_why(why, why_len, "%s", nbd_get_error());
        return NULL;
    }
    /* Reads land in a bounce buffer that is copied only on success. */
    nbd_set_pread_initialize(h, false);
    nbd_set_handle_name(h, "uwdf");
    if (nbd_connect_uri(h, uri) == -1) {
        *err = nbd_get_errno() ? nbd_get_errno() : EIO;
        uwdf_remote_why(why, why_len, "%s", nbd_get_error());
        nbd_close(h);
        return NULL;
    }
    return h;
}

void uwdf_nbd_export_free(struct uwdf_nbd_export *x)
{
    if (!x)
        return;
    for (unsigned i = 0; i < x->nconns; i++)
        nbd_close(x->conns[i].h);
    free(x->uri);
    free(x);
}

int uwdf_nbd_connect(const char *uri, bool write_through, struct uwdf_nbd_export **out, struct uwdf_nbd_info *info,
                     char *why, size_t why_len)
{
    unsigned want;
    int err = 0;
    why[0] = '\0';
    char *bare = nbd_uri_strip(uri, &want, why, why_len);
    if (!bare)
        return why[0] ? -ERANGE : -ENOMEM;
    struct uwdf_nbd_export *x = calloc(1, sizeof(*x));
    if (!x || !(x->uri = strdup(bare))) {
        free(x);
        free(bare);
        return -ENOMEM;
    }
    x->conns[0].h = nbd_connect_one(bare, why, why_len, &err);
    if (!x->conns[0].h) {
        free(bare);
        uwdf_nbd_export_free(x);
        return -err;
    }
    x->nconns = 1;
    struct nbd_handle *h = x->conns[0].h;
    int64_t size = nbd_get_size(h);
    if (size < 0) {
        uwdf_remote_why(why, why_len, "%s", nbd_get_error());
        free(bare);
        uwdf_nbd_export_free(x);
        return -EIO;
    }
    x->size = (uint64_t)size;
    x->read_only = nbd_is_read_only(h) == 1;
    x->can_fua = nbd_can_fua(h) == 1;
    x->can_flush = nbd_can_flush(h) == 1;
    x->can_trim = nbd_can_trim(h) == 1;
    x->can_zero = nbd_can_zero(h) == 1;
    x->write_through = write_through;
    int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
    int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    x->max_request = max > 0 && max < NBD_DEFAULT_MAX_REQUEST ? (uint32_t)max : NBD_DEFAULT_MAX_REQUEST;
    if (min > 1 && x->max_request % (uint32_t)min)
        x->max_request -= x->max_request % (uint32_t)min;
    bool multi = nbd_can_multi_conn(h) == 1;
    if (want > 1 && !multi) {
        uwdf_remote_why(why, why_len, "the server does not allow multi-conn: using 1 connection, not %u", want);
        want = 1;
    }
    for (unsigned i = 1; i < want; i++) {
        x->conns[i].h = nbd_connect_one(bare, why, why_len, &err);
        if (!x->conns[i].h) {
            free(bare);
            uwdf_nbd_export_free(x);
            return -err;
        }
        x->nconns++;
    }
    free(bare);
    info->size = x->size;
    info->min_block = min > 0 ? (uint32_t)min : 0;
    info->preferred_block = pref > 0 ? (uint32_t)pref : 0;
    info->max_block = max > 0 ? (uint32_t)max : 0;
    info->read_only = x->read_only;
    info->can_flush = x->can_flush;
    info->can_fua = x->can_fua;
    info->can_trim = x->can_trim;
    info->can_zero = x->can_zero;
    info->multi_conn = multi;
    info->connections = x->nconns;
    *out = x;
    return 0;
}

/* ---- commands (engine thread) ---- */

static void nbd_done_push(struct nbd_engine *st, struct uwdf_io *io, int64_t res)
{
    *io_cmd(io) = NULL;
    uwdf_remote_done_push(&st->done, io, res);
}

static struct nbd_cmd *nbd_cmd_get(struct nbd_engine *st, size_t len)
{
    struct nbd_cmd *c = uwdf_remote_cmd_get(&st->cmds, sizeof(*c), len);
    if (!c)
        return NULL;
    c->eng = st;
    c->io = NULL;
    c->x = NULL;
    c->conn = NULL;
    c->len = len;
    c->refs = c->pending = 1; /* the issuer's hold */
    c->frees = 0;
    c->err = 0;
    c->flush_after = false;
    c->next = NULL;
    return c;
}

static void nbd_cmd_put(struct nbd_cmd *c)
{
    uwdf_remote_cmd_put(&c->eng->cmds, &c->base);
}

static void nbd_conn_lost(struct uwdf_nbd_export *x, struct nbd_conn *conn, const char *what)
{
    if (conn->dead)
        return;
    conn->dead = true;
    if (x && !x->told_lost) {
        x->told_lost = true;
        uwdf_log("%s: NBD connection lost (%s); its requests complete with "
                 "STATUS_CONNECTION_DISCONNECTED until the target is reopened", x->uri, what);
    }
}

/* errno of a failed command as the target reports it. */
static int nbd_map_error(struct nbd_cmd *c, int err)
{
    if (c->conn->dead || err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE)
        return ENOTCONN;
    if (err == EPERM && c->io && c->io->op != UWDF_OP_READ)
        return EROFS; /* NBD's answer to a write on a read-only export */
    return err ? err : EIO;
}

/* Every command of c answered: the op completes (unless it was cancelled
 * meanwhile) or its flush goes next. */
static void nbd_cmd_finish(struct nbd_cmd *c)
{
    struct uwdf_io *io = c->io;
    if (!io)
        return;
    if (!c->err && c->flush_after) {
        /* libnbd's lock is held here: the flush is issued from reap. */
        c->flush_after = false;
        c->pending++; /* held until nbd_issue_flushes has issued it */
        c->refs++;
        c->next = c->eng->flush_head;
        c->eng->flush_head = c;
        return;
    }
    c->io = NULL;
    if (c->err) {
        nbd_done_push(c->eng, io, -(int64_t)nbd_map_error(c, c->err));
        return;
    }
    if (io->op == UWDF_OP_READ)
        uwdf_remote_copy_out(io, c->base.b.buf, c->len);
    nbd_done_push(c->eng, io, io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE ? (int64_t)c->len : 0);
}

static int nbd_cmd_completed(void *user_data, int *error)
{
    struct nbd_cmd *c = user_data;
    if (*error && !c->err)
        c->err = *error;
    if (--c->pending == 0)
        nbd_cmd_finish(c);
    return 1; /* retire it */
}

static void nbd_cmd_freed(void *user_data)
{
    struct nbd_cmd *c = user_data;
    c->frees++;
    if (--c->refs > 0)
        return;
    if (c->io) {
        /* nbd_close dropped commands whose completion never ran. */
        c->err = ENOTCONN;
        c->pending = 0;
        c->flush_after = false;
        nbd_cmd_finish(c);
    }
    nbd_cmd_put(c);
}

enum nbd_kind { NBD_PREAD, NBD_PWRITE, NBD_FLUSH, NBD_TRIM, NBD_ZERO };

/* One command of c. False if libnbd refused it (c->err set). */
static bool nbd_issue(struct nbd_cmd *c, enum nbd_kind kind, char *buf, uint64_t len, uint64_t off, uint32_t flags)
{
    struct nbd_handle *h = c->conn->h;
    nbd_completion_callback cb = { .callback = nbd_cmd_completed, .user_data = c, .free = nbd_cmd_freed };
    unsigned frees = c->frees;
    int64_t r;
    c->refs++;
    c->pending++;
    switch (kind) {
    case NBD_PREAD:
        r = nbd_aio_pread(h, buf, len, off, cb, 0);
        break;
    case NBD_PWRITE:
        r = nbd_aio_pwrite(h, buf, len, off, cb, flags);
        break;
    case NBD_FLUSH:
        r = nbd_aio_flush(h, cb, 0);
        break;
    case NBD_TRIM:
        r = nbd_aio_trim(h, len, off, cb, 0);
        break;
    default:
        r = nbd_aio_zero(h, len, off, cb, 0);
        break;
    }
    if (r != -1)
        return true;
    int err = nbd_get_errno();
    if (nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
        nbd_conn_lost(c->x, c->conn, nbd_get_error());
    if (!c->err)
        c->err = err ? err : EIO;
    c->pending--;
    if (c->frees == frees)
        c->refs--; /* libnbd did not call .free for the refused command */
    return false;
}

/* Drop the issuer's hold on c: it completes here if everything it sent
 * has already been answered (or refused). */
static void nbd_cmd_release(struct nbd_cmd *c)
{
    if (--c->pending == 0)
        nbd_cmd_finish(c);
    if (--c->refs == 0)
        nbd_cmd_put(c);
}

static struct nbd_conn *nbd_pick(struct uwdf_nbd_export *x)
{
    for (unsigned i = 0; i < x->nconns; i++) {
        struct nbd_conn *conn = &x->conns[x->next++ % x->nconns];
        if (!conn->dead)
            return conn;
    }
    return NULL;
}

/* ---- ops table ---- */

static int nbd_probe(void)
{
    return 0;
}

static int nbd_open(struct uwdf_engine *e)
{
    struct nbd_engine *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->pfds = calloc(1, sizeof(*st->pfds));
    st->pconns = calloc(1, sizeof(*st->pconns));
    st->pfds_cap = 1; /* the wake-up eventfd */
    st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st->wake_fd < 0 || !st->pfds || !st->pconns) {
        int err = st->wake_fd < 0 ? errno : ENOMEM;
        if (st->wake_fd >= 0)
            close(st->wake_fd);
        free(st->pfds);
        free(st->pconns);
        free(st);
        return -err;
    }
    e->be = st;
    return 0;
}

static void nbd_close_engine(struct uwdf_engine *e)
{
    struct nbd_engine *st = e->be;
    uwdf_remote_cmd_cache_free(&st->cmds);
    close(st->wake_fd);
    free(st->exports);
    free(st->pfds);
    free(st->pconns);
    free(st);
    e->be = NULL;
}

static int nbd_queue_rw(struct nbd_engine *st, struct uwdf_nbd_export *x, struct uwdf_io *io)
{
    bool write = io->op == UWDF_OP_WRITE;
    size_t len;
    int64_t res;
    if (io->iovcnt < 0)
        return -EINVAL;
    if (!uwdf_remote_rw_clip(io, x->size, x->read_only, &len, &res)) {
        nbd_done_push(st, io, res);
        return 0;
    }
    struct nbd_conn *conn = nbd_pick(x);
    if (!conn) {
        nbd_done_push(st, io, -ENOTCONN);
        return 0;
    }
    struct nbd_cmd *c = nbd_cmd_get(st, len);
    if (!c)
        return -ENOMEM;
    c->io = io;
    c->x = x;
    c->conn = conn;
    *io_cmd(io) = c;
    uint32_t flags = 0;
    if (write) {
        uwdf_remote_copy_in(c->base.b.buf, io, len);
        if (x->write_through || (io->rw_flags & (RWF_DSYNC | RWF_SYNC))) {
            if (x->can_fua)
                flags = LIBNBD_CMD_FLAG_FUA;
            else
                c->flush_after = x->can_flush;
        }
    }
    for (size_t done = 0; done < len;) {
        size_t n = len - done < x->max_request ? len - done : x->max_request;
        if (!nbd_issue(c, write ? NBD_PWRITE : NBD_PREAD, c->base.b.buf + done, n, io->offset + done, flags))
            break;
        done += n;
    }
    nbd_cmd_release(c);
    return 0;
}

static int nbd_queue_other(struct nbd_engine *st, struct uwdf_nbd_export *x, struct uwdf_io *io)
{
    enum nbd_kind kind;
    bool can;
    switch (io->op) {
    case UWDF_OP_FSYNC:
    case UWDF_OP_FDATASYNC:
        kind = NBD_FLUSH;
        can = x->can_flush;
        break;
    case UWDF_OP_TRIM:
        kind = NBD_TRIM;
        can = x->can_trim;
        break;
    case UWDF_OP_ZERO:
        kind = NBD_ZERO;
        can = x->can_zero;
        break;
    default:
        return -EINVAL;
    }
    if (kind != NBD_FLUSH && x->read_only) {
        nbd_done_push(st, io, -EROFS);
        return 0;
    }
    if (!can) {
        nbd_done_push(st, io, -EOPNOTSUPP);
        return 0;
    }
    struct nbd_conn *conn = nbd_pick(x);
    if (!conn) {
        nbd_done_push(st, io, -ENOTCONN);
        return 0;
    }
    struct nbd_cmd *c = nbd_cmd_get(st, 0);
    if (!c)
        return -ENOMEM;
    c->io = io;
    c->x = x;
    c->conn = conn;
    *io_cmd(io) = c;
    if (kind == NBD_FLUSH) {
        nbd_issue(c, kind, NULL, 0, 0, 0);
    } else {
        bool ok = true;
        for (int i = 0; i < io->iovcnt && ok; i++) {
            uint64_t off = io->ranges[i].offset, left = io->ranges[i].length;
            while (left > 0 && ok) {
                uint64_t n = left < NBD_MAX_RANGE_CHUNK ? left : NBD_MAX_RANGE_CHUNK;
                ok = nbd_issue(c, kind, NULL, n, off, 0);
                off += n;
                left -= n;
            }
        }
    }
    nbd_cmd_release(c);
    return 0;
}

static int nbd_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct nbd_engine *st = e->be;
    struct uwdf_nbd_export *x = io->file ? io->file->be : NULL;
    if (!x)
        return -EBADF;
    *io_cmd(io) = NULL;
    if (io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE)
        return nbd_queue_rw(st, x, io);
    return nbd_queue_other(st, x, io);
}

static void nbd_flush_staged(struct uwdf_engine *e)
{
    /* libnbd sends each command as it is issued (or queues it inside the
     * handle until the socket takes it): nothing is staged here. */
}

static int nbd_cancel(struct uwdf_engine *e, struct uwdf_io *io)
{
    struct nbd_cmd *c = *io_cmd(io);
    if (!c || c->io != io)
        return -ENOENT; /* answered already: on the done list */
    /* The command stays with libnbd (and its bounce buffer with it); the
     * op is over for its owner now. */
    c->io = NULL;
    nbd_done_push(e->be, io, -ECANCELED);
    return 0;
}

/* Issue the flushes that follow write-through writes on servers without
 * FUA (they cannot be issued from the completion callback). */
static void nbd_issue_flushes(struct nbd_engine *st)
{
    while (st->flush_head) {
        struct nbd_cmd *c = st->flush_head;
        st->flush_head = c->next;
        c->next = NULL;
        if (c->io)
            nbd_issue(c, NBD_FLUSH, NULL, 0, 0, 0);
        nbd_cmd_release(c); /* the hold nbd_cmd_finish took for it */
    }
}

static int nbd_poll_setup(struct nbd_engine *st)
{
    unsigned n = 1;
    st->pfds[0].fd = st->wake_fd;
    st->pfds[0].events = POLLIN;
    st->pfds[0].revents = 0;
    for (unsigned i = 0; i < st->nexports; i++) {
        struct uwdf_nbd_export *x = st->exports[i];
        for (unsigned j = 0; j < x->nconns; j++) {
            struct nbd_conn *conn = &x->conns[j];
            if (conn->dead)
                continue;
            int fd = nbd_aio_get_fd(conn->h);
            if (fd < 0) {
                nbd_conn_lost(x, conn, nbd_get_error());
                continue;
            }
            unsigned dir = nbd_aio_get_direction(conn->h);
            st->pfds[n].fd = fd;
            st->pfds[n].events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                         ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
            st->pfds[n].revents = 0;
            st->pconns[n] = conn;
            n++;
        }
    }
    return (int)n;
}

static struct uwdf_nbd_export *nbd_export_of(struct nbd_engine *st, const struct nbd_conn *conn)
{
    for (unsigned i = 0; i < st->nexports; i++) {
        struct uwdf_nbd_export *x = st->exports[i];
        if (conn >= x->conns && conn < x->conns + x->nconns)
            return x;
    }
    return NULL;
}

static void nbd_notify(struct nbd_engine *st, struct nbd_conn *conn, short revents)
{
    int r = 0;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        r = nbd_aio_notify_read(conn->h);
    if (r == 0 && (revents & POLLOUT))
        r = nbd_aio_notify_write(conn->h);
    if (r == -1 || nbd_aio_is_dead(conn->h) || nbd_aio_is_closed(conn->h))
        nbd_conn_lost(nbd_export_of(st, conn), conn, r == -1 ? nbd_get_error() : "closed by the server");
}

static int nbd_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct nbd_engine *st = e->be;
    if (max <= 0)
        return -EINVAL;
    nbd_issue_flushes(st);
    int n = nbd_poll_setup(st);
    struct timespec ts, *tsp = NULL;
    if (st->done.head)
        timeout_ns = 0;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / NBD_NS_PER_SEC;
        ts.tv_nsec = timeout_ns % NBD_NS_PER_SEC;
        tsp = &ts;
    }
    int ready = ppoll(st->pfds, (nfds_t)n, tsp, NULL);
    if (ready < 0 && errno != EINTR)
        return -errno;
    if (ready > 0) {
        if (st->pfds[0].revents & POLLIN)
            uwdf_remote_eventfd_drain(st->wake_fd);
        for (int i = 1; i < n; i++)
            if (st->pfds[i].revents)
                nbd_notify(st, st->pconns[i], st->pfds[i].revents);
        nbd_issue_flushes(st);
    }
    return uwdf_remote_done_pop(&st->done, done, max);
}

static void nbd_wake(struct uwdf_engine *e)
{
    struct nbd_engine *st = e->be;
    uwdf_remote_eventfd_signal(st->wake_fd);
}

static int nbd_attach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct nbd_engine *st = e->be;
    struct uwdf_nbd_export *x = f->be;
    if (!x)
        return -EINVAL;
    if (st->nexports == st->exports_cap) {
        unsigned cap = st->exports_cap ? st->exports_cap * 2 : 8;
        struct uwdf_nbd_export **grown = realloc(st->exports, sizeof(*grown) * cap);
        if (!grown)
            return -ENOMEM;
        st->exports = grown;
        st->exports_cap = cap;
    }
    unsigned need = 1;
    for (unsigned i = 0; i < st->nexports; i++)
        need += st->exports[i]->nconns;
    need += x->nconns;
    if (need > st->pfds_cap) {
        unsigned cap = need * 2;
        struct pollfd *pfds = realloc(st->pfds, sizeof(*pfds) * cap);
        if (!pfds)
            return -ENOMEM;
        st->pfds = pfds;
        struct nbd_conn **pconns = realloc(st->pconns, sizeof(*pconns) * cap);
        if (!pconns)
            return -ENOMEM;
        st->pconns = pconns;
        st->pfds_cap = cap;
    }
    st->exports[st->nexports++] = x;
    x->engine = st;
    return 0;
}

static void nbd_detach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct nbd_engine *st = e->be;
    struct uwdf_nbd_export *x = f->be;
    for (unsigned i = 0; i < st->nexports; i++) {
        if (st->exports[i] == x) {
            st->exports[i] = st->exports[--st->nexports];
            break;
        }
    }
    /* Commands cancelled earlier may still be with libnbd: nbd_close runs
     * their .free, which recycles them into this engine's cache. */
    uwdf_nbd_export_free(x);
    f->be = NULL;
}

const struct uwdf_backend_ops uwdf_backend_nbd = {
    .name = "nbd",
    .caps = UWDF_BE_CAP_CANCEL | UWDF_BE_CAP_NO_FD,
    .probe = nbd_probe,
    .open = nbd_open,
    .close = nbd_close_engine,
    .queue = nbd_queue,
    .flush = nbd_flush_staged,
    .cancel = nbd_cancel,
    .reap = nbd_reap,
    .wake = nbd_wake,
    .attach_file = nbd_attach_file,
    .detach_file = nbd_detach_file,
};
