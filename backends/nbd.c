/* NBD engine: I/O targets on NBD exports through libnbd's asynchronous API.
 *
 * Connections and engines. An NBD target's opener connects (on its own
 * thread, so a bad name fails WdfIoTargetOpen with the reason; libnbd's
 * asynchronous connect polled here up to uwdf-connect-timeout, so a silent
 * server fails it with ETIMEDOUT rather than hanging it) one
 * connection, or N when the URI asks for uwdf-connections=N and the server
 * allows multi-conn, or joins the connections another target opened on
 * the same URI (struct nbd_share: keyed by the URI without uwdf's
 * parameters and the connection count, refcounted, closed by the last
 * target; uwdf-share=0 keeps a target's connections its own). A share
 * holds one engine of the nbd pool (lib/engine_pool.c: the one serving the
 * fewest) for its lifetime, every target on it attaches to that engine, and
 * its connections belong to that engine's thread: the thread polls every
 * attached share's sockets (direction from nbd_aio_get_direction, re-read
 * before each poll) plus its own wake-up eventfd, issues commands and runs
 * libnbd's completion callbacks. No thread per request, connection or
 * target. Before it would sleep, the thread reads the replies already
 * waiting on a socket (one FIONREAD counts them; nbd_read_ready) rather
 * than a ppoll per reply. An op goes to one connection (round robin over the live ones) as
 * one command: the server's maximum payload is the file's byte limit
 * (struct uwdf_engine_file), and the core runs a larger read or write as
 * pieces (lib/engine_pieces.c), as it does for a local engine, so a
 * failing piece reports the bytes before it. What a target does (its
 * state, accounting, timeouts, cancel) is the core's, per target; only the
 * sockets are shared.
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
 * (STATUS_CONNECTION_DISCONNECTED), and so does every later op of the
 * targets on it until each is closed and opened again: a share whose
 * connections are all lost is never joined again, so a reopen connects
 * afresh. With uwdf-reconnect=N (opt-in) the engine thread reconnects a
 * lost connection itself, up to N attempts with a doubling wait: ops in
 * flight at the loss still fail (never replayed), ops sent meanwhile wait
 * as commands without a connection (struct nbd_share's waiting list, so a
 * timeout or cancel completes them as any op), and a server that comes
 * back as another disk (size, access, capabilities) is not used.
 * Write-through (per request or per target) is NBD FUA; a server without
 * FUA gets a flush after the write, and one with neither a plain write.
 * Flush, trim and zero fail with EOPNOTSUPP when the server lacks them. */
#include "config.h"
#include "backend.h"
#include "remote.h"

#include <errno.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define NBD_MAX_CONNECTIONS 16
/* A simple reply's header (magic, error, cookie) on the wire. */
#define NBD_SIMPLE_REPLY_BYTES 16
/* Trim and zero lengths are 32-bit in the protocol. */
#define NBD_MAX_RANGE_CHUNK (1u << 30)
#define NBD_URI_CONNECTIONS "uwdf-connections="
#define NBD_URI_SHARE "uwdf-share="
#define NBD_URI_CONNECT_TIMEOUT "uwdf-connect-timeout="
/* How long one connection's connect and handshake may take. Long enough for
 * a TLS handshake to a loaded server across a WAN (and for TCP's first SYN
 * retransmissions, 1 s then 3 s), short enough that an application whose
 * server accepts and never answers fails at start-up with a reason instead
 * of hanging. */
#define NBD_DEFAULT_CONNECT_TIMEOUT_MS 30000u
#define NBD_MAX_CONNECT_TIMEOUT_MS 3600000u
/* The default for URIs without uwdf-connect-timeout (docs/porting.md). */
#define NBD_ENV_CONNECT_TIMEOUT "UWDF_NBD_CONNECT_TIMEOUT"
/* Automatic reconnect (opt-in): attempts after a connection is lost, and
 * the wait before the first, doubling per attempt up to
 * NBD_RECONNECT_MAX_DELAY_MS (or the first wait, if longer). */
#define NBD_URI_RECONNECT "uwdf-reconnect="
#define NBD_URI_RECONNECT_DELAY "uwdf-reconnect-delay="
#define NBD_ENV_RECONNECT "UWDF_NBD_RECONNECT"
#define NBD_MAX_RECONNECT 1000000u
#define NBD_DEFAULT_RECONNECT_DELAY_MS 100u
#define NBD_MAX_RECONNECT_DELAY_MS 60000u
#define NBD_RECONNECT_MAX_DELAY_MS 10000u
/* Structured replies (NBD_OPT_STRUCTURED_REPLY), off unless asked: a read's
 * answer is then one 16-byte header and the data, which libnbd reads in two
 * recv calls and nbdkit writes in two sends, against four and three for a
 * structured OFFSET_DATA chunk. The engine uses nothing they add (holes in
 * reads, block status, DF): 4 KiB random reads at QD32 on nbdkit memory
 * cost client and server about a fifth less CPU per I/O without them
 * (docs/performance.md). */
#define NBD_URI_STRUCTURED_REPLIES "uwdf-structured-replies="

struct nbd_engine;

/* What an open asks of its connections (the URI's uwdf- parameters). */
struct nbd_params {
    unsigned connections;
    bool share;
    unsigned timeout_ms;   /* connect and handshake, per connection */
    unsigned reconnect;    /* attempts after a loss; 0: none */
    unsigned reconnect_ms; /* the wait before the first attempt */
    bool structured;       /* request structured replies */
};

struct nbd_conn {
    struct nbd_handle *h; /* while reconnecting: the new handle, or NULL */
    /* Engine thread; dead, retrying and attempts are written under the
     * share's state_lock too, which a state query reads them under. */
    bool dead; /* no live connection here */
    /* Reconnect: dead and retrying until it is back or the attempts run
     * out; connecting while h's handshake runs. */
    bool retrying, connecting;
    unsigned attempts;
    uint64_t next_ms; /* the next attempt's start, or the handshake's deadline */
    /* How the handshake of the attempt under way failed, as libnbd said
     * when it failed (0: it has not, or said nothing). */
    int fail_err;
    char fail_why[128];
};

/* Connections to one export, shared by every target opened on the same
 * key (the URI without uwdf's parameters, and the connection count) unless
 * a target asked for its own (uwdf-share=0). The engine that runs them is
 * held for as long as the share lives, so every target on it attaches to
 * that one engine; the last target to let go closes the connections. */
