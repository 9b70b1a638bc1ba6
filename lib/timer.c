/* The framework timer: one thread and a binary heap of monotonic deadlines.
 * It enforces request timeouts where the kernel cannot (libaio, requests
 * pended on a stopped target, stalled completions). Callbacks run on the
 * timer thread at DISPATCH_LEVEL. */
#include "runtime.h"
#include "timer.h"

#include <errno.h>
#include <time.h>

#define TIMER_HEAP_INITIAL 64

static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_cond;
static struct uwdf_timer **heap;
static int heap_len, heap_cap;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;
static bool timer_thread_ok;

static void heap_swap(int a, int b)
{
    struct uwdf_timer *t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
    heap[a]->heap_index = a;
    heap[b]->heap_index = b;
}

static void heap_up(int i)
{
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (heap[parent]->deadline_ns <= heap[i]->deadline_ns)
            break;
        heap_swap(i, parent);
        i = parent;
    }
}

static void heap_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->deadline_ns < heap[m]->deadline_ns)
            m = l;
        if (r < heap_len && heap[r]->deadline_ns < heap[m]->deadline_ns)
            m = r;
        if (m == i)
            break;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove(int i)
{
    struct uwdf_timer *t = heap[i];
    heap_len--;
    if (i != heap_len) {
        heap[i] = heap[heap_len];
        heap[i]->heap_index = i;
        heap_down(i);
        heap_up(i);
    }
    t->heap_index = -1;
}

static void *timer_thread(void *arg)
{
    (void)arg;
    uwdf_tls_irql = DISPATCH_LEVEL;
    pthread_mutex_lock(&timer_lock);
    for (;;) {
        if (heap_len == 0) {
            pthread_cond_wait(&timer_cond, &timer_lock);
            continue;
        }
        struct uwdf_timer *t = heap[0];
        int64_t now = uwdf_mono_ns();
        if (t->deadline_ns > now) {
            struct timespec ts = { .tv_sec = t->deadline_ns / 1000000000,
                                   .tv_nsec = t->deadline_ns % 1000000000 };
            pthread_cond_timedwait(&timer_cond, &timer_lock, &ts);
            continue;
        }
        heap_remove(0);
        pthread_mutex_unlock(&timer_lock);
        t->fn(t);
        pthread_mutex_lock(&timer_lock);
    }
    return NULL;
}

static void timer_start(void)
{
    pthread_condattr_t attr;
    pthread_attr_t tattr;
    pthread_t thread;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&timer_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_attr_init(&tattr);
    pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
    timer_thread_ok = pthread_create(&thread, &tattr, timer_thread, NULL) == 0;
    pthread_attr_destroy(&tattr);
}

void uwdf_timer_init(struct uwdf_timer *t, void (*fn)(struct uwdf_timer *t))
{
    t->heap_index = -1;
    t->fn = fn;
    t->deadline_ns = 0;
}

int uwdf_timer_arm(struct uwdf_timer *t, int64_t deadline_ns)
{
    pthread_once(&timer_once, timer_start);
    if (!timer_thread_ok)
        return -EAGAIN;
    pthread_mutex_lock(&timer_lock);
    if (heap_len == heap_cap) {
        int cap = heap_cap ? heap_cap * 2 : TIMER_HEAP_INITIAL;
        struct uwdf_timer **grown = uwdf_alloc(sizeof(*grown) * (size_t)cap);
        if (!grown) {
            pthread_mutex_unlock(&timer_lock);
            return -ENOMEM;
        }
        if (heap_len)
            memcpy(grown, heap, sizeof(*grown) * (size_t)heap_len);
        uwdf_free(heap);
        heap = grown;
        heap_cap = cap;
    }
    t->deadline_ns = deadline_ns;
    t->heap_index = heap_len;
    heap[heap_len++] = t;
    heap_up(t->heap_index);
    if (heap[0] == t)
        pthread_cond_signal(&timer_cond);
    pthread_mutex_unlock(&timer_lock);
    return 0;
}

bool uwdf_timer_cancel(struct uwdf_timer *t)
{
    bool removed = false;
    pthread_mutex_lock(&timer_lock);
    if (t->heap_index >= 0) {
        heap_remove(t->heap_index);
        removed = true;
    }
    pthread_mutex_unlock(&timer_lock);
    return removed;
}
