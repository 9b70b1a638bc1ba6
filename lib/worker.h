/* The framework's worker thread for blocking operations (lib/worker.c).
 * Not installed. */
#ifndef UWDF_WORKER_H
#define UWDF_WORKER_H

struct uwdf_work {
    void (*fn)(struct uwdf_work *w);
    struct uwdf_work *next;
};
/* Run w->fn on the worker thread; 0, or -EAGAIN if it could not start. */
int uwdf_worker_queue(struct uwdf_work *w);

#endif