struct nbd_share {
    struct nbd_share *next; /* shares_lock: the table of shareable ones */
    char *key;              /* NULL: private */
    unsigned refs;          /* shares_lock: targets holding it, attached or not yet */
    atomic_bool lost;       /* every connection is gone: later opens connect afresh */
    struct uwdf_engine *engine;
    /* The engine's thread, while a target is attached. */
    struct nbd_engine *st;
    unsigned attached;
    bool told_lost;
    bool closing; /* libnbd's .free of a command frees it rather than recycling it */
    struct nbd_params params;
    /* Simple replies in clear text: the bytes on the socket tell how many
     * replies are there (nbd_read_ready). */
    bool countable;
    struct nbd_cmd *waiting; /* ops sent while every connection is reconnecting */
    /* What a state query reads (uwdf_nbd_export_state), besides each
     * connection's dead, retrying and attempts: written by the engine
     * thread at a loss and at each reconnect attempt, never per I/O. */
    pthread_mutex_t state_lock;
    uint64_t losses, reconnects; /* connections lost, and brought back */
    int last_err;                /* the last loss or failed attempt */
    char last_why[128];
    struct nbd_conn conns[NBD_MAX_CONNECTIONS];
    unsigned nconns;
    unsigned rr; /* round robin */
    /* Fixed once connected. */
    uint32_t max_request;
    struct uwdf_nbd_info info; /* the export's facts (nbd_export_facts) */
    char *uri; /* for messages: without uwdf's parameters */
};

/* One target's hold on a share. */
struct uwdf_nbd_export {
    struct nbd_share *sh;
    bool write_through;
};

/* One op in libnbd's hands: one or more commands on one connection. */
struct nbd_cmd {
    struct uwdf_remote_cmd base; /* first: bounce, idle link, op, pending, error */
    struct nbd_engine *eng;
    struct nbd_share *sh;
    struct nbd_conn *conn;
    unsigned refs;  /* commands whose .free has not run, plus the issuer's hold */
    unsigned frees; /* .free calls seen (tells whether a failed issue freed) */
    bool is_read;
    struct nbd_cmd *next;
};

struct nbd_engine {
    struct uwdf_remote_engine re; /* first: eventfd, done list, command cache */
    struct nbd_share **shares;     /* with a target attached */
    unsigned nshares, shares_cap;
    struct pollfd *pfds;
    struct nbd_conn **pconns;
    struct nbd_share **pshares;
    unsigned pfds_cap;
    struct nbd_cmd *flush_head; /* write-through writes waiting for their flush */
    /* Reply bytes read off the engine's sockets, as simple replies count
     * them (nbd_read_ready). */
    uint64_t rx_bytes;
};

static pthread_mutex_t shares_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nbd_share *shares;

/* ---- connecting (the opener's thread) ---- */

