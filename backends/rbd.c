/* RBD engine: I/O targets on Ceph RBD images through librbd's asynchronous
 * API.
 *
 * Names. "rbd:" followed by qemu's syntax,
 * pool[/namespace]/image[@snapshot][:id=USER][:conf=PATH][:KEY=VALUE]...:
 * id is the client (librados' default, admin, if absent), conf the
 * configuration file (librados' default search, $CEPH_CONF first, if
 * absent), every other KEY=VALUE a configuration option given to
 * rados_conf_set (rados_osd_op_timeout=5, rbd_cache=false...). A backslash
 * escapes the next character. A snapshot opens read-only.
 *
 * Connections. The opener's thread parses the name, connects (or shares a
 * connection) and opens the image, so a bad name fails WdfIoTargetOpen with
 * the reason. One rados_t (a cluster connection, with librados' many
 * threads) serves every image opened with the same configuration file, user
 * and options; it is refcounted and shut down with its last image.
 *
 * Engines and completions. An open image is attached to one engine of the
 * rbd pool (lib/engine_pool.c) and used from that engine's thread only:
 * it issues rbd_aio_* calls, and librbd's completions come back through
 * rbd_set_image_notification on the engine's one eventfd (which also serves
 * wake()); reap() waits for it and drains each image with
 * rbd_poll_io_events. The eventfd is watched edge-triggered through an
 * epoll set and never read: every write of it (each completion, each
 * wake()) wakes the next wait once, so no read can swallow a wake-up, and
 * a QD1 round trip costs the engine one wait, no read. No completion
 * callback runs in librbd's threads and no thread per request.
 *
 * Buffers, timeouts and cancel. librbd cannot cancel a request. Every read
 * and write goes through a bounce buffer owned by the command (struct
 * rbd_cmd), so a request that times out or is cancelled completes at once
 * with its status and librbd's late answer lands in the bounce, never in
 * the caller's buffer. Commands and bounces are recycled on the engine
 * thread. A request the cluster never answers would hold its command (and
 * the target's close, which waits for librbd to let go) forever, so the
 * connection always has an OSD operation timeout: rados_osd_op_timeout from
 * the configuration or the name, or UWDF_RBD_OSD_OP_TIMEOUT seconds when it
 * is 0 (Ceph's default: wait forever). An op that runs into it fails with
 * ETIMEDOUT (STATUS_IO_TIMEOUT), whether the OSD stopped or died.
 *
 * Statuses. Ops past the image's end behave as on a block device (a read
 * at or past the end reads 0 bytes, one crossing it is short; a write there
 * fails with ENOSPC or is short). Writes, discards and zeroing on a
 * read-only image (a snapshot) fail with EROFS; a flush there succeeds
 * (nothing to flush). Write-through (per request or per target) is the
 * write followed by rbd_aio_flush: librbd has no per-write FUA; with
 * rbd_cache off the flush finds nothing to write back, since librbd then
 * acknowledges a write only once the OSDs have it.
 *
 * Sizes. A read or write is one librbd request of at most
 * UWDF_REMOTE_MAX_BYTES (the bound on its bounce buffer); the core runs a
 * larger one as pieces, one after the other, so a failing piece reports
 * the bytes before it. Scattered buffers of any length are gathered. */
#include "config.h"
#include "backend.h"
#include "remote.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Seconds an OSD operation may take when the configuration sets no limit:
 * above the OSD heartbeat grace (20 s), so that a failover is not taken for
 * a timeout. */
#define UWDF_RBD_OSD_OP_TIMEOUT "30"
#define RBD_MAX_OPTIONS 32
#define RBD_POLL_BATCH 64

/* One cluster connection, shared by the images opened with the same key
 * (configuration file, user, options). */
struct rbd_cluster {
    struct rbd_cluster *next;
    char *key;
    rados_t rados;
    unsigned refs;
};

static pthread_mutex_t clusters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbd_cluster *clusters;

struct rbd_engine;

struct uwdf_rbd_image {
    struct rbd_cluster *cluster;
    rados_ioctx_t ioctx;
    rbd_image_t img;
    struct rbd_engine *engine; /* while attached */
    uint64_t size;
    bool read_only, write_through;
    unsigned inflight; /* engine thread: librbd completions not yet polled */
};

/* One op in librbd's hands: one or more librbd requests. */
struct rbd_cmd {
    struct uwdf_remote_cmd base; /* first: bounce, idle link, op, pending, error */
    struct rbd_engine *eng;
    struct uwdf_rbd_image *x;
};

