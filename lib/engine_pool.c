/* The engine pool: which engine serves an open target's file.
 *
 * Each backend kind (io_uring, libaio, null) has a pool of at most
 * uwdf_engine_pool_size() engines. A file goes to the engine that serves
 * the fewest files; another engine starts only while the pool is below its
 * size and every engine serves a file already, so a lone target still has
 * an engine of its own, and ten thousand targets share a handful. A file
 * stays on its engine while its target is open. An engine lives while it
 * serves a file: the last one to leave stops it, so a process with no open
 * target has no engine thread. A smaller size takes effect as engines
 * empty; files opened meanwhile share the engines that run.
 *
 * Lock order: the pool lock is taken with no target or engine lock held,
 * and an engine's start-up happens under it (a rare, bounded wait). */
#include "runtime.h"
#include "engine.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Ops an engine's ring or context is sized for, over all its files (more
 * may be in flight: the backends queue the rest). */
#define POOL_ENGINE_DEPTH 1024

struct pool_engine {
    struct uwdf_engine *engine;
    unsigned files;
};

struct pool {
    const struct uwdf_backend_ops *ops;
    struct pool_engine engines[UWDF_MAX_ENGINE_POOL_SIZE]; /* [0, count) in use */
    unsigned count;
    bool told; /* a failed start-up was logged */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool pools[] = {
    { .ops = &uwdf_backend_io_uring },
    { .ops = &uwdf_backend_libaio },
    { .ops = &uwdf_backend_null },
#ifdef HAVE_LIBNBD
    { .ops = &uwdf_backend_nbd },
#endif
#ifdef HAVE_LIBRBD
    { .ops = &uwdf_backend_rbd },
#endif
};
static atomic_uint pool_size_set; /* UwdfSetEnginePoolSize; 0: the default */
static unsigned pool_size_default;
static pthread_once_t pool_default_once = PTHREAD_ONCE_INIT;

/* The calling thread's engine group (UwdfStartEngineGroup): while on, the
 * engine of each kind that the group's targets joined (NULL: none yet).
 * Only a hint: pool_take checks that the engine still runs. */
static __thread bool pool_group_on;
static __thread struct uwdf_engine *pool_group[RTL_NUMBER_OF(pools)];

/* ---- DDIs ---- */

NTSTATUS UwdfSetEnginePoolSize(ULONG Engines)
{
    if (Engines > UWDF_MAX_ENGINE_POOL_SIZE)
        return STATUS_INVALID_PARAMETER;
    atomic_store_explicit(&pool_size_set, Engines, memory_order_relaxed);
    return STATUS_SUCCESS;
}

ULONG UwdfGetEnginePoolSize(void)
{
    return uwdf_engine_pool_size();
}

VOID UwdfStartEngineGroup(VOID)
{
    pool_group_on = true;
    memset(pool_group, 0, sizeof(pool_group));
}

VOID UwdfFinishEngineGroup(VOID)
{
    pool_group_on = false;
    memset(pool_group, 0, sizeof(pool_group));
}

/* ---- size ---- */

static void pool_default_init(void)
{
    cpu_set_t cpus;
    unsigned n = 1;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 0)
        n = (unsigned)CPU_COUNT(&cpus);
    if (n > UWDF_ENGINE_POOL_DEFAULT_MAX)
        n = UWDF_ENGINE_POOL_DEFAULT_MAX;
    const char *env = uwdf_env(UWDF_ENV_ENGINES);
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= UWDF_MAX_ENGINE_POOL_SIZE)
            n = (unsigned)v;
        else
            uwdf_log("UWDF_ENGINES='%s' ignored: expected 1..%u engines", env, UWDF_MAX_ENGINE_POOL_SIZE);
    }
    pool_size_default = n;
}

unsigned uwdf_engine_pool_size(void)
{
    unsigned n = atomic_load_explicit(&pool_size_set, memory_order_relaxed);
    if (n)
        return n;
    pthread_once(&pool_default_once, pool_default_init);
    return pool_size_default;
}

/* ---- placement ---- */

static struct pool *pool_of(const struct uwdf_backend_ops *ops)
{
    for (size_t i = 0; i < RTL_NUMBER_OF(pools); i++)
        if (pools[i].ops == ops)
            return &pools[i];
    return NULL;
}

