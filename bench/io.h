/* One I/O of a slot, the part every --api mode shares: choosing the next
 * (offsets, directions, flushes, the verify pass), accounting the finished
 * one, and the hand-off of its times between the thread that sends and
 * the thread that completes. A mode's issue and completion routine are
 * made of these (api-*.c). */
#ifndef UWDF_BENCH_IO_H
#define UWDF_BENCH_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "job.h"

/* Records the job's first error (later ones are counted by their kind
 * only); false when one was recorded before. */
bool job_set_error(struct job *j, int err, NTSTATUS st);
/* Stops the job after an I/O failed at stage (NULL: its status). */
void job_io_error(struct job *j, const struct slot *s, NTSTATUS st, const char *stage);
/* Picks the slot's next I/O (s->ddir, s->file, s->offset...), or returns
 * false when the job is done. */
bool next_io(struct slot *s, uint64_t now);
/* Accounts a finished I/O (status and info stored) in sh, the shard of the
 * thread it runs on; false when the slot must stop (error). */
/* The job's statistics: shards for the job thread and `threads` completion
 * threads (job_setup), and the calling thread's shard, claimed at its first
 * call for the job. Threads beyond those share the last shard, one at a
 * time, and their CPU is not counted per thread. */
void job_shards_init(struct job *j, unsigned threads);
struct shard *job_shard(struct job *j);
bool slot_finish(struct slot *s, struct shard *sh, bool has_slat, uint64_t slat, uint64_t clat, uint64_t tc);
/* The completion of the slot's I/O at tc (status and info are stored), from
 * the mode's completion routine: accounts it and issues the next. */
void slot_completed(struct slot *s, uint64_t tc);
/* The same where clat starts at the engine's hand-over (0: not known;
 * --clat_start=handover), as fio's clat starts at its engine's submission. */
void slot_completed_handover(struct slot *s, uint64_t tc, uint64_t handover);

/* rate: parks the slot whose I/O next_io chose but whose turn has not
 * come (s->park), for the job thread; and takes the oldest parked one,
 * waiting up to wait_ns for one (NULL: none). */
void slot_park(struct slot *s, struct shard *sh);
struct slot *job_unpark(struct job *j, uint64_t wait_ns);

/* The slot stops counting in the job's depth (it retires or parks). */
static inline void slot_leave_depth(struct slot *s)
{
    if (s->in_depth) {
        s->in_depth = false;
        __atomic_sub_fetch(&s->job->io_inflight, 1, __ATOMIC_RELAXED);
    }
}

/* sh: the calling thread's shard, whose CPU use ends here (the job may be
 * gone after the last retire). */
static inline void slot_retire(struct slot *s, struct shard *sh)
{
    struct job *j = s->job;
    slot_leave_depth(s);
    thread_cpu_end(&sh->cpu);
    if (__atomic_sub_fetch(&j->inflight, 1, __ATOMIC_ACQ_REL) == 0)
        KeSetEvent(&j->done, 0, FALSE); /* nothing of j or s is touched after this */
}

/* The sender's half of the hand-off of s->sync, once the send returned at
 * t1: the completion time if the completion ran nested in the send on this
 * thread (its time is in s->sync), else 0 after storing t1 for the
 * completion to come. A completion on another thread only waits for t1 and
 * one later on this thread finds it, so no read-modify-write is needed. */
static inline uint64_t slot_sent(struct slot *s, uint64_t t1)
{
    uint64_t tc = __atomic_load_n(&s->sync, __ATOMIC_RELAXED);
    if (tc == 0)
        __atomic_store_n(&s->sync, t1, __ATOMIC_RELEASE);
    return tc;
}

/* Right before the send of an I/O that started at t0. Its depth: the
 * slot's previous I/O, just completed, leaves its place in io_inflight to
 * this one, so a resend takes no locked read-modify-write (one add per
 * run of the slot instead of an add and a subtract per I/O; the same
 * counts). */
static inline void slot_sending(struct slot *s, uint64_t t0)
{
    if (s->in_depth) {
        s->depth = __atomic_load_n(&s->job->io_inflight, __ATOMIC_RELAXED);
    } else {
        s->in_depth = true;
        s->depth = __atomic_add_fetch(&s->job->io_inflight, 1, __ATOMIC_RELAXED);
    }
    s->t0 = t0;
    s->sender = THIS_THREAD;
    __atomic_store_n(&s->sync, 0, __ATOMIC_RELAXED);
}

/* slat and clat of an asynchronous I/O completed at tc. t1: when the send
 * returned; where clat starts unless the engine's hand-over time is known
 * (handover: 0 if not). */
static inline __attribute__((always_inline)) void slot_async_times(const struct slot *s, uint64_t t1, uint64_t tc,
                                                                   uint64_t handover, uint64_t *slat, uint64_t *clat)
{
    if (handover) /* clocks of two origins (bench/clock.h): kept in order */
        t1 = handover < s->t0 ? s->t0 : handover > tc ? tc : handover;
    if (tc >= t1) {
        *slat = t1 - s->t0;
        *clat = tc - t1;
    } else { /* completed before the send returned */
        *slat = tc - s->t0;
        *clat = 0;
    }
}

static inline __attribute__((always_inline)) bool slot_complete_async(struct slot *s, struct shard *sh, uint64_t t1,
                                                                      uint64_t tc, uint64_t handover)
{
    uint64_t slat, clat;
    slot_async_times(s, t1, tc, handover, &slat, &clat);
    return slot_finish(s, sh, true, slat, clat, tc);
}

/* An asynchronous mode's issue: sends the slot's I/Os until one is left in
 * flight (the mode's completion routine continues from there) or the job
 * is done. send(s, t0) readies and sends the slot's current I/O, calling
 * slot_sending just before the send; false when it failed (reported).
 * Runs on the job thread (first sends, t0 = 0: the clock is read) or on a
 * completion thread (resends from the routine, batched into the ring by
 * the framework). A resend starts at t0 = the completion time of the
 * slot's previous I/O: the slot is free from that moment, so the routine's
 * accounting counts in the new I/O's slat and lat, and the clock is read
 * twice per I/O, not three times. Allocation-free when requests are
 * reused. Inlined into each mode's issue with its own send. */
static inline __attribute__((always_inline)) void slot_issue_loop(struct slot *s, struct shard *sh, uint64_t t0,
                                                                  bool (*send)(struct slot *s, uint64_t t0))
{
    for (;;) {
        if (t0 == 0)
            t0 = now_ns();
        if (!next_io(s, t0)) {
            if (s->park) {
                slot_park(s, sh);
                return;
            }
            break;
        }
        if (s->job->rated)
            t0 = now_ns(); /* it may have waited for its turn */
        if (!send(s, t0))
            break;
        /* Where clat starts at the hand-over, the send's return time is
         * only the mark that the send returned (its start serves, one clock
         * read less per I/O) unless the I/O completed nested in the send. An
         * I/O that has no hand-over time after all then counts from its
         * start as clat. */
        bool at_handover = s->job->clat_at_handover;
        uint64_t t1 = at_handover ? t0 : now_ns();
        uint64_t tc = slot_sent(s, t1);
        if (tc == 0)
            return; /* in flight: the completion routine takes over */
        /* The routine already ran, nested inside the send on this thread
         * (an immediate failure): finish here. */
        if (at_handover)
            t1 = now_ns();
        if (!slot_complete_async(s, sh, t1, tc, 0))
            break;
        t0 = tc; /* see above: the next I/O starts where this one ended */
    }
    slot_retire(s, sh);
}

#endif