struct rbd_engine {
    struct uwdf_remote_engine re; /* first; its eventfd also gets every attached image's completions */
    struct uwdf_rbd_image **images;
    unsigned nimages, images_cap;
    int ep_fd; /* epoll set: re.wake_fd, edge-triggered */
};

/* ---- names (the opener's thread) ---- */

struct rbd_spec {
    char *copy;
    const char *pool, *ns, *image, *snap, *id, *conf;
    const char *keys[RBD_MAX_OPTIONS], *values[RBD_MAX_OPTIONS];
    unsigned nopts;
};

/* Split s at its first unescaped sep: s ends there, the rest is returned
 * (NULL if there is no such sep). */
static char *rbd_split(char *s, char sep)
{
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == sep) {
            *p = '\0';
            return p + 1;
        }
    }
    return NULL;
}

static void rbd_unescape(char *s)
{
    char *out = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        *out++ = *p;
    }
    *out = '\0';
}

static int rbd_parse(const char *text, struct rbd_spec *sp, char *why, size_t why_len)
{
    memset(sp, 0, sizeof(*sp));
    sp->copy = strdup(text);
    if (!sp->copy)
        return -ENOMEM;
    char *first = sp->copy;
    char *rest = rbd_split(first, ':');
    char *snap = rbd_split(first, '@');
    char *second = rbd_split(first, '/');
    char *third = second ? rbd_split(second, '/') : NULL;
    if (!second || (third && rbd_split(third, '/'))) {
        uwdf_remote_why(why, why_len, "expected rbd:pool/image or rbd:pool/namespace/image");
        return -EINVAL;
    }
    sp->pool = first;
    sp->ns = third ? second : NULL;
    sp->image = third ? third : second;
    sp->snap = snap;
    while (rest) {
        char *opt = rest;
        rest = rbd_split(opt, ':');
        char *value = rbd_split(opt, '=');
        if (!value || !*opt) {
            uwdf_remote_why(why, why_len, "option '%s' is not KEY=VALUE", opt);
            return -EINVAL;
        }
        rbd_unescape(opt);
        rbd_unescape(value);
        if (strcmp(opt, "id") == 0) {
            sp->id = value;
        } else if (strcmp(opt, "conf") == 0) {
            sp->conf = value;
        } else if (sp->nopts == RBD_MAX_OPTIONS) {
            uwdf_remote_why(why, why_len, "more than %d options", RBD_MAX_OPTIONS);
            return -EINVAL;
        } else {
            sp->keys[sp->nopts] = opt;
            sp->values[sp->nopts++] = value;
        }
    }
    rbd_unescape(first);
    if (second)
        rbd_unescape(second);
    if (third)
        rbd_unescape(third);
    if (snap)
        rbd_unescape(snap);
    if (!*sp->pool || !*sp->image || (sp->ns && !*sp->ns) || (sp->snap && !*sp->snap) ||
        (sp->id && !*sp->id) || (sp->conf && !*sp->conf)) {
        uwdf_remote_why(why, why_len, "an empty pool, namespace, image, snapshot, id or conf");
        return -EINVAL;
    }
    return 0;
}

/* The key connections are shared by: conf, id and options, each ended by
 * a character no name holds. */
static char *rbd_cluster_key(const struct rbd_spec *sp)
{
    size_t n = strlen(sp->conf ? sp->conf : "") + strlen(sp->id ? sp->id : "") + 3;
    for (unsigned i = 0; i < sp->nopts; i++)
        n += strlen(sp->keys[i]) + strlen(sp->values[i]) + 2;
    char *key = malloc(n);
    if (!key)
        return NULL;
    char *p = key + sprintf(key, "%s\n%s\n", sp->conf ? sp->conf : "", sp->id ? sp->id : "");
    for (unsigned i = 0; i < sp->nopts; i++)
        p += sprintf(p, "%s=%s\n", sp->keys[i], sp->values[i]);
    return key;
}

/* ---- cluster connections (any opener's thread; clusters_lock) ---- */