static struct pool_engine *pool_least_loaded(struct pool *p)
{
    struct pool_engine *best = NULL;
    for (unsigned i = 0; i < p->count; i++)
        if (!best || p->engines[i].files < best->files)
            best = &p->engines[i];
    return best;
}

/* Caller holds the pool lock. A new engine, or NULL if it could not be
 * set up (then the files share those that run, if any). */
static struct pool_engine *pool_start_engine(struct pool *p, int *err)
{
    struct uwdf_engine *e = uwdf_engine_create(p->ops, POOL_ENGINE_DEPTH, err);
    if (!e) {
        if (p->count && !p->told) {
            p->told = true;
            uwdf_log("%s: another engine could not be set up (%s); targets share the %u running",
                     p->ops->name, strerror(-*err), p->count);
        }
        return NULL;
    }
    struct pool_engine *pe = &p->engines[p->count++];
    pe->engine = e;
    pe->files = 0;
    return pe;
}

/* Take a place on an engine of ops's pool: on (which the caller holds a
 * place on already), else the engine of the calling thread's group, else
 * the least loaded one, starting another while the pool is below its size
 * and every engine serves something. */
static struct uwdf_engine *pool_take(const struct uwdf_backend_ops *ops, struct uwdf_engine *on, int *err)
{
    struct pool *p = pool_of(ops);
    unsigned size = uwdf_engine_pool_size();
    *err = 0;
    pthread_mutex_lock(&pool_lock);
    struct pool_engine *pe = NULL;
    /* the calling thread's group's engine, if it still runs */
    struct uwdf_engine **group = !on && pool_group_on ? &pool_group[p - pools] : NULL;
    struct uwdf_engine *want = on ? on : group ? *group : NULL;
    for (unsigned i = 0; want && i < p->count && !pe; i++)
        if (p->engines[i].engine == want)
            pe = &p->engines[i];
    if (!on && !pe) {
        pe = pool_least_loaded(p);
        if ((!pe || pe->files > 0) && p->count < size) {
            struct pool_engine *fresh = pool_start_engine(p, err);
            if (fresh)
                pe = fresh;
        }
    }
    if (!pe) {
        if (!*err)
            *err = -ENXIO;
        pthread_mutex_unlock(&pool_lock);
        return NULL;
    }
    pe->files++;
    struct uwdf_engine *e = pe->engine;
    if (group)
        *group = e;
    pthread_mutex_unlock(&pool_lock);
    *err = 0;
    return e;
}

struct uwdf_engine *uwdf_engine_attach(const struct uwdf_backend_ops *ops, struct uwdf_engine_attachment *a,
                                       int fd, int *err)
{
    struct uwdf_engine *e = pool_take(ops, NULL, err);
    if (e)
        uwdf_engine_file_init(e, a, fd);
    return e;
}

/* Drop a place on e (the pool's count; e stops with its last). */
static void pool_leave(struct uwdf_engine *e)
{
    struct pool *p = pool_of(e->ops);
    bool last = false;
    pthread_mutex_lock(&pool_lock);
    for (unsigned i = 0; i < p->count; i++) {
        if (p->engines[i].engine != e)
            continue;
        last = --p->engines[i].files == 0;
        if (last)
            p->engines[i] = p->engines[--p->count];
        break;
    }
    pthread_mutex_unlock(&pool_lock);
    if (last)
        uwdf_engine_destroy(e);
}

void uwdf_engine_detach(struct uwdf_engine *e, struct uwdf_engine_attachment *a)
{
    uwdf_engine_file_fini(e, a);
    pool_leave(e);
}

struct uwdf_engine *uwdf_engine_hold(const struct uwdf_backend_ops *ops, int *err)
{
    return pool_take(ops, NULL, err);
}

void uwdf_engine_unhold(struct uwdf_engine *e)
{
    pool_leave(e);
}

struct uwdf_engine *uwdf_engine_attach_remote(const struct uwdf_backend_ops *ops, struct uwdf_engine_attachment *a,
                                              void *be, struct uwdf_engine *on, int *err)
{
    struct uwdf_engine *e = pool_take(ops, on, err);
    if (!e)
        return NULL;
    uwdf_engine_file_init(e, a, -1);
    a->file.be = be;
    *err = uwdf_engine_file_attach(e, a);
    if (*err) {
        a->file.be = NULL;
        pool_leave(e);
        return NULL;
    }
    return e;
}