/* A uwdf- parameter's value: an unsigned in lo..hi. */
static bool nbd_uri_number(const char *p, size_t n, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (end != p + n || end == p || v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

/* An environment variable that sets the default of a URI parameter (ms or
 * a count, read at each open; empty is unset). A bad value is logged (not
 * again while it stays the same) and the built-in default used. */
struct nbd_env_default {
    const char *name;
    unsigned lo, hi, builtin;
    const char *unit; /* after the range, and after the default: " ms" */
    char told[64];    /* told_lock */
};

static unsigned nbd_env_default(struct nbd_env_default *d)
{
    static pthread_mutex_t told_lock = PTHREAD_MUTEX_INITIALIZER;
    const char *env = uwdf_env_named(d->name);
    unsigned v;
    if (!env || !*env)
        return d->builtin;
    if (nbd_uri_number(env, strlen(env), d->lo, d->hi, &v))
        return v;
    pthread_mutex_lock(&told_lock);
    if (strcmp(d->told, env) != 0) { /* a value longer than told: each time */
        snprintf(d->told, sizeof(d->told), "%s", env);
        uwdf_log("%s='%s' ignored: expected %u..%u%s; using the default, %u%s", d->name, env, d->lo, d->hi, d->unit,
                 d->builtin, d->unit);
    }
    pthread_mutex_unlock(&told_lock);
    return d->builtin;
}

static struct nbd_env_default nbd_env_connect_timeout = {
    NBD_ENV_CONNECT_TIMEOUT, 1, NBD_MAX_CONNECT_TIMEOUT_MS, NBD_DEFAULT_CONNECT_TIMEOUT_MS, " ms", ""
};
static struct nbd_env_default nbd_env_reconnect = { NBD_ENV_RECONNECT, 0, NBD_MAX_RECONNECT, 0, " attempts", "" };

/* One uwdf- parameter of a URI's query (p, n bytes): true if it is one
 * (*bad when its value is out of range, why says so). */
static bool nbd_uri_param(const char *p, size_t n, const char *name, unsigned lo, unsigned hi, unsigned *out,
                          bool *bad, char *why, size_t why_len)
{
    size_t l = strlen(name);
    if (strncmp(p, name, l) != 0)
        return false;
    if (!nbd_uri_number(p + l, n - l, lo, hi, out)) {
        uwdf_remote_why(why, why_len, "%.*s must be %u..%u", (int)(l - 1), name, lo, hi);
        *bad = true;
    }
    return true;
}

/* uri without uwdf's own query parameters, and what they ask (*pp):
 * the connection count (1 if none), whether it may share connections (yes
 * if not said), each connection's connect timeout in ms and the reconnect
 * attempts (the environment's defaults when the URI has none), the first
 * reconnect wait, whether to ask for structured replies (no if not said).
 * NULL on a bad parameter (why says which) or out of
 * memory. */
static char *nbd_uri_strip(const char *uri, struct nbd_params *pp, char *why, size_t why_len)
{
    char *copy = strdup(uri);
    unsigned timeout_ms = 0, reconnect = ~0u, share = 1, structured = 0;
    pp->connections = 1;
    pp->reconnect_ms = NBD_DEFAULT_RECONNECT_DELAY_MS;
    if (!copy)
        return NULL;
    char *q = strchr(copy, '?');
    if (q) {
        char *out = q; /* rebuild the query in place without our parameters */
        char *p = q + 1;
        bool first = true, bad = false;
        while (*p && !bad) {
            char *amp = strchr(p, '&');
            size_t n = amp ? (size_t)(amp - p) : strlen(p);
            if (!nbd_uri_param(p, n, NBD_URI_CONNECTIONS, 1, NBD_MAX_CONNECTIONS, &pp->connections, &bad, why,
                               why_len) &&
                !nbd_uri_param(p, n, NBD_URI_SHARE, 0, 1, &share, &bad, why, why_len) &&
                !nbd_uri_param(p, n, NBD_URI_CONNECT_TIMEOUT, 1, NBD_MAX_CONNECT_TIMEOUT_MS, &timeout_ms, &bad, why,
                               why_len) &&
                !nbd_uri_param(p, n, NBD_URI_RECONNECT, 0, NBD_MAX_RECONNECT, &reconnect, &bad, why, why_len) &&
                !nbd_uri_param(p, n, NBD_URI_RECONNECT_DELAY, 1, NBD_MAX_RECONNECT_DELAY_MS, &pp->reconnect_ms,
                               &bad, why, why_len) &&
                !nbd_uri_param(p, n, NBD_URI_STRUCTURED_REPLIES, 0, 1, &structured, &bad, why, why_len)) {
                *out++ = first ? '?' : '&';
                memmove(out, p, n);
                out += n;
                first = false;
            }
            p += n + (amp ? 1 : 0);
        }
        if (bad) {
            free(copy);
            return NULL;
        }
        *out = '\0';
    }
    pp->share = share == 1;
    pp->structured = structured == 1;
    pp->timeout_ms = timeout_ms ? timeout_ms : nbd_env_default(&nbd_env_connect_timeout);
    pp->reconnect = reconnect != ~0u ? reconnect : nbd_env_default(&nbd_env_reconnect);
    return copy;
}

static uint64_t nbd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Drive h's connect and handshake (begun by nbd_aio_connect_uri) until it
 * is ready, fails or timeout_ms pass: libnbd's blocking connect waits
 * forever on a server that accepts and never answers, or a host that
 * drops the SYNs. 0, or -1 with libnbd's error set, or -2 on timeout. */
static int nbd_connect_wait(struct nbd_handle *h, unsigned timeout_ms)
{
    uint64_t deadline = nbd_now_ms() + timeout_ms;
    for (;;) {
        if (nbd_aio_is_ready(h) == 1)
            return 0;
        if (nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1)
            return -1;
        int fd = nbd_aio_get_fd(h);
        unsigned dir = nbd_aio_get_direction(h);
        if (fd < 0)
            return -1;
        uint64_t now = nbd_now_ms();
        if (now >= deadline)
            return -2;
        struct pollfd pfd = { .fd = fd, .events = 0 };
        if (dir & LIBNBD_AIO_DIRECTION_READ)
            pfd.events |= POLLIN;
        if (dir & LIBNBD_AIO_DIRECTION_WRITE)
            pfd.events |= POLLOUT;
        int left = (int)(deadline - now);
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        /* A hang-up or error is read so that libnbd sees it and fails. */
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && (dir & LIBNBD_AIO_DIRECTION_READ)) {
            if (nbd_aio_notify_read(h) == -1)
                return -1;
        } else if (pfd.revents & (POLLOUT | POLLHUP | POLLERR)) {
            if (nbd_aio_notify_write(h) == -1)
                return -1;
        }
    }
}

/* A handle whose connect to uri has begun (libnbd's asynchronous
 * connect: a Unix socket or an address does not wait, a host name is
 * resolved first), or NULL; *failed when the connect failed at once
 * (libnbd's error set). */
static struct nbd_handle *nbd_connect_start(const char *uri, const struct nbd_params *pp, bool *failed)
{
    struct nbd_handle *h = nbd_create();
    if (!h)
        return NULL;
    nbd_set_request_structured_replies(h, pp->structured);
    /* Reads land in a bounce buffer that is copied only on success. */
    nbd_set_pread_initialize(h, false);
    nbd_set_handle_name(h, "uwdf");
    /* A target's name is the application's, as trusted as a path it
     * opens: nbds:// may name its TLS files (tls-psk-file=,
     * tls-certificates=), which libnbd refuses unless told. */
    nbd_set_uri_allow_local_file(h, true);
    *failed = nbd_aio_connect_uri(h, uri) == -1;
    return h;
}

/* libnbd's errno of the last failure on this thread, or dflt if it
 * set none. */
static int nbd_errno_or(int dflt)
{
    int err = nbd_get_errno();
    return err > 0 ? err : dflt;
}

/* The errno of h's failed connect or handshake (dflt when libnbd set
 * none): with TLS required, libnbd reports a refused handshake (a wrong
 * key or certificate) as EIO, or with no errno at all when the handshake
 * fails inside nbd_aio_notify_read, which is an access the server denied. */
static int nbd_handshake_errno(struct nbd_handle *h, int dflt)
{
    int err = nbd_errno_or(dflt);
    if (err == EIO && nbd_get_tls(h) == LIBNBD_TLS_REQUIRE)
        err = EACCES;
    return err;
}

static struct nbd_handle *nbd_connect_one(const char *uri, const struct nbd_params *pp, char *why, size_t why_len,
                                          int *err)
{
    unsigned timeout_ms = pp->timeout_ms;
    bool failed = false;
    struct nbd_handle *h = nbd_connect_start(uri, pp, &failed);
    if (!h) {
        *err = nbd_get_errno() ? nbd_get_errno() : ENOMEM;
        uwdf_remote_why(why, why_len, "%s", nbd_get_error());
        return NULL;
    }
    int r = failed ? -1 : nbd_connect_wait(h, timeout_ms);
    if (r == -2) {
        *err = ETIMEDOUT;
        uwdf_remote_why(why, why_len, "no answer to the NBD handshake within %u ms (uwdf-connect-timeout, " NBD_ENV_CONNECT_TIMEOUT ")",
                        timeout_ms);
        nbd_close(h);
        return NULL;
    }
    if (r == -1) {
        *err = nbd_handshake_errno(h, EIO);
        const char *msg = nbd_get_error();
        uwdf_remote_why(why, why_len, "%s", msg ? msg : "the server closed the connection during the handshake");
        nbd_close(h);
        return NULL;
    }
    return h;
}

/* What a connected handle says of its export: the share's fixed facts,
 * which a reconnected handle must repeat. False with why when the size
 * cannot be read. */
static bool nbd_export_facts(struct nbd_handle *h, struct uwdf_nbd_info *info, char *why, size_t why_len)
{
    int64_t size = nbd_get_size(h);
    if (size < 0) {
        uwdf_remote_why(why, why_len, "%s", nbd_get_error());
        return false;
    }
    int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t pref = nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED);
    int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    memset(info, 0, sizeof(*info));
    info->size = (uint64_t)size;
    info->min_block = min > 0 ? (uint32_t)min : 0;
    info->preferred_block = pref > 0 ? (uint32_t)pref : 0;
    info->max_block = max > 0 ? (uint32_t)max : 0;
    info->read_only = nbd_is_read_only(h) == 1;
    info->can_flush = nbd_can_flush(h) == 1;
    info->can_fua = nbd_can_fua(h) == 1;
    info->can_trim = nbd_can_trim(h) == 1;
    info->can_zero = nbd_can_zero(h) == 1;
    info->multi_conn = nbd_can_multi_conn(h) == 1;
    return true;
}

/* Close sh's connections and free it: no target holds it. Commands that
 * libnbd still holds (of cancelled ops) are freed by nbd_close. */
static void nbd_share_free(struct nbd_share *sh)
{
    sh->closing = true;
    for (unsigned i = 0; i < sh->nconns; i++)
        nbd_close(sh->conns[i].h); /* NULL between two reconnect attempts */
    /* Waiting ops were all cancelled or completed: no target holds sh. */
    while (sh->waiting) {
        struct nbd_cmd *c = sh->waiting;
        sh->waiting = c->next;
        uwdf_remote_cmd_free(&c->base);
    }
    if (sh->engine)
        uwdf_engine_unhold(sh->engine);
    pthread_mutex_destroy(&sh->state_lock);
    free(sh->key);
    free(sh->uri);
    free(sh);
}

static void nbd_share_put(struct nbd_share *sh)
{
    pthread_mutex_lock(&shares_lock);
    bool last = --sh->refs == 0;
    if (last && sh->key) {
        struct nbd_share **pp = &shares;
        while (*pp != sh)
            pp = &(*pp)->next;
        *pp = sh->next;
    }
    pthread_mutex_unlock(&shares_lock);
    if (last)
        nbd_share_free(sh);
}