static int rbd_connect(const struct rbd_spec *sp, struct rbd_cluster *cl, enum uwdf_rbd_stage *stage, char *why,
                       size_t why_len)
{
    rados_t r;
    int err = rados_create(&r, sp->id);
    if (err < 0) {
        *stage = UWDF_RBD_STAGE_CONNECT;
        uwdf_remote_why(why, why_len, "rados_create: %s", strerror(-err));
        return err;
    }
    /* Without conf=, librados' search ($CEPH_CONF, /etc/ceph/ceph.conf...)
     * may find nothing: then the options must say where the monitors are. */
    err = rados_conf_read_file(r, sp->conf);
    if (err < 0 && sp->conf) {
        *stage = UWDF_RBD_STAGE_CONF;
        uwdf_remote_why(why, why_len, "cannot read the configuration %s: %s", sp->conf, strerror(-err));
        goto fail;
    }
    (void)rados_conf_parse_env(r, NULL); /* CEPH_ARGS, as the ceph tools honour it */
    for (unsigned i = 0; i < sp->nopts; i++) {
        err = rados_conf_set(r, sp->keys[i], sp->values[i]);
        if (err < 0) {
            *stage = UWDF_RBD_STAGE_NAME;
            uwdf_remote_why(why, why_len, "%s option '%s'%s%s", err == -ENOENT ? "unknown" : "refused",
                            sp->keys[i], err == -ENOENT ? "" : ": ", err == -ENOENT ? "" : strerror(-err));
            goto fail;
        }
    }
    char buf[64];
    if (rados_conf_get(r, "rados_osd_op_timeout", buf, sizeof(buf)) != 0 || !(strtod(buf, NULL) > 0)) {
        err = rados_conf_set(r, "rados_osd_op_timeout", UWDF_RBD_OSD_OP_TIMEOUT);
        if (err < 0) {
            *stage = UWDF_RBD_STAGE_CONNECT;
            uwdf_remote_why(why, why_len, "cannot set rados_osd_op_timeout: %s", strerror(-err));
            goto fail;
        }
    }
    err = rados_connect(r);
    if (err < 0) {
        *stage = UWDF_RBD_STAGE_CONNECT;
        uwdf_remote_why(why, why_len, "cannot connect to the cluster as client.%s: %s", sp->id ? sp->id : "admin",
                        strerror(-err));
        goto fail;
    }
    cl->rados = r;
    return 0;
fail:
    rados_shutdown(r);
    return err;
}

static struct rbd_cluster *rbd_cluster_get(const struct rbd_spec *sp, int *err, enum uwdf_rbd_stage *stage,
                                           char *why, size_t why_len)
{
    char *key = rbd_cluster_key(sp);
    if (!key) {
        *err = -ENOMEM;
        *stage = UWDF_RBD_STAGE_CONNECT;
        return NULL;
    }
    /* Held while connecting (bounded by client_mount_timeout): two opens of
     * one cluster share one connection rather than racing for two. */
    pthread_mutex_lock(&clusters_lock);
    struct rbd_cluster *cl;
    for (cl = clusters; cl; cl = cl->next)
        if (strcmp(cl->key, key) == 0)
            break;
    if (cl) {
        cl->refs++;
        free(key);
    } else if (!(cl = calloc(1, sizeof(*cl)))) {
        *err = -ENOMEM;
        *stage = UWDF_RBD_STAGE_CONNECT;
        free(key);
    } else if ((*err = rbd_connect(sp, cl, stage, why, why_len)) < 0) {
        free(cl);
        free(key);
        cl = NULL;
    } else {
        cl->key = key;
        cl->refs = 1;
        cl->next = clusters;
        clusters = cl;
    }
    pthread_mutex_unlock(&clusters_lock);
    return cl;
}

static void rbd_cluster_put(struct rbd_cluster *cl)
{
    pthread_mutex_lock(&clusters_lock);
    bool last = --cl->refs == 0;
    if (last) {
        struct rbd_cluster **pp = &clusters;
        while (*pp != cl)
            pp = &(*pp)->next;
        *pp = cl->next;
    }
    pthread_mutex_unlock(&clusters_lock);
    if (!last)
        return;
    rados_shutdown(cl->rados);
    free(cl->key);
    free(cl);
}

void uwdf_rbd_image_free(struct uwdf_rbd_image *x)
{
    if (!x)
        return;
    if (x->img)
        rbd_close(x->img);
    if (x->ioctx)
        rados_ioctx_destroy(x->ioctx);
    if (x->cluster)
        rbd_cluster_put(x->cluster);
    free(x);
}

