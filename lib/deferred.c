/* Deferred callbacks: the DPC thread (DISPATCH_LEVEL, one thread, as one
 * CPU's DPC queue) and the system worker pool (PASSIVE_LEVEL, growing while
 * every worker is busy, so one work item may wait for another). Timers and
 * work items run their driver callbacks here, never on the framework timer
 * thread (lib/timer.c), which only moves an expired timer onto a queue.
 *
 * A deferred is queued at most once at a time. Its 'queued' flag clears
 * when a thread takes it, before its callback runs, so queueing it again
 * from the callback runs it again. Flushing waits until it is neither
 * queued nor running. The executor calls done() once it no longer touches
 * the deferred, which lets the owner drop the reference that kept the
 * memory alive while queued. */
#include "ntrt.h"

#include <errno.h>
#include <stdio.h>

struct executor {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* workers wait for a deferred */
    pthread_cond_t idle;  /* flushers wait for theirs to be done */
    LIST_ENTRY queue;
    unsigned queued;      /* deferreds on the queue */
    unsigned threads;     /* started */
    unsigned waiting;     /* threads waiting for work */
    unsigned max_threads;
    KIRQL irql;
    const char *name;
};

static struct executor executors[2] = {
    [UWDF_DEFER_DISPATCH] = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
                              .idle = PTHREAD_COND_INITIALIZER, .max_threads = 1, .irql = DISPATCH_LEVEL,
                              .name = "DPC" },
    [UWDF_DEFER_PASSIVE] = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
                             .idle = PTHREAD_COND_INITIALIZER, .max_threads = UWDF_WORKER_THREADS_MAX,
                             .irql = PASSIVE_LEVEL, .name = "worker" },
};

static __thread const struct uwdf_deferred *tls_running;

__attribute__((constructor)) static void executors_init(void)
{
    for (size_t i = 0; i < RTL_NUMBER_OF(executors); i++)
        uwdf_list_init(&executors[i].queue);
}

static struct executor *executor_of(const struct uwdf_deferred *d)
{
    return &executors[d->level];
}

static void run_one(struct executor *ex, struct uwdf_deferred *d)
{
    tls_running = d;
    d->fn(d);
    tls_running = NULL;
    if (uwdf_tls_irql != ex->irql) {
        /* A callback must return at the IRQL it was called at (Windows bug
         * checks IRQL_UNEXPECTED_VALUE); put it back for the next one. */
        if (uwdf_verifier)
            uwdf_bugcheck_report(IRQL_UNEXPECTED_VALUE, uwdf_tls_irql, ex->irql, (ULONG_PTR)d, 0,
                                 "a deferred callback returned at another IRQL than it was called at");
        else
            uwdf_log_at(UwdfLogVerifier, "%s callback %p returned at IRQL %u instead of %u", ex->name, (void *)d,
                        uwdf_tls_irql, ex->irql);
        uwdf_tls_irql = ex->irql;
    }
}

static void *executor_thread(void *arg)
{
    struct executor *ex = arg;
    uwdf_tls_irql = ex->irql;
    pthread_mutex_lock(&ex->lock);
    for (;;) {
        while (uwdf_list_empty(&ex->queue)) {
            ex->waiting++;
            pthread_cond_wait(&ex->work, &ex->lock);
            ex->waiting--;
        }
        struct uwdf_deferred *d = CONTAINING_RECORD(uwdf_list_pop_head(&ex->queue), struct uwdf_deferred, link);
        ex->queued--;
        d->queued = false;
        d->running++;
        pthread_mutex_unlock(&ex->lock);
        run_one(ex, d);
        pthread_mutex_lock(&ex->lock);
        d->running--;
        if (!d->queued && !d->running)
            pthread_cond_broadcast(&ex->idle);
        void (*done)(struct uwdf_deferred *) = d->done;
        pthread_mutex_unlock(&ex->lock);
        if (done)
            done(d);
        pthread_mutex_lock(&ex->lock);
    }
    return NULL;
}

/* Under the lock: one more thread; false if it could not start. */
static bool executor_grow_locked(struct executor *ex)
{
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&thread, &attr, executor_thread, ex);
    pthread_attr_destroy(&attr);
    if (err) {
        uwdf_log("could not start a %s thread: %s", ex->name, strerror(err));
        return false;
    }
    ex->threads++;
    return true;
}

int uwdf_deferred_prepare(enum uwdf_defer_level level)
{
    struct executor *ex = &executors[level];
    pthread_mutex_lock(&ex->lock);
    bool ok = ex->threads > 0 || executor_grow_locked(ex);
    pthread_mutex_unlock(&ex->lock);
    return ok ? 0 : -EAGAIN;
}

void uwdf_deferred_init(struct uwdf_deferred *d, enum uwdf_defer_level level,
                        void (*fn)(struct uwdf_deferred *d), void (*done)(struct uwdf_deferred *d))
{
    uwdf_list_init(&d->link);
    d->fn = fn;
    d->done = done;
    d->level = (uint8_t)level;
    d->queued = false;
    d->closed = false;
    d->running = 0;
}

bool uwdf_deferred_queue(struct uwdf_deferred *d)
{
    struct executor *ex = executor_of(d);
    pthread_mutex_lock(&ex->lock);
    if (d->queued || d->closed) {
        pthread_mutex_unlock(&ex->lock);
        return false;
    }
    d->queued = true;
    uwdf_list_insert_tail(&ex->queue, &d->link);
    ex->queued++;
    /* More work than idle threads: start another while there is room. A
     * failure leaves it for the threads there are. */
    if (ex->queued > ex->waiting && ex->threads < ex->max_threads)
        executor_grow_locked(ex);
    pthread_cond_signal(&ex->work);
    pthread_mutex_unlock(&ex->lock);
    return true;
}

void uwdf_deferred_close(struct uwdf_deferred *d)
{
    struct executor *ex = executor_of(d);
    pthread_mutex_lock(&ex->lock);
    d->closed = true;
    pthread_mutex_unlock(&ex->lock);
}

bool uwdf_deferred_dequeue(struct uwdf_deferred *d)
{
    struct executor *ex = executor_of(d);
    pthread_mutex_lock(&ex->lock);
    bool removed = d->queued;
    if (removed) {
        uwdf_list_remove(&d->link);
        ex->queued--;
        d->queued = false;
        if (!d->running)
            pthread_cond_broadcast(&ex->idle);
    }
    pthread_mutex_unlock(&ex->lock);
    return removed;
}

void uwdf_deferred_flush(struct uwdf_deferred *d)
{
    struct executor *ex = executor_of(d);
    pthread_mutex_lock(&ex->lock);
    while (d->queued || d->running)
        pthread_cond_wait(&ex->idle, &ex->lock);
    pthread_mutex_unlock(&ex->lock);
}

bool uwdf_deferred_running_here(const struct uwdf_deferred *d)
{
    return tls_running == d;
}
