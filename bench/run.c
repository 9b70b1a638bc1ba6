/* The run: a thread per job, started together, each running its phases
 * (the I/O, then the verify pass) through its --api mode's issue, while
 * the main thread monitors them. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "eta.h"
#include "interrupt.h"
#include "io.h"
#include "run.h"
#include "setup.h"
#include "util.h"

/* iodepth_batch_*: waits for the phase's end; with a ramp, the engines'
 * batch counts at its end are kept in the job, to be taken out of the
 * counts at the end (fio resets its counts after the ramp). */
static void wait_phase(struct job *j, bool ramp)
{
    uint64_t sub[UWDF_IO_BATCH_BUCKETS], comp[UWDF_IO_BATCH_BUCKETS];
    if (ramp && j->o.ramp_ns && job_batch_counts(j, sub, comp)) {
        int64_t left = (int64_t)(j->ramp_end_ns - now_ns());
        LARGE_INTEGER to = { .QuadPart = -(left / 100) };
        if (left > 0 && KeWaitForSingleObject(&j->done, Executive, KernelMode, FALSE, &to) != STATUS_TIMEOUT)
            return;
        (void)job_batch_counts(j, j->batch_submits, j->batch_completes);
    }
    KeWaitForSingleObject(&j->done, Executive, KernelMode, FALSE, NULL);
}

/* The batch counts of the run phase, from the end of the ramp. */
static void collect_batch_counts(struct job *j)
{
    uint64_t sub[UWDF_IO_BATCH_BUCKETS], comp[UWDF_IO_BATCH_BUCKETS];
    if (!job_batch_counts(j, sub, comp))
        return;
    for (unsigned i = 0; i < UWDF_IO_BATCH_BUCKETS; i++) {
        j->batch_submits[i] = sub[i] - j->batch_submits[i];
        j->batch_completes[i] = comp[i] - j->batch_completes[i];
    }
    j->batch_counted = true;
}

/* The engines' counts of the job's files since they opened (the verify
 * pass is not in them). */
static void collect_target_counts(struct job *j)
{
    memset(&j->target, 0, sizeof(j->target));
    for (unsigned k = 0; k < j->nfiles; k++) {
        UWDF_IO_TARGET_STATISTICS ts = { .Size = sizeof(ts) };
        if (!j->files[k].target || !NT_SUCCESS(UwdfIoTargetGetStatistics(j->files[k].target, &ts)))
            continue;
        j->target.ops += ts.Operations;
        j->target.fixed_buffer_ops += ts.FixedBufferOperations;
        j->target.fixed_file_ops += ts.FixedFileOperations;
        j->target.registered_buffers += ts.RegisteredBuffers;
        j->target.registered_files += ts.RegisteredFile ? 1 : 0;
    }
}

/* One phase (the run, then the verify pass): every slot issues, the last
 * one to retire wakes the job thread. With iodepth_batch_* the first sends
 * go under a send plug, so they reach the kernel iodepth_batch_submit at a
 * time, as fio's first fill does. */
static void run_phase(struct job *j, bool first)
{
    KeClearEvent(&j->done);
    __atomic_store_n(&j->inflight, (int)j->nslots, __ATOMIC_RELEASE);
    struct shard *own = job_shard(j);
    bool plug = j->o.batch_set && j->o.api == API_ASYNC;
    if (plug)
        UwdfStartSendPlug();
    for (unsigned i = 0; i < j->nslots; i++)
        j->api->issue(&j->slots[i], own, 0);
    if (plug)
        UwdfFinishSendPlug();
    if (!j->rated) {
        wait_phase(j, first);
        return;
    }
    /* rate: the slots parked by the completions, sent at their turn here
     * (next_io waits for it on this thread) */
    while (!KeReadStateEvent(&j->done)) {
        struct slot *s = job_unpark(j, 10 * NS_PER_MS);
        if (s)
            j->api->issue(s, own, 0);
    }
}

/* stonewall: waits for the waves before the job's; false when interrupted
 * meanwhile (the job does not start). */
static bool wait_for_wave(struct job *j)
{
    struct bench_run *run = j->run;
    if (j->wave == 0)
        return true;
    pthread_mutex_lock(&run->wave_lock);
    while (run->wave_left[j->wave - 1] && !stop_requested())
        pthread_cond_wait(&run->wave_cond, &run->wave_lock);
    pthread_mutex_unlock(&run->wave_lock);
    return !stop_requested();
}

static void wave_job_done(struct job *j)
{
    struct bench_run *run = j->run;
    pthread_mutex_lock(&run->wave_lock);
    run->wave_left[j->wave]--;
    run->jobs_left--;
    pthread_cond_broadcast(&run->wave_cond);
    pthread_mutex_unlock(&run->wave_lock);
}

void run_wake_waves(struct bench_run *run)
{
    pthread_mutex_lock(&run->wave_lock);
    pthread_cond_broadcast(&run->wave_cond);
    pthread_mutex_unlock(&run->wave_lock);
}