int uwdf_rbd_open(const char *spec, bool writable, bool write_through, struct uwdf_rbd_image **out,
                  struct uwdf_rbd_info *info, enum uwdf_rbd_stage *stage, char *why, size_t why_len)
{
    struct rbd_spec sp;
    why[0] = '\0';
    *stage = UWDF_RBD_STAGE_NAME;
    int err = rbd_parse(spec, &sp, why, why_len);
    struct uwdf_rbd_image *x = NULL;
    if (err)
        goto out;
    x = calloc(1, sizeof(*x));
    if (!x) {
        err = -ENOMEM;
        goto out;
    }
    x->cluster = rbd_cluster_get(&sp, &err, stage, why, why_len);
    if (!x->cluster)
        goto out;
    *stage = UWDF_RBD_STAGE_POOL;
    err = rados_ioctx_create(x->cluster->rados, sp.pool, &x->ioctx);
    if (err < 0) {
        x->ioctx = NULL;
        uwdf_remote_why(why, why_len, "pool '%s': %s", sp.pool, strerror(-err));
        goto out;
    }
    if (sp.ns)
        rados_ioctx_set_namespace(x->ioctx, sp.ns);
    *stage = UWDF_RBD_STAGE_IMAGE;
    x->read_only = !writable || sp.snap;
    /* Read-only opens take no watch on the image header (a watch is a
     * write), as librbd documents. */
    err = x->read_only ? rbd_open_read_only(x->ioctx, sp.image, &x->img, sp.snap)
                       : rbd_open(x->ioctx, sp.image, &x->img, NULL);
    if (err < 0) {
        x->img = NULL;
        uwdf_remote_why(why, why_len, "image '%s%s%s': %s", sp.image, sp.snap ? "@" : "", sp.snap ? sp.snap : "",
                        strerror(-err));
        goto out;
    }
    rbd_image_info_t st;
    uint64_t su = 0;
    err = rbd_stat(x->img, &st, sizeof(st));
    if (err == 0)
        err = rbd_get_stripe_unit(x->img, &su);
    if (err < 0) {
        uwdf_remote_why(why, why_len, "image '%s': stat: %s", sp.image, strerror(-err));
        goto out;
    }
    x->size = st.size;
    x->write_through = write_through;
    info->size = st.size;
    info->object_size = st.obj_size;
    info->stripe_unit = su;
    info->snapshot = sp.snap != NULL;
    *out = x;
    x = NULL;
out:
    uwdf_rbd_image_free(x);
    free(sp.copy);
    return err;
}

/* ---- commands (engine thread) ---- */

/* A command for io on x: from uwdf_remote_cmd_start or
 * uwdf_remote_rw_start. */
static struct rbd_cmd *rbd_cmd_init(struct rbd_engine *st, struct rbd_cmd *c, struct uwdf_rbd_image *x)
{
    if (!c)
        return NULL;
    c->eng = st;
    c->x = x;
    return c;
}

enum rbd_kind { RBD_READ, RBD_WRITE, RBD_FLUSH, RBD_DISCARD, RBD_ZERO };

/* One librbd request of c. False if librbd refused it (c's error set). */
static bool rbd_issue(struct rbd_cmd *c, enum rbd_kind kind, char *buf, uint64_t off, uint64_t len)
{
    rbd_completion_t comp;
    rbd_image_t img = c->x->img;
    int r = rbd_aio_create_completion(c, NULL, &comp);
    if (r == 0) {
        switch (kind) {
        case RBD_READ:
            r = rbd_aio_read(img, off, (size_t)len, buf, comp);
            break;
        case RBD_WRITE:
            r = rbd_aio_write(img, off, (size_t)len, buf, comp);
            break;
        case RBD_FLUSH:
            r = rbd_aio_flush(img, comp);
            break;
        case RBD_DISCARD:
            r = rbd_aio_discard(img, off, len, comp);
            break;
        default:
            r = rbd_aio_write_zeroes(img, off, (size_t)len, comp, 0, 0);
            break;
        }
        if (r < 0)
            rbd_aio_release(comp);
    }
    if (r < 0) {
        if (!c->base.err)
            c->base.err = -r;
        return false;
    }
    c->base.pending++;
    c->x->inflight++;
    return true;
}

/* Every request of c answered: its flush goes next (write-through), or
 * the op completes (unless it was cancelled meanwhile) and c is recycled. */
static void rbd_cmd_finish(struct rbd_cmd *c)
{
    if (c->base.io && !c->base.err && c->base.flush_after) {
        c->base.flush_after = false;
        if (rbd_issue(c, RBD_FLUSH, NULL, 0, 0))
            return;
    }
    uwdf_remote_cmd_complete(&c->eng->re, &c->base);
    uwdf_remote_cmd_put(&c->eng->re.cmds, &c->base);
}

