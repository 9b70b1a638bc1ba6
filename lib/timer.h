/* The framework timer (lib/timer.c): one thread, a deadline heap. Not
 * installed. */
#ifndef UWDF_TIMER_H
#define UWDF_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct uwdf_timer {
    int64_t deadline_ns;
    int heap_index; /* -1 when not armed */
    void (*fn)(struct uwdf_timer *t);
};
void uwdf_timer_init(struct uwdf_timer *t, void (*fn)(struct uwdf_timer *t));
/* 0, or -ENOMEM (the heap could not grow). */
int uwdf_timer_arm(struct uwdf_timer *t, int64_t deadline_ns);
/* true: removed before it fired, fn will not run. false: not armed, or
 * fired already (fn has run or is running). */
bool uwdf_timer_cancel(struct uwdf_timer *t);

#endif
