/* The blocking-operation worker: one framework thread that runs the few
 * operations Linux only offers synchronously (BLKDISCARD, BLKZEROOUT,
 * fallocate on some file systems), so a completion thread never stalls on
 * them. Started on first use. */
#include "runtime.h"
#include "worker.h"

#include <errno.h>

static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_cond = PTHREAD_COND_INITIALIZER;
static struct uwdf_work *worker_head, *worker_tail;
static pthread_once_t worker_once = PTHREAD_ONCE_INIT;
static bool worker_ok;

static void *worker_thread(void *arg)
{
    (void)arg;
    uwdf_tls_irql = PASSIVE_LEVEL;
    pthread_mutex_lock(&worker_lock);
    for (;;) {
        while (!worker_head)
            pthread_cond_wait(&worker_cond, &worker_lock);
        struct uwdf_work *w = worker_head;
        worker_head = w->next;
        if (!worker_head)
            worker_tail = NULL;
        pthread_mutex_unlock(&worker_lock);
        w->fn(w);
        pthread_mutex_lock(&worker_lock);
    }
    return NULL;
}

static void worker_start(void)
{
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    worker_ok = pthread_create(&thread, &attr, worker_thread, NULL) == 0;
    pthread_attr_destroy(&attr);
}

int uwdf_worker_queue(struct uwdf_work *w)
{
    pthread_once(&worker_once, worker_start);
    if (!worker_ok)
        return -EAGAIN;
    w->next = NULL;
    pthread_mutex_lock(&worker_lock);
    if (worker_tail)
        worker_tail->next = w;
    else
        worker_head = w;
    worker_tail = w;
    pthread_cond_signal(&worker_cond);
    pthread_mutex_unlock(&worker_lock);
    return 0;
}