/* Drop the issuer's hold on c: it completes here if librbd refused all
 * it was given (completions only arrive through reap). */
static void rbd_cmd_release(struct rbd_cmd *c)
{
    if (--c->base.pending == 0)
        rbd_cmd_finish(c);
}

static void rbd_poll_image(struct uwdf_rbd_image *x)
{
    rbd_completion_t comps[RBD_POLL_BATCH];
    int n;
    do {
        n = rbd_poll_io_events(x->img, comps, RBD_POLL_BATCH);
        for (int i = 0; i < n; i++) {
            struct rbd_cmd *c = rbd_aio_get_arg(comps[i]);
            ssize_t r = rbd_aio_get_return_value(comps[i]);
            rbd_aio_release(comps[i]);
            x->inflight--;
            if (r < 0 && !c->base.err)
                c->base.err = (int)-r;
            if (--c->base.pending == 0)
                rbd_cmd_finish(c);
        }
    } while (n == RBD_POLL_BATCH);
}

static void rbd_poll_all(struct rbd_engine *st)
{
    for (unsigned i = 0; i < st->nimages; i++)
        if (st->images[i]->inflight)
            rbd_poll_image(st->images[i]);
}

/* ---- ops table ---- */

static int rbd_probe(void)
{
    return 0;
}

/* Sleep until the eventfd is written (librbd's completions, wake()) or tp
 * (NULL: no limit) runs out, rounded up to a millisecond (a finite limit
 * is only the stall injector's): 1 if it was written since the last wait
 * that returned 1, 0 if not, -errno. The eventfd's count is never read: at
 * one write per completion it would take 2^64 writes to fill. */
static int rbd_wait(struct rbd_engine *st, const struct timespec *tp)
{
    struct epoll_event ev;
    int ms = -1;
    if (tp) {
        int64_t ns = (int64_t)tp->tv_sec * 1000000000LL + tp->tv_nsec;
        ms = ns > (int64_t)INT_MAX * 1000000LL ? INT_MAX : (int)((ns + 999999) / 1000000);
    }
    int n = epoll_wait(st->ep_fd, &ev, 1, ms);
    return n < 0 ? -errno : n;
}

static int rbd_open_engine(struct uwdf_engine *e)
{
    struct rbd_engine *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    int err = uwdf_remote_engine_init(&st->re);
    if (err) {
        free(st);
        return err;
    }
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
    st->ep_fd = epoll_create1(EPOLL_CLOEXEC);
    if (st->ep_fd < 0 || epoll_ctl(st->ep_fd, EPOLL_CTL_ADD, st->re.wake_fd, &ev) < 0) {
        err = -errno;
        if (st->ep_fd >= 0)
            close(st->ep_fd);
        uwdf_remote_engine_fini(&st->re);
        free(st);
        return err;
    }
    e->be = st;
    return 0;
}

static void rbd_close_engine(struct uwdf_engine *e)
{
    struct rbd_engine *st = e->be;
    close(st->ep_fd);
    uwdf_remote_engine_fini(&st->re);
    free(st->images);
    free(st);
    e->be = NULL;
}

static int rbd_queue_rw(struct rbd_engine *st, struct uwdf_rbd_image *x, struct uwdf_io *io)
{
    bool write = io->op == UWDF_OP_WRITE;
    int ret;
    struct rbd_cmd *c =
        rbd_cmd_init(st, uwdf_remote_rw_start(&st->re, io, sizeof(struct rbd_cmd), x->size, x->read_only, &ret), x);
    if (!c)
        return ret;
    c->base.flush_after = write && uwdf_remote_wants_write_through(io, x->write_through);
    rbd_issue(c, write ? RBD_WRITE : RBD_READ, c->base.b.buf, io->offset, c->base.len);
    rbd_cmd_release(c);
    return 0;
}