/* A live shareable share of key, with a reference taken; shares_lock held. */
static struct nbd_share *nbd_share_find(const char *key)
{
    for (struct nbd_share *sh = shares; sh; sh = sh->next) {
        if (strcmp(sh->key, key) == 0 && !atomic_load_explicit(&sh->lost, memory_order_acquire)) {
            sh->refs++;
            return sh;
        }
    }
    return NULL;
}

/* New connections to bare (as many as pp asks when the server allows
 * multi-conn), on an engine of the nbd pool. 0 or -errno with why. */
static int nbd_share_connect(const char *bare, const struct nbd_params *pp, struct nbd_share **out, char *why,
                             size_t why_len)
{
    int err = 0;
    struct nbd_share *sh = calloc(1, sizeof(*sh));
    if (!sh || !(sh->uri = strdup(bare))) {
        free(sh);
        return -ENOMEM;
    }
    pthread_mutex_init(&sh->state_lock, NULL);
    sh->refs = 1;
    sh->params = *pp;
    sh->conns[0].h = nbd_connect_one(bare, pp, why, why_len, &err);
    /* nbds:// requires TLS; nbd:// leaves libnbd's default, no TLS. */
    sh->countable = sh->conns[0].h && !pp->structured && nbd_get_tls(sh->conns[0].h) == LIBNBD_TLS_DISABLE;
    if (!sh->conns[0].h) {
        nbd_share_free(sh);
        return -err;
    }
    sh->nconns = 1;
    struct uwdf_nbd_info *info = &sh->info;
    if (!nbd_export_facts(sh->conns[0].h, info, why, why_len)) {
        nbd_share_free(sh);
        return -EIO;
    }
    uint32_t max = info->max_block, min = info->min_block;
    sh->max_request = max > 0 && max < UWDF_REMOTE_MAX_BYTES ? max : UWDF_REMOTE_MAX_BYTES;
    if (min > 1 && sh->max_request % min)
        sh->max_request -= sh->max_request % min;
    unsigned want = pp->connections;
    if (want > 1 && !info->multi_conn) {
        uwdf_remote_why(why, why_len, "the server does not allow multi-conn: using 1 connection, not %u", want);
        want = 1;
    }
    for (unsigned i = 1; i < want; i++) {
        sh->conns[i].h = nbd_connect_one(bare, pp, why, why_len, &err);
        if (!sh->conns[i].h) {
            nbd_share_free(sh);
            return -err;
        }
        sh->nconns++;
    }
    sh->engine = uwdf_engine_hold(&uwdf_backend_nbd, &err);
    if (!sh->engine) {
        uwdf_remote_why(why, why_len, "no nbd engine could be started: %s", strerror(-err));
        nbd_share_free(sh);
        return err;
    }
    info->connections = sh->nconns;
    *out = sh;
    return 0;
}

void uwdf_nbd_export_free(struct uwdf_nbd_export *x)
{
    if (!x)
        return;
    nbd_share_put(x->sh);
    free(x);
}

struct uwdf_engine *uwdf_nbd_export_engine(const struct uwdf_nbd_export *x)
{
    return x->sh->engine;
}

void uwdf_nbd_export_state(const struct uwdf_nbd_export *x, struct uwdf_nbd_state *out)
{
    struct nbd_share *sh = x->sh;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&sh->state_lock);
    out->connections = sh->nconns;
    for (unsigned i = 0; i < sh->nconns; i++) {
        const struct nbd_conn *conn = &sh->conns[i];
        out->live += !conn->dead;
        if (conn->retrying) {
            out->retrying++;
            if (conn->attempts > out->attempts)
                out->attempts = conn->attempts;
        }
    }
    out->max_attempts = sh->params.reconnect;
    out->losses = sh->losses;
    out->reconnects = sh->reconnects;
    out->last_err = sh->last_err;
    memcpy(out->last_why, sh->last_why, sizeof(out->last_why));
    pthread_mutex_unlock(&sh->state_lock);
}

int uwdf_nbd_connect(const char *uri, bool write_through, struct uwdf_nbd_export **out, struct uwdf_nbd_info *info,
                     char *why, size_t why_len)
{
    struct nbd_params pp;
    why[0] = '\0';
    char *bare = nbd_uri_strip(uri, &pp, why, why_len);
    if (!bare)
        return why[0] ? -ERANGE : -ENOMEM;
    struct uwdf_nbd_export *x = calloc(1, sizeof(*x));
    char *key = NULL;
    /* Targets that reconnect or reply differently do not share a connection. */
    if (!x || (pp.share && asprintf(&key, "%u %u %u %d %s", pp.connections, pp.reconnect,
                                    pp.reconnect ? pp.reconnect_ms : 0, pp.structured, bare) < 0)) {
        free(x);
        free(bare);
        return -ENOMEM;
    }
    x->write_through = write_through;
    struct nbd_share *sh = NULL;
    if (key) {
        pthread_mutex_lock(&shares_lock);
        sh = nbd_share_find(key);
        pthread_mutex_unlock(&shares_lock);
    }
    if (!sh) {
        /* Connected without the lock (a slow server holds up no other
         * open); an open of the same key that won the race meanwhile is
         * joined and these connections closed. */
        int err = nbd_share_connect(bare, &pp, &sh, why, why_len);
        if (err) {
            free(key);
            free(bare);
            free(x);
            return err;
        }
        if (key) {
            pthread_mutex_lock(&shares_lock);
            struct nbd_share *won = nbd_share_find(key);
            if (!won) {
                sh->key = key;
                key = NULL;
                sh->next = shares;
                shares = sh;
            }
            pthread_mutex_unlock(&shares_lock);
            if (won) {
                nbd_share_free(sh);
                sh = won;
            }
        }
    }
    free(key);
    free(bare);
    x->sh = sh;
    *info = sh->info;
    *out = x;
    return 0;
}

/* ---- commands (engine thread) ---- */

/* A command for io on sh, whose data (if any) the caller has room for:
 * from uwdf_remote_cmd_start or uwdf_remote_rw_start. */
static struct nbd_cmd *nbd_cmd_init(struct nbd_engine *st, struct nbd_cmd *c, struct nbd_share *sh,
                                    struct nbd_conn *conn)
{
    if (!c)
        return NULL;
    c->eng = st;
    c->sh = sh;
    c->conn = conn;
    c->refs = 1; /* the issuer's hold */
    c->frees = 0;
    c->is_read = false;
    c->next = NULL;
    return c;
}

/* No connection of sh is live or coming back: later opens connect afresh. */
static void nbd_share_check_lost(struct nbd_share *sh)
{
    for (unsigned i = 0; i < sh->nconns; i++)
        if (!sh->conns[i].dead || sh->conns[i].retrying)
            return;
    atomic_store_explicit(&sh->lost, true, memory_order_release);
}

