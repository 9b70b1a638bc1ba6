/* A lock biased to one owner thread (lib/runtime.c). Not installed.
 *
 * An I/O target's lock is taken twice per I/O by its engine thread when
 * completion routines resend (the completion, the send), and rarely by
 * anyone else (Stop, Purge, Close, cancels, timers, sends from other
 * threads). While that holds, the owner enters with a plain store and a
 * load instead of two locked instructions; another thread first revokes
 * the bias with membarrier(2) (which makes the owner's store visible or
 * lets it see the revocation) and waits for the owner to leave. When
 * other threads come often, the lock stays a plain mutex for everyone
 * until the owner has had it alone for a long run again. Without
 * membarrier, or under ThreadSanitizer (which cannot see that ordering),
 * it is always the plain mutex. */
#ifndef UWDF_BIASED_LOCK_H
#define UWDF_BIASED_LOCK_H

#include "runtime.h"

struct uwdf_biased_lock {
    pthread_mutex_t mutex;
    atomic_int owner_in; /* the owner is inside without the mutex */
    atomic_int revoked;  /* > 0: the owner must take the mutex */
    /* under the mutex */
    bool unbiased;       /* revoked holds one count of its own */
    unsigned revocations;      /* paid by other threads since the bias was set */
    unsigned long owner_run;   /* owner entries since another thread's */
};
void uwdf_biased_lock_init(struct uwdf_biased_lock *l);
/* Starting as a plain mutex, biased only after its owner has had it alone
 * for a long run: for locks many of which never see an owner (a queue
 * that no engine thread uses pays no revocation). */
void uwdf_biased_lock_init_unbiased(struct uwdf_biased_lock *l);
void uwdf_biased_lock_destroy(struct uwdf_biased_lock *l);
/* Any thread; pthread_cond_wait may use &l->mutex while held this way. */
void uwdf_biased_lock_acquire(struct uwdf_biased_lock *l);
void uwdf_biased_lock_release(struct uwdf_biased_lock *l);
/* Held through uwdf_biased_lock_acquire: after the release the lock stays
 * a plain mutex for everyone (false), or is biased to its owner again
 * (true; unless someone else holds a count or it cannot be biased). For
 * a lock whose owner is about to stop taking it while other threads take
 * it several times (an I/O target being closed): one revocation, not one
 * per taking. */
void uwdf_biased_lock_set_bias(struct uwdf_biased_lock *l, bool biased);
void uwdf_biased_lock_owner_slow(struct uwdf_biased_lock *l);
/* The owner thread only (one thread per lock at any time); returns what
 * uwdf_biased_lock_owner_release needs. */
static inline bool uwdf_biased_lock_owner_acquire(struct uwdf_biased_lock *l)
{
    atomic_store_explicit(&l->owner_in, 1, memory_order_relaxed);
    /* The compiler keeps the store before the load; the CPU is made to by
     * the revoker's membarrier. */
    atomic_signal_fence(memory_order_seq_cst);
    if (UWDF_LIKELY(atomic_load_explicit(&l->revoked, memory_order_acquire) == 0))
        return true;
    atomic_store_explicit(&l->owner_in, 0, memory_order_release);
    uwdf_biased_lock_owner_slow(l);
    return false;
}
static inline void uwdf_biased_lock_owner_release(struct uwdf_biased_lock *l, bool fast)
{
    if (fast)
        atomic_store_explicit(&l->owner_in, 0, memory_order_release);
    else
        pthread_mutex_unlock(&l->mutex);
}

#endif