static int rbd_queue_other(struct rbd_engine *st, struct uwdf_rbd_image *x, struct uwdf_io *io)
{
    enum rbd_kind kind;
    switch (io->op) {
    case UWDF_OP_FSYNC:
    case UWDF_OP_FDATASYNC:
        kind = RBD_FLUSH;
        break;
    case UWDF_OP_TRIM:
        kind = RBD_DISCARD;
        break;
    case UWDF_OP_ZERO:
        kind = RBD_ZERO;
        break;
    default:
        return -EINVAL;
    }
    if (x->read_only) {
        uwdf_remote_complete(&st->re, io, kind == RBD_FLUSH ? 0 : -EROFS);
        return 0;
    }
    struct rbd_cmd *c = rbd_cmd_init(st, uwdf_remote_cmd_start(&st->re, io, sizeof(struct rbd_cmd), 0), x);
    if (!c)
        return -ENOMEM;
    if (kind == RBD_FLUSH) {
        rbd_issue(c, kind, NULL, 0, 0);
    } else {
        for (int i = 0; i < io->iovcnt; i++)
            if (io->ranges[i].length && !rbd_issue(c, kind, NULL, io->ranges[i].offset, io->ranges[i].length))
                break;
    }
    rbd_cmd_release(c);
    return 0;
}

static int rbd_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct rbd_engine *st = e->be;
    struct uwdf_rbd_image *x = io->file ? io->file->be : NULL;
    (void)defer_submit; /* librbd takes each request as it is issued */
    if (!x)
        return -EBADF;
    *uwdf_remote_io_cmd(io) = NULL;
    if (io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE)
        return rbd_queue_rw(st, x, io);
    return rbd_queue_other(st, x, io);
}

static int rbd_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct rbd_engine *st = e->be;
    if (max <= 0)
        return -EINVAL;
    /* librbd queues a completion before it writes the eventfd: one whose
     * write comes after this poll wakes the next wait, one polled before
     * its write makes that wait return with nothing (harmless). */
    struct timespec ts;
    int ready = rbd_wait(st, uwdf_remote_poll_timeout(&st->re, timeout_ns, &ts));
    if (ready < 0 && ready != -EINTR)
        return ready;
    if (ready > 0)
        rbd_poll_all(st);
    return uwdf_remote_done_pop(&st->re.done, done, max);
}

static int rbd_attach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct rbd_engine *st = e->be;
    struct uwdf_rbd_image *x = f->be;
    if (!x)
        return -EINVAL;
    if (st->nimages == st->images_cap) {
        unsigned cap = st->images_cap ? st->images_cap * 2 : 8;
        struct uwdf_rbd_image **grown = realloc(st->images, sizeof(*grown) * cap);
        if (!grown)
            return -ENOMEM;
        st->images = grown;
        st->images_cap = cap;
    }
    int err = rbd_set_image_notification(x->img, st->re.wake_fd, EVENT_TYPE_EVENTFD);
    if (err < 0)
        return err;
    st->images[st->nimages++] = x;
    x->engine = st;
    return 0;
}

static void rbd_detach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct rbd_engine *st = e->be;
    struct uwdf_rbd_image *x = f->be;
    /* Requests of cancelled or timed-out ops may still be with librbd:
     * wait them out (the OSD op timeout bounds the wait) so that their
     * commands come back before the image goes. Other images' completions
     * met meanwhile wait on the done list for the next reap. */
    bool waited = false;
    while (x->inflight) {
        (void)rbd_wait(st, NULL); /* -EINTR: look again */
        rbd_poll_all(st);
        waited = true;
    }
    if (waited)
        uwdf_remote_eventfd_signal(st->re.wake_fd); /* a wake-up this wait took is not lost */
    for (unsigned i = 0; i < st->nimages; i++) {
        if (st->images[i] == x) {
            st->images[i] = st->images[--st->nimages];
            break;
        }
    }
    uwdf_rbd_image_free(x);
    f->be = NULL;
}

const struct uwdf_backend_ops uwdf_backend_rbd = {
    .name = "rbd",
    .caps = UWDF_BE_CAP_CANCEL | UWDF_BE_CAP_NO_FD,
    /* Segments are gathered into the command's bounce buffer: any number.
     * Bytes: a chunk that bounds that buffer (librbd has no maximum). */
    .max_segments = UWDF_BE_NO_SEGMENT_LIMIT,
    .max_bytes = UWDF_REMOTE_MAX_BYTES,
    .probe = rbd_probe,
    .open = rbd_open_engine,
    .close = rbd_close_engine,
    .queue = rbd_queue,
    .flush = uwdf_remote_flush_staged,
    .cancel = uwdf_remote_cancel,
    .reap = rbd_reap,
    .wake = uwdf_remote_wake,
    .attach_file = rbd_attach_file,
    .detach_file = rbd_detach_file,
};