/* The wait before reconnect attempt n (1, 2, ...): the first wait, doubled
 * per attempt up to NBD_RECONNECT_MAX_DELAY_MS (or the first, if longer). */
static uint64_t nbd_reconnect_wait_ms(const struct nbd_params *pp, unsigned n)
{
    uint64_t cap = pp->reconnect_ms > NBD_RECONNECT_MAX_DELAY_MS ? pp->reconnect_ms : NBD_RECONNECT_MAX_DELAY_MS;
    uint64_t ms = pp->reconnect_ms;
    for (unsigned i = 1; i < n && ms < cap; i++)
        ms *= 2;
    return ms < cap ? ms : cap;
}

/* The last loss or failed attempt, for a state query; caller holds
 * state_lock. */
static void nbd_state_note_locked(struct nbd_share *sh, int err, const char *why)
{
    sh->last_err = err;
    snprintf(sh->last_why, sizeof(sh->last_why), "%s", why ? why : "");
}

static void nbd_conn_lost(struct nbd_share *sh, struct nbd_conn *conn, const char *what)
{
    if (conn->dead)
        return;
    pthread_mutex_lock(&sh->state_lock);
    conn->dead = true;
    sh->losses++;
    nbd_state_note_locked(sh, ENOTCONN, what);
    if (sh->params.reconnect > 0) {
        conn->retrying = true;
        conn->attempts = 0;
    }
    pthread_mutex_unlock(&sh->state_lock);
    if (sh->params.reconnect > 0) {
        /* Its commands complete (ENOTCONN) when the old handle closes, at
         * the first attempt; nothing of it is replayed. */
        conn->next_ms = nbd_now_ms() + nbd_reconnect_wait_ms(&sh->params, 1);
        uwdf_log("%s: NBD connection lost (%s); requests in flight on it complete with "
                 "STATUS_CONNECTION_DISCONNECTED; reconnecting (up to %u attempts, the first in %llu ms)",
                 sh->uri, what, sh->params.reconnect,
                 (unsigned long long)nbd_reconnect_wait_ms(&sh->params, 1));
        return;
    }
    nbd_share_check_lost(sh);
    if (!sh->told_lost) {
        sh->told_lost = true;
        uwdf_log("%s: NBD connection lost (%s); requests of its targets complete with "
                 "STATUS_CONNECTION_DISCONNECTED until each target is reopened", sh->uri, what);
    }
}

/* errno of a failed command as the target reports it. */
static int nbd_map_error(struct nbd_cmd *c, int err)
{
    if (c->conn->dead || err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE)
        return ENOTCONN;
    if (err == EPERM && c->base.io && c->base.io->op != UWDF_OP_READ)
        return EROFS; /* NBD's answer to a write on a read-only export */
    return err ? err : EIO;
}

/* Every command of c answered: the op completes (unless it was cancelled
 * meanwhile) or its flush goes next. */
static void nbd_cmd_finish(struct nbd_cmd *c)
{
    if (!c->base.io)
        return;
    if (!c->base.err && c->base.flush_after) {
        /* libnbd's lock is held here: the flush is issued from reap. */
        c->base.flush_after = false;
        c->base.pending++; /* held until nbd_issue_flushes has issued it */
        c->refs++;
        c->next = c->eng->flush_head;
        c->eng->flush_head = c;
        return;
    }
    if (c->base.err)
        c->base.err = nbd_map_error(c, c->base.err);
    uwdf_remote_cmd_complete(&c->eng->re, &c->base);
}

static int nbd_cmd_completed(void *user_data, int *error)
{
    struct nbd_cmd *c = user_data;
    if (*error && !c->base.err)
        c->base.err = *error;
    /* A simple reply: its header, then a successful read's data. */
    c->eng->rx_bytes += NBD_SIMPLE_REPLY_BYTES + (c->is_read && !*error ? c->base.len : 0);
    if (--c->base.pending == 0)
        nbd_cmd_finish(c);
    return 1; /* retire it */
}

static void nbd_cmd_freed(void *user_data)
{
    struct nbd_cmd *c = user_data;
    c->frees++;
    if (--c->refs > 0)
        return;
    if (c->sh->closing) {
        /* nbd_close of the share's last connection, maybe on an opener's
         * thread: not into the engine's cache. Its op completed already. */
        uwdf_remote_cmd_free(&c->base);
        return;
    }
    if (c->base.io) {
        /* nbd_close dropped commands whose completion never ran. */
        c->base.err = ENOTCONN;
        c->base.pending = 0;
        c->base.flush_after = false;
        nbd_cmd_finish(c);
    }
    uwdf_remote_cmd_put(&c->eng->re.cmds, &c->base);
}

enum nbd_kind { NBD_PREAD, NBD_PWRITE, NBD_FLUSH, NBD_TRIM, NBD_ZERO };