void run_pause(struct bench_run *run, uint64_t ns)
{
    pthread_mutex_lock(&run->wave_lock);
    if (run->jobs_left) /* one wake-up: a job's end, the deadline (or spurious) */
        (void)cond_wait_ns(&run->wave_cond, &run->wave_lock, ns);
    pthread_mutex_unlock(&run->wave_lock);
}

/* cpus_allowed: the job thread on the set, or (split) on the set's
 * (job number)-th CPU, wrapping as fio does. */
static bool job_pin(struct job *j)
{
    if (!j->o.cpus_set)
        return true;
    cpu_set_t set = j->o.cpus;
    if (j->o.cpus_split) {
        int count = CPU_COUNT(&j->o.cpus), want = (int)(j->index % (unsigned)count);
        CPU_ZERO(&set);
        for (int c = 0, seen = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &j->o.cpus) && seen++ == want) {
                CPU_SET(c, &set);
                break;
            }
    }
    int r = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (r == 0)
        return true;
    if (job_set_error(j, r, STATUS_INVALID_PARAMETER))
        errmsg("%s: cpus_allowed: cannot run on those CPUs: %s", j->o.name, strerror(r));
    return false;
}

static void *job_thread(void *arg)
{
    struct job *j = arg;
    j->self = THIS_THREAD;
    bool pinned = job_pin(j);
    pthread_barrier_wait(&j->run->barrier);
    if (!pinned || !wait_for_wave(j)) {
        j->start_ns = j->ramp_end_ns = j->finish_ns = now_ns();
        __atomic_store_n(&j->phase, PHASE_DONE, __ATOMIC_RELEASE);
        wave_job_done(j);
        return NULL;
    }
    thread_cpu_begin(&j->cpu);
    uint64_t t = now_ns();
    j->start_ns = t;
    j->ramp_end_ns = t + j->o.ramp_ns;
    j->end_ns = j->o.runtime_ns ? j->ramp_end_ns + j->o.runtime_ns : 0;
    __atomic_store_n(&j->phase, PHASE_RUN, __ATOMIC_RELEASE);
    run_phase(j, true);
    collect_batch_counts(j);
    collect_target_counts(j);
    bool failed = __atomic_load_n(&j->error_set, __ATOMIC_ACQUIRE) &&
                  (j->error != EILSEQ || j->o.verify_fatal);
    if (j->o.verify && rw_writes(j->o.rw) && !failed && !stop_requested()) {
        __atomic_store_n(&j->stop, 0, __ATOMIC_RELAXED);
        if (!j->api->renew || j->api->renew(j) == 0) {
            __atomic_store_n(&j->phase, PHASE_VERIFY, __ATOMIC_RELEASE);
            run_phase(j, false);
        }
    }
    j->finish_ns = now_ns();
    thread_cpu_end(&j->cpu);
    __atomic_store_n(&j->phase, PHASE_DONE, __ATOMIC_RELEASE);
    wave_job_done(j);
    return NULL;
}

void run_jobs(struct bench_run *run, struct cpu_use *cpu)
{
    /* Job threads do not take the signals: the handler runs on the main
     * thread (or a framework thread), never inside a job's send. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    clock_init(); /* before any job reads the clock */
    pthread_barrier_init(&run->barrier, NULL, run->njobs + 1);
    run->start_ns = now_ns(); /* before any job reads the clock past the barrier */
    pthread_mutex_init(&run->wave_lock, NULL);
    cond_init_monotonic(&run->wave_cond);
    run->jobs_left = run->njobs;
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; i < run->njobs; i++) {
        int r = pthread_create(&run->jobs[i].thread, NULL, job_thread, &run->jobs[i]);
        if (r) {
            errmsg("cannot start job thread: %s", strerror(r));
            remove_generated_files();
            _exit(1); /* the started threads wait on the barrier */
        }
        run->jobs[i].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    struct rusage ru_start, ru_end;
    pthread_barrier_wait(&run->barrier);
    uint64_t t_start = now_ns(), cpu_t0 = t_start;
    cpu_snapshot(&ru_start);
    monitor(run, t_start, &ru_start, &cpu_t0);
    for (unsigned i = 0; i < run->njobs; i++)
        pthread_join(run->jobs[i].thread, NULL);
    cpu_snapshot(&ru_end);
    uint64_t t_end = now_ns();
    pthread_barrier_destroy(&run->barrier);
    pthread_cond_destroy(&run->wave_cond);
    pthread_mutex_destroy(&run->wave_lock);
    cpu_compute(&ru_start, &ru_end, t_end > cpu_t0 ? t_end - cpu_t0 : 0, cpu);
}

bool run_failed(const struct bench_run *run)
{
    for (unsigned i = 0; i < run->njobs; i++)
        if (run->jobs[i].error_set)
            return true;
    return false;
}