/* One command of c. False if libnbd refused it (c's error set). */
static bool nbd_issue(struct nbd_cmd *c, enum nbd_kind kind, char *buf, uint64_t len, uint64_t off, uint32_t flags)
{
    if (c->conn->dead) {
        /* Lost since it was picked (a write-through write's flush). */
        if (!c->base.err)
            c->base.err = ENOTCONN;
        return false;
    }
    struct nbd_handle *h = c->conn->h;
    nbd_completion_callback cb = { .callback = nbd_cmd_completed, .user_data = c, .free = nbd_cmd_freed };
    unsigned frees = c->frees;
    int64_t r;
    c->refs++;
    c->base.pending++;
    switch (kind) {
    case NBD_PREAD:
        c->is_read = true;
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
        nbd_conn_lost(c->sh, c->conn, nbd_get_error());
    if (!c->base.err)
        c->base.err = err ? err : EIO;
    c->base.pending--;
    if (c->frees == frees)
        c->refs--; /* libnbd did not call .free for the refused command */
    return false;
}

/* Drop the issuer's hold on c: it completes here if everything it sent
 * has already been answered (or refused). */
static void nbd_cmd_release(struct nbd_cmd *c)
{
    if (--c->base.pending == 0)
        nbd_cmd_finish(c);
    if (--c->refs == 0)
        uwdf_remote_cmd_put(&c->eng->re.cmds, &c->base);
}

static struct nbd_conn *nbd_pick(struct nbd_share *sh)
{
    for (unsigned i = 0; i < sh->nconns; i++) {
        struct nbd_conn *conn = &sh->conns[sh->rr++ % sh->nconns];
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
    st->pshares = calloc(1, sizeof(*st->pshares));
    st->pfds_cap = 1; /* the wake-up eventfd */
    int err = uwdf_remote_engine_init(&st->re);
    if (!err && (!st->pfds || !st->pconns || !st->pshares)) {
        uwdf_remote_engine_fini(&st->re);
        err = -ENOMEM;
    }
    if (err) {
        free(st->pfds);
        free(st->pconns);
        free(st->pshares);
        free(st);
        return err;
    }
    e->be = st;
    return 0;
}

static void nbd_close_engine(struct uwdf_engine *e)
{
    struct nbd_engine *st = e->be;
    uwdf_remote_engine_fini(&st->re);
    free(st->shares);
    free(st->pfds);
    free(st->pconns);
    free(st->pshares);
    free(st);
    e->be = NULL;
}

/* io finds no live connection: it waits for one being reconnected (its
 * timeout, a cancel, Stop, Purge or Close complete it meanwhile through
 * the waiting command's io, as for one in flight), else fails ENOTCONN. */
static int nbd_no_connection(struct nbd_engine *st, struct nbd_share *sh, struct uwdf_io *io)
{
    bool retrying = false;
    for (unsigned i = 0; i < sh->nconns; i++)
        retrying = retrying || sh->conns[i].retrying;
    if (!retrying) {
        uwdf_remote_complete(&st->re, io, -ENOTCONN);
        return 0;
    }
    struct nbd_cmd *c = nbd_cmd_init(st, uwdf_remote_cmd_start(&st->re, io, sizeof(struct nbd_cmd), 0), sh, NULL);
    if (!c)
        return -ENOMEM;
    c->next = sh->waiting; /* newest first: nbd_share_drain reverses */
    sh->waiting = c;
    return 0;
}

static int nbd_queue_rw(struct nbd_engine *st, struct uwdf_nbd_export *x, struct uwdf_io *io)
{
    struct nbd_share *sh = x->sh;
    bool write = io->op == UWDF_OP_WRITE;
    struct nbd_conn *conn = nbd_pick(sh);
    if (!conn)
        return nbd_no_connection(st, sh, io);
    int ret;
    struct nbd_cmd *c =
        uwdf_remote_rw_start(&st->re, io, sizeof(struct nbd_cmd), sh->info.size, sh->info.read_only, &ret);
    c = nbd_cmd_init(st, c, sh, conn);
    if (!c)
        return ret;
    uint32_t flags = 0;
    if (write && uwdf_remote_wants_write_through(io, x->write_through)) {
        if (sh->info.can_fua)
            flags = LIBNBD_CMD_FLAG_FUA;
        else
            c->base.flush_after = sh->info.can_flush;
    }
    /* Within the server's maximum: the core split a larger op (the file's
     * max_bytes, set by nbd_attach_file). */
    nbd_issue(c, write ? NBD_PWRITE : NBD_PREAD, c->base.b.buf, c->base.len, io->offset, flags);
    nbd_cmd_release(c);
    return 0;
}

static int nbd_queue_other(struct nbd_engine *st, struct uwdf_nbd_export *x, struct uwdf_io *io)
{
    struct nbd_share *sh = x->sh;
    enum nbd_kind kind;
    bool can;
    switch (io->op) {
    case UWDF_OP_FSYNC:
    case UWDF_OP_FDATASYNC:
        kind = NBD_FLUSH;
        can = sh->info.can_flush;
        break;
    case UWDF_OP_TRIM:
        kind = NBD_TRIM;
        can = sh->info.can_trim;
        break;
    case UWDF_OP_ZERO:
        kind = NBD_ZERO;
        can = sh->info.can_zero;
        break;
    default:
        return -EINVAL;
    }
    if (kind != NBD_FLUSH && sh->info.read_only) {
        uwdf_remote_complete(&st->re, io, -EROFS);
        return 0;
    }
    if (!can) {
        uwdf_remote_complete(&st->re, io, -EOPNOTSUPP);
        return 0;
    }
    struct nbd_conn *conn = nbd_pick(sh);
    if (!conn)
        return nbd_no_connection(st, sh, io);
    struct nbd_cmd *c = nbd_cmd_init(st, uwdf_remote_cmd_start(&st->re, io, sizeof(struct nbd_cmd), 0), sh, conn);
    if (!c)
        return -ENOMEM;
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

static int nbd_queue_io(struct nbd_engine *st, struct uwdf_nbd_export *x, struct uwdf_io *io)
{
    *uwdf_remote_io_cmd(io) = NULL;
    if (io->op == UWDF_OP_READ || io->op == UWDF_OP_WRITE)
        return nbd_queue_rw(st, x, io);
    return nbd_queue_other(st, x, io);
}

static int nbd_queue(struct uwdf_engine *e, struct uwdf_io *io, bool defer_submit)
{
    struct uwdf_nbd_export *x = io->file ? io->file->be : NULL;
    (void)defer_submit; /* libnbd sends each command as it is issued */
    if (!x)
        return -EBADF;
    return nbd_queue_io(e->be, x, io);
}

/* ---- reconnect (engine thread) ---- */

/* The ops that waited for a connection, in the order they came: each is
 * queued again (a live connection takes it; none left fails it), or was
 * completed meanwhile (cancelled, timed out) and only its command goes. */
static void nbd_share_drain(struct nbd_engine *st, struct nbd_share *sh)
{
    struct nbd_cmd *list = NULL;
    while (sh->waiting) {
        struct nbd_cmd *c = sh->waiting;
        sh->waiting = c->next;
        c->next = list;
        list = c;
    }
    while (list) {
        struct nbd_cmd *c = list;
        list = c->next;
        struct uwdf_io *io = c->base.io;
        c->base.io = NULL;
        uwdf_remote_cmd_put(&st->re.cmds, &c->base);
        if (!io)
            continue;
        int err = nbd_queue_io(st, io->file->be, io);
        if (err)
            uwdf_remote_complete(&st->re, io, err);
    }
}

/* An attempt failed (the handle, if any, is closed here): the next one is
 * scheduled, or (attempts used up, or last) the connection given up, and
 * with it the waiting ops when no connection of the share is left. */
static void nbd_reconnect_failed(struct nbd_engine *st, struct nbd_share *sh, struct nbd_conn *conn, uint64_t now,
                                 int err, const char *why, bool last)
{
    bool again = !last && conn->attempts < sh->params.reconnect;
    pthread_mutex_lock(&sh->state_lock);
    nbd_state_note_locked(sh, err, why);
    if (!again)
        conn->retrying = false;
    pthread_mutex_unlock(&sh->state_lock);
    nbd_close(conn->h);
    conn->h = NULL;
    conn->connecting = false;
    if (again) {
        conn->next_ms = now + nbd_reconnect_wait_ms(&sh->params, conn->attempts + 1);
        return;
    }
    uwdf_log("%s: NBD reconnect given up after %u attempts (the last: %s); requests of its targets complete "
             "with STATUS_CONNECTION_DISCONNECTED until each target is reopened",
             sh->uri, conn->attempts, why);
    sh->told_lost = true;
    nbd_share_check_lost(sh);
    nbd_share_drain(st, sh);
}

/* A reconnected handle serves the same export only if it says what the
 * first connection said: a server that comes back with another size,
 * read-only, or with other capabilities or block sizes is another disk to
 * the targets (their size and geometry were read at open), so it is not
 * used: they fail until reopened. NULL if it is the same, else why not. */
static const char *nbd_reconnect_differs(const struct nbd_share *sh, struct nbd_handle *h, char *why, size_t len)
{
    struct uwdf_nbd_info now;
    if (!nbd_export_facts(h, &now, why, len))
        return why;
    const struct uwdf_nbd_info *was = &sh->info;
    if (now.size != was->size)
        snprintf(why, len, "its size is now %llu bytes, was %llu", (unsigned long long)now.size,
                 (unsigned long long)was->size);
    else if (now.read_only != was->read_only)
        snprintf(why, len, "it is now %s", now.read_only ? "read-only" : "writable");
    else if (now.can_flush != was->can_flush || now.can_fua != was->can_fua || now.can_trim != was->can_trim ||
             now.can_zero != was->can_zero || now.min_block != was->min_block ||
             now.preferred_block != was->preferred_block || now.max_block != was->max_block)
        snprintf(why, len, "it offers other commands or block sizes");
    else
        return NULL;
    return why;
}

/* Drive conn's reconnect one step: close the lost handle (its commands
 * complete now, ENOTCONN), start an attempt when its wait is over, and
 * look at a handshake in progress. */
static void nbd_reconnect_step(struct nbd_engine *st, struct nbd_share *sh, struct nbd_conn *conn, uint64_t now)
{
    if (!conn->connecting) {
        if (conn->h) {
            nbd_close(conn->h);
            conn->h = NULL;
        }
        if (now < conn->next_ms)
            return;
        pthread_mutex_lock(&sh->state_lock);
        conn->attempts++;
        pthread_mutex_unlock(&sh->state_lock);
        bool failed = false;
        conn->fail_err = 0;
        conn->h = nbd_connect_start(sh->uri, &sh->params, &failed);
        if (!conn->h || failed) {
            nbd_reconnect_failed(st, sh, conn, now, conn->h ? nbd_errno_or(ECONNREFUSED) : ENOMEM,
                                 conn->h ? nbd_get_error() : "out of memory", false);
            return;
        }
        conn->connecting = true;
        conn->next_ms = now + sh->params.timeout_ms;
    }
    if (nbd_aio_is_ready(conn->h) == 1) {
        char why[200];
        const char *differs = nbd_reconnect_differs(sh, conn->h, why, sizeof(why));
        if (differs) {
            /* No more attempts: it is another disk. */
            uwdf_log("%s: NBD server is back with another export (%s): not used", sh->uri, differs);
            nbd_reconnect_failed(st, sh, conn, now, ENXIO, differs, true);
            return;
        }
        pthread_mutex_lock(&sh->state_lock);
        conn->connecting = conn->retrying = conn->dead = false;
        sh->reconnects++;
        pthread_mutex_unlock(&sh->state_lock);
        uwdf_log("%s: NBD connection back after %u attempt%s (%llu reconnects of this share)", sh->uri,
                 conn->attempts, conn->attempts == 1 ? "" : "s", (unsigned long long)sh->reconnects);
        nbd_share_drain(st, sh);
    } else if (nbd_aio_is_dead(conn->h) == 1 || nbd_aio_is_closed(conn->h) == 1) {
        bool said = conn->fail_err != 0;
        nbd_reconnect_failed(st, sh, conn, now, said ? conn->fail_err : ECONNRESET,
                             said ? conn->fail_why : "the server closed the connection during the handshake", false);
    } else if (now >= conn->next_ms) {
        nbd_reconnect_failed(st, sh, conn, now, ETIMEDOUT, "no answer to the handshake within the connect timeout",
                             false);
    }
}

/* Every reconnect of the engine's shares one step; the earliest time one
 * needs looking at again (UINT64_MAX: none). */
static uint64_t nbd_reconnect_all(struct nbd_engine *st)
{
    uint64_t next = UINT64_MAX, now = 0;
    for (unsigned i = 0; i < st->nshares; i++) {
        struct nbd_share *sh = st->shares[i];
        for (unsigned j = 0; j < sh->nconns; j++) {
            struct nbd_conn *conn = &sh->conns[j];
            if (!conn->retrying)
                continue;
            if (!now)
                now = nbd_now_ms();
            nbd_reconnect_step(st, sh, conn, now);
            if (conn->retrying && conn->next_ms < next)
                next = conn->next_ms;
        }
    }
    return next;
}

/* Issue the flushes that follow write-through writes on servers without
 * FUA (they cannot be issued from the completion callback). */
static void nbd_issue_flushes(struct nbd_engine *st)
{
    while (st->flush_head) {
        struct nbd_cmd *c = st->flush_head;
        st->flush_head = c->next;
        c->next = NULL;
        if (c->base.io)
            nbd_issue(c, NBD_FLUSH, NULL, 0, 0, 0);
        nbd_cmd_release(c); /* the hold nbd_cmd_finish took for it */
    }
}

static int nbd_poll_setup(struct nbd_engine *st)
{
    unsigned n = 1;
    st->pfds[0].fd = st->re.wake_fd;
    st->pfds[0].events = POLLIN;
    st->pfds[0].revents = 0;
    for (unsigned i = 0; i < st->nshares; i++) {
        struct nbd_share *sh = st->shares[i];
        for (unsigned j = 0; j < sh->nconns; j++) {
            struct nbd_conn *conn = &sh->conns[j];
            if (conn->dead && !conn->connecting)
                continue;
            int fd = nbd_aio_get_fd(conn->h);
            if (fd < 0) {
                nbd_conn_lost(sh, conn, nbd_get_error());
                continue;
            }
            unsigned dir = nbd_aio_get_direction(conn->h);
            st->pfds[n].fd = fd;
            st->pfds[n].events = (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                         ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
            st->pfds[n].revents = 0;
            st->pconns[n] = conn;
            st->pshares[n] = sh;
            n++;
        }
    }
    return (int)n;
}

static void nbd_notify(struct nbd_share *sh, struct nbd_conn *conn, short revents)
{
    int r = 0;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        r = nbd_aio_notify_read(conn->h);
    if (r == 0 && (revents & POLLOUT))
        r = nbd_aio_notify_write(conn->h);
    if (r == -1 && conn->connecting) {
        /* A reconnect's handshake failed (a refused TLS key, say): kept
         * for its log line and the state query, while libnbd still says. */
        const char *msg = nbd_get_error();
        conn->fail_err = nbd_handshake_errno(conn->h, EIO);
        snprintf(conn->fail_why, sizeof(conn->fail_why), "%s", msg ? msg : "the handshake failed");
    }
    if (r == -1 || nbd_aio_is_dead(conn->h) || nbd_aio_is_closed(conn->h))
        nbd_conn_lost(sh, conn, r == -1 ? nbd_get_error() : "closed by the server");
}

/* Read every reply already waiting on conn's socket without a poll per
 * reply; true if there was one. With commands in flight the replies of a
 * busy server queue up while the engine runs completions and resends:
 * one FIONREAD (the bytes waiting) replaces a ppoll per reply, and the
 * replies are read while whole ones are there (simple replies in clear
 * text, so the bytes count them: 16 each, plus a successful read's data).
 * libnbd reads one reply per notify and is back in its READY state after
 * each, so commands issued later go out at once; one left half there
 * (its data still arriving) ends the pass, and ppoll waits for the rest,
 * as it would have. Only with two or more in flight: at QD1 the socket
 * is empty while the engine polls, and the FIONREAD would be one system
 * call more per I/O. */
static bool nbd_read_ready(struct nbd_engine *st, struct nbd_share *sh, struct nbd_conn *conn, int fd)
{
    if (!sh->countable || conn->dead || conn->connecting || nbd_aio_in_flight(conn->h) < 2 ||
        !nbd_aio_is_ready(conn->h))
        return false;
    int avail = 0;
    if (ioctl(fd, FIONREAD, &avail) != 0 || avail < NBD_SIMPLE_REPLY_BYTES)
        return false;
    uint64_t start = st->rx_bytes;
    while (st->rx_bytes - start + NBD_SIMPLE_REPLY_BYTES <= (uint64_t)avail) {
        uint64_t before = st->rx_bytes;
        nbd_notify(sh, conn, POLLIN);
        if (conn->dead || !nbd_aio_is_ready(conn->h) || st->rx_bytes == before)
            break;
    }
    return true;
}

/* Whether the poll set waits only for replies: no connection with a
 * command half sent (POLLOUT) or a handshake under way, which the ppoll
 * that nbd_read_ready spares would have served. */
static bool nbd_poll_reads_only(const struct nbd_engine *st, int n)
{
    for (int i = 1; i < n; i++)
        if ((st->pfds[i].events & POLLOUT) || st->pconns[i]->connecting)
            return false;
    return true;
}

static int nbd_reap(struct uwdf_engine *e, struct uwdf_io **done, int max, int64_t timeout_ns)
{
    struct nbd_engine *st = e->be;
    if (max <= 0)
        return -EINVAL;
    nbd_issue_flushes(st);
    uint64_t retry_ms = nbd_reconnect_all(st);
    if (retry_ms != UINT64_MAX) {
        uint64_t now = nbd_now_ms();
        int64_t wait_ns = retry_ms > now ? (int64_t)(retry_ms - now) * 1000000 : 0;
        if (timeout_ns < 0 || wait_ns < timeout_ns)
            timeout_ns = wait_ns;
    }
    int n = nbd_poll_setup(st);
    struct timespec ts;
    if (timeout_ns != 0 && !st->re.done.head && nbd_poll_reads_only(st, n)) {
        /* About to sleep: first read what is there already. */
        bool got = false;
        for (int i = 1; i < n; i++)
            got = nbd_read_ready(st, st->pshares[i], st->pconns[i], st->pfds[i].fd) || got;
        if (got) {
            nbd_issue_flushes(st);
            return uwdf_remote_done_pop(&st->re.done, done, max);
        }
    }
    int ready = ppoll(st->pfds, (nfds_t)n, uwdf_remote_poll_timeout(&st->re, timeout_ns, &ts), NULL);
    if (ready < 0 && errno != EINTR)
        return -errno;
    if (ready > 0) {
        if (st->pfds[0].revents & POLLIN)
            uwdf_remote_eventfd_drain(st->re.wake_fd);
        for (int i = 1; i < n; i++)
            if (st->pfds[i].revents)
                nbd_notify(st->pshares[i], st->pconns[i], st->pfds[i].revents);
        nbd_issue_flushes(st);
    }
    return uwdf_remote_done_pop(&st->re.done, done, max);
}

/* Room in the poll arrays for every connection of the attached shares
 * plus sh's. */
static int nbd_poll_reserve(struct nbd_engine *st, const struct nbd_share *sh)
{
    unsigned need = 1 + sh->nconns;
    for (unsigned i = 0; i < st->nshares; i++)
        need += st->shares[i]->nconns;
    if (need <= st->pfds_cap)
        return 0;
    unsigned cap = need * 2;
    struct pollfd *pfds = realloc(st->pfds, sizeof(*pfds) * cap);
    if (!pfds)
        return -ENOMEM;
    st->pfds = pfds;
    struct nbd_conn **pconns = realloc(st->pconns, sizeof(*pconns) * cap);
    if (!pconns)
        return -ENOMEM;
    st->pconns = pconns;
    struct nbd_share **pshares = realloc(st->pshares, sizeof(*pshares) * cap);
    if (!pshares)
        return -ENOMEM;
    st->pshares = pshares;
    st->pfds_cap = cap;
    return 0;
}

/* A target joins its share: the first one on this engine brings the
 * share's connections into the poll set. */
static int nbd_attach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct nbd_engine *st = e->be;
    struct uwdf_nbd_export *x = f->be;
    if (!x || x->sh->engine != e)
        return -EINVAL;
    struct nbd_share *sh = x->sh;
    f->max_bytes = sh->max_request;
    if (sh->attached++ > 0)
        return 0;
    int err = 0;
    if (st->nshares == st->shares_cap) {
        unsigned cap = st->shares_cap ? st->shares_cap * 2 : 8;
        struct nbd_share **grown = realloc(st->shares, sizeof(*grown) * cap);
        if (grown) {
            st->shares = grown;
            st->shares_cap = cap;
        } else {
            err = -ENOMEM;
        }
    }
    if (!err)
        err = nbd_poll_reserve(st, sh);
    if (err) {
        sh->attached--;
        return err;
    }
    st->shares[st->nshares++] = sh;
    sh->st = st;
    return 0;
}

/* A target lets go of its share (its ops are all done for the core); the
 * last one on the engine takes the connections out of the poll set, and
 * the last one of all closes them. */
static void nbd_detach_file(struct uwdf_engine *e, struct uwdf_engine_file *f)
{
    struct nbd_engine *st = e->be;
    struct uwdf_nbd_export *x = f->be;
    struct nbd_share *sh = x->sh;
    if (--sh->attached == 0) {
        for (unsigned i = 0; i < st->nshares; i++) {
            if (st->shares[i] == sh) {
                st->shares[i] = st->shares[--st->nshares];
                break;
            }
        }
        sh->st = NULL;
    }
    /* This target's place on the engine outlives the share's hold, which
     * nbd_share_free drops: the engine does not stop on its own thread. */
    uwdf_nbd_export_free(x);
    f->be = NULL;
}

const struct uwdf_backend_ops uwdf_backend_nbd = {
    .name = "nbd",
    .caps = UWDF_BE_CAP_CANCEL | UWDF_BE_CAP_NO_FD,
    /* Segments are gathered into the command's bounce buffer: any number.
     * Bytes: the server's maximum payload, per file (nbd_attach_file). */
    .max_segments = UWDF_BE_NO_SEGMENT_LIMIT,
    .max_bytes = UWDF_REMOTE_MAX_BYTES,
    .probe = nbd_probe,
    .open = nbd_open,
    .close = nbd_close_engine,
    .queue = nbd_queue,
    .flush = uwdf_remote_flush_staged,
    .cancel = uwdf_remote_cancel,
    .reap = nbd_reap,
    .wake = uwdf_remote_wake,
    .attach_file = nbd_attach_file,
    .detach_file = nbd_detach_file,
};
