/* Engines shared by many targets (lib/pool.c, lib/engine.c): what stays
 * per target when targets share an engine's ring and completion thread.
 * Most tests set the pool to one engine, so every file target of the test
 * shares it, and keep neighbours busy with reads (tu_reader) that must all
 * succeed, exactly once, while one target is stopped, purged, closed,
 * timed out, cancelled, failed by its file or deleted. Both engines. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK 4096u
#define FILE_SIZE (TU_READER_BLOCKS * BLK)
#define SEED 2300u
#define NEIGHBOURS 3
#define DEPTH 2
#define PROGRESS 20          /* neighbour reads that must complete meanwhile */
#define WAIT_MS 10000        /* generous: valgrind and a busy machine */
#define PROMPT_MS 150.0      /* what counts as "at once" */
#define STALL_MS 400
#define TEST_TIMEOUT_SEC 120

/* ---- helpers ---- */

struct neighbours {
    struct tu_reader r[NEIGHBOURS];
    char *path[NEIGHBOURS];
};

static void neighbours_start(struct tu_env *e, struct neighbours *n)
{
    for (int i = 0; i < NEIGHBOURS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "neighbour%d", i);
        n->path[i] = tu_env_file(e, name, FILE_SIZE, SEED + 10 + (unsigned)i);
        tu_reader_start(&n->r[i], e->device, n->path[i], SEED + 10 + (unsigned)i, DEPTH);
    }
}

/* Every neighbour completes PROGRESS more reads. */
static void neighbours_progress(struct neighbours *n, const char *when)
{
    for (int i = 0; i < NEIGHBOURS; i++)
        ck_assert_msg(tu_reader_progresses(&n->r[i], PROGRESS, WAIT_MS), "neighbour %d stalled %s", i, when);
}

static void neighbours_stop(struct neighbours *n)
{
    for (int i = 0; i < NEIGHBOURS; i++) {
        tu_reader_stop(&n->r[i]);
        free(n->path[i]);
    }
}

/* Most tests' setting: a pool of one engine, busy neighbours on it, and a
 * file (pattern SEED) for the test's own targets. */
struct shared {
    struct tu_env e;
    struct neighbours n;
    char *path;
};

static void shared_init(struct shared *sh, int backend)
{
    tu_env_init_backend(&sh->e, backend);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    sh->path = tu_env_file(&sh->e, "victim", FILE_SIZE, SEED);
    neighbours_start(&sh->e, &sh->n);
}

/* Stops the neighbours (every read of theirs succeeded, exactly once). */
static void shared_fini(struct shared *sh)
{
    neighbours_stop(&sh->n);
    free(sh->path);
    tu_env_fini(&sh->e);
}

/* One asynchronous 4 KiB read of t at off into a fresh request. */
struct read_op {
    WDFREQUEST req;
    WDFMEMORY mem;
    void *buf;
    struct tu_completion c;
};

static void read_send(struct read_op *op, WDFIOTARGET t, uint64_t off, PWDF_REQUEST_SEND_OPTIONS options)
{
    op->req = tu_make_request(t);
    op->mem = tu_make_memory(BLK, &op->buf);
    memset(op->buf, 0xEE, BLK);
    tu_completion_init(&op->c);
    LONGLONG o = (LONGLONG)off;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, op->req, op->mem, NULL, &o), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(op->req, tu_on_complete, &op->c);
    ck_assert(WdfRequestSend(op->req, t, options));
}

static void read_done(struct read_op *op)
{
    WdfObjectDelete(op->req);
    WdfObjectDelete(op->mem);
    tu_completion_fini(&op->c);
}

/* Waits for op's completion and checks it came once, with status. */
static void read_expect(struct read_op *op, NTSTATUS status)
{
    ck_assert_msg(tu_completion_wait(&op->c, WAIT_MS), "read not completed");
    ck_assert_int_eq(tu_ncalls(&op->c), 1);
    ck_assert_status(op->c.status, status);
}

static WDF_REQUEST_SEND_OPTIONS timeout_ms(LONGLONG ms)
{
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(ms));
    return o;
}

/* A sent read that stays pended (stopped target) or in flight for 50 ms. */
static void expect_not_completed(struct read_op *op)
{
    tu_sleep_ms(50);
    ck_assert_int_eq(tu_ncalls(&op->c), 0);
}

/* The engine threads number n within WAIT_MS (a joined thread may linger
 * in /proc a moment after pthread_join). */
static void expect_threads(long n)
{
    double end = tu_now_ms() + WAIT_MS;
    long now;
    while ((now = tu_engine_threads()) != n && tu_now_ms() < end)
        tu_sleep_ms(1);
    ck_assert_int_eq(now, n);
}

/* Open descriptors, less the one that reads the directory. */
static int count_fds(void)
{
    return tu_count_entries("/proc/self/fd") - 1;
}

/* ---- sharing ---- */

/* n files f0, f1, ... of FILE_SIZE, file i with the pattern SEED + i. */
static void make_files(struct tu_env *e, char **path, int n)
{
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        path[i] = tu_env_file(e, name, FILE_SIZE, SEED + (unsigned)i);
    }
}

/* With a pool of one engine, six targets complete on one thread (one
 * thread added), at DISPATCH_LEVEL; with two, on two. The engine goes with
 * the last target: no thread is left. */
START_TEST(targets_share_the_pool_engines)
{
    struct tu_env e;
    struct tu_reader r[6];
    char *path[6];
    tu_env_init_backend(&e, _i);
    make_files(&e, path, 6);
    long t0 = tu_engine_threads();
    for (unsigned engines = 1; engines <= 2; engines++) {
        ck_assert_status(UwdfSetEnginePoolSize(engines), STATUS_SUCCESS);
        ck_assert_uint_eq(UwdfGetEnginePoolSize(), engines);
        for (int i = 0; i < 6; i++)
            tu_reader_start(&r[i], e.device, path[i], SEED + (unsigned)i, DEPTH);
        for (int i = 0; i < 6; i++)
            ck_assert(tu_reader_progresses(&r[i], PROGRESS, WAIT_MS));
        expect_threads(t0 + (long)engines);
        pthread_t seen[6];
        int distinct = 0;
        for (int i = 0; i < 6; i++) {
            ck_assert_msg(!atomic_load(&r[i].threads_differ), "target %d completed on two threads", i);
            pthread_t th = atomic_load(&r[i].thread);
            bool known = false;
            for (int k = 0; k < distinct; k++)
                known |= pthread_equal(seen[k], th) != 0;
            if (!known)
                seen[distinct++] = th;
        }
        ck_assert_int_eq(distinct, (int)engines);
        for (int i = 0; i < 6; i++)
            tu_reader_stop(&r[i]);
        expect_threads(t0);
    }
    for (int i = 0; i < 6; i++)
        free(path[i]);
    tu_env_fini(&e);
}
END_TEST

/* The engine thread readers r[from, to) complete on: one, the same for all. */
static pthread_t readers_one_thread(struct tu_reader *r, int from, int to)
{
    for (int i = from; i < to; i++)
        ck_assert(tu_reader_progresses(&r[i], PROGRESS, WAIT_MS));
    pthread_t th = atomic_load(&r[from].thread);
    for (int i = from; i < to; i++) {
        ck_assert_msg(!atomic_load(&r[i].threads_differ), "target %d completed on two threads", i);
        ck_assert_msg(pthread_equal(atomic_load(&r[i].thread), th), "target %d left its group's engine", i);
    }
    return th;
}

/* With a pool of two engines, the targets one thread opens in an engine
 * group all join the engine its first one got (one thread added), a new
 * group starts where the pool places it (the other engine), and after
 * UwdfFinishEngineGroup the pool places each target again (on the less
 * loaded engine, not the last group's). A group whose engine stopped with its
 * last target places the next target afresh. Every read is right. */
START_TEST(targets_opened_in_an_engine_group_share_one_engine)
{
    struct tu_env e;
    enum { N = 8 };
    struct tu_reader r[N];
    char *path[N];
    tu_env_init_backend(&e, _i);
    make_files(&e, path, N);
    long t0 = tu_engine_threads();
    ck_assert_status(UwdfSetEnginePoolSize(2), STATUS_SUCCESS);
    UwdfStartEngineGroup();
    for (int i = 0; i < 2; i++)
        tu_reader_start(&r[i], e.device, path[i], SEED + (unsigned)i, DEPTH);
    expect_threads(t0 + 1);
    pthread_t a = readers_one_thread(r, 0, 2);
    UwdfStartEngineGroup(); /* a new group: placed by the pool, on a new engine */
    for (int i = 2; i < 6; i++)
        tu_reader_start(&r[i], e.device, path[i], SEED + (unsigned)i, DEPTH);
    expect_threads(t0 + 2);
    pthread_t b = readers_one_thread(r, 2, 6);
    ck_assert(!pthread_equal(a, b));
    UwdfFinishEngineGroup(); /* the pool places each: a serves 2 targets, b 4 */
    for (int i = 6; i < 8; i++)
        tu_reader_start(&r[i], e.device, path[i], SEED + (unsigned)i, DEPTH);
    ck_assert(pthread_equal(readers_one_thread(r, 6, 8), a));
    expect_threads(t0 + 2);
    for (int i = 0; i < N; i++)
        tu_reader_stop(&r[i]);
    expect_threads(t0);
    /* the group's engine stopped with its last target: the next one gets a
     * running engine, and its reads are right */
    UwdfStartEngineGroup();
    tu_reader_start(&r[0], e.device, path[0], SEED, DEPTH);
    tu_reader_stop(&r[0]);
    expect_threads(t0);
    tu_reader_start(&r[0], e.device, path[0], SEED, DEPTH);
    tu_reader_start(&r[1], e.device, path[1], SEED + 1, DEPTH);
    expect_threads(t0 + 1);
    readers_one_thread(r, 0, 2);
    tu_reader_stop(&r[0]);
    tu_reader_stop(&r[1]);
    UwdfFinishEngineGroup();
    expect_threads(t0);
    ck_assert_status(UwdfSetEnginePoolSize(0), STATUS_SUCCESS);
    for (int i = 0; i < N; i++)
        free(path[i]);
    tu_env_fini(&e);
}
END_TEST

/* The pool's size is set while nothing (then only idle targets) is open:
 * a bad size is refused, a larger one starts engines as targets open, a
 * smaller one starts none and leaves running engines to their targets; the
 * I/O of every target is right throughout, and 0 restores the default. */
START_TEST(engine_pool_resize_while_idle)
{
    struct tu_env e;
    enum { N = 9 };
    WDFIOTARGET t[N];
    char *path[N];
    tu_env_init_backend(&e, _i);
    ULONG dflt = UwdfGetEnginePoolSize();
    ck_assert_uint_ge(dflt, 1);
    ck_assert_status(UwdfSetEnginePoolSize(UWDF_MAX_ENGINE_POOL_SIZE + 1), STATUS_INVALID_PARAMETER);
    ck_assert_uint_eq(UwdfGetEnginePoolSize(), dflt);
    make_files(&e, path, N);
    long t0 = tu_engine_threads();
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    for (int i = 0; i < 4; i++)
        t[i] = tu_env_target(&e, path[i], GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    expect_threads(t0 + 1);
    ck_assert_status(UwdfSetEnginePoolSize(3), STATUS_SUCCESS); /* four targets open, idle */
    for (int i = 4; i < 7; i++)
        t[i] = tu_env_target(&e, path[i], GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    expect_threads(t0 + 3);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    for (int i = 7; i < N; i++)
        t[i] = tu_env_target(&e, path[i], GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    expect_threads(t0 + 3);
    for (int i = 0; i < N; i++) {
        struct read_op op;
        read_send(&op, t[i], (uint64_t)(i % TU_READER_BLOCKS) * BLK, WDF_NO_SEND_OPTIONS);
        read_expect(&op, STATUS_SUCCESS);
        ck_assert_uint_eq(op.c.information, BLK);
        ck_assert(tu_pattern_matches(op.buf, BLK, SEED + (unsigned)i, (uint64_t)(i % TU_READER_BLOCKS) * BLK));
        read_done(&op);
    }
    for (int i = 0; i < N; i++)
        WdfObjectDelete(t[i]);
    expect_threads(t0);
    ck_assert_status(UwdfSetEnginePoolSize(0), STATUS_SUCCESS);
    ck_assert_uint_eq(UwdfGetEnginePoolSize(), dflt);
    for (int i = 0; i < N; i++)
        free(path[i]);
    tu_env_fini(&e);
}
END_TEST

/* ---- per-target state on a shared engine ---- */

/* One target of a shared engine goes through Stop with each action, Start,
 * Purge with each action and Close, with reads pended and resubmitted, while
 * its neighbours on the same engine keep completing reads, all of them
 * successfully. */
START_TEST(stop_purge_close_one_target_while_neighbours_run)
{
    struct shared sh;
    shared_init(&sh, _i);
    struct neighbours *n = &sh.n;
    WDFIOTARGET v = tu_env_target(&sh.e, sh.path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    const WDF_IO_TARGET_SENT_IO_ACTION actions[] = { WdfIoTargetCancelSentIo, WdfIoTargetWaitForSentIoToComplete,
                                                     WdfIoTargetLeaveSentIoPending };
    for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++) {
        struct read_op sent, pended;
        read_send(&sent, v, 0, WDF_NO_SEND_OPTIONS);
        WdfIoTargetStop(v, actions[a]);
        ck_assert_int_eq(WdfIoTargetGetState(v), WdfIoTargetStopped);
        read_send(&pended, v, BLK, WDF_NO_SEND_OPTIONS);
        expect_not_completed(&pended);
        neighbours_progress(n, "while a neighbour was stopped");
        ck_assert_status(WdfIoTargetStart(v), STATUS_SUCCESS);
        read_expect(&pended, STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(pended.buf, BLK, SEED, BLK));
        /* The read sent before the stop: done, or cancelled by that stop. */
        ck_assert(tu_completion_wait(&sent.c, WAIT_MS));
        if (actions[a] == WdfIoTargetCancelSentIo && sent.c.status != STATUS_SUCCESS)
            ck_assert_status(sent.c.status, STATUS_CANCELLED);
        else
            ck_assert_status(sent.c.status, STATUS_SUCCESS);
        read_done(&sent);
        read_done(&pended);
    }
    const WDF_IO_TARGET_PURGE_IO_ACTION purges[] = { WdfIoTargetPurgeIoAndWait, WdfIoTargetPurgeIo };
    for (size_t a = 0; a < sizeof(purges) / sizeof(purges[0]); a++) {
        struct read_op pended, refused;
        WdfIoTargetStop(v, WdfIoTargetLeaveSentIoPending);
        read_send(&pended, v, 2 * BLK, WDF_NO_SEND_OPTIONS);
        WdfIoTargetPurge(v, purges[a]);
        read_expect(&pended, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        ck_assert_int_eq(WdfIoTargetGetState(v), WdfIoTargetPurged);
        refused.req = tu_make_request(v);
        refused.mem = tu_make_memory(BLK, &refused.buf);
        tu_completion_init(&refused.c);
        ck_assert_status(WdfIoTargetFormatRequestForRead(v, refused.req, refused.mem, NULL, NULL), STATUS_SUCCESS);
        ck_assert(!WdfRequestSend(refused.req, v, WDF_NO_SEND_OPTIONS));
        ck_assert_status(WdfRequestGetStatus(refused.req), STATUS_INVALID_DEVICE_STATE);
        neighbours_progress(n, "while a neighbour was purged");
        ck_assert_status(WdfIoTargetStart(v), STATUS_SUCCESS);
        read_done(&pended);
        read_done(&refused);
    }
    struct read_op pended;
    WdfIoTargetStop(v, WdfIoTargetLeaveSentIoPending);
    read_send(&pended, v, 3 * BLK, WDF_NO_SEND_OPTIONS);
    WdfIoTargetClose(v);
    read_expect(&pended, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
    read_done(&pended);
    neighbours_progress(n, "after a neighbour closed");
    WdfObjectDelete(v);
    shared_fini(&sh);
}
END_TEST

/* WdfIoTargetStop with WaitForSentIoToComplete waits for its own target's
 * I/O only: with every completion held back (the stall injector), a target
 * with nothing in flight stops at once although its neighbours on the same
 * engine have reads in flight; with a read of its own in flight it waits
 * for it; with CancelSentIo its read is cancelled and the neighbours' are
 * not (they all succeed). */
START_TEST(stop_waits_only_for_its_own_io)
{
    struct shared sh;
    shared_init(&sh, _i);
    struct neighbours *n = &sh.n;
    WDFIOTARGET v = tu_env_target(&sh.e, sh.path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    neighbours_progress(n, "at the start");
    UwdfFaultInjectStall(STALL_MS);
    tu_sleep_ms(20); /* the neighbours' reads now wait in the injector */
    double t0 = tu_now_ms();
    WdfIoTargetStop(v, WdfIoTargetWaitForSentIoToComplete);
    ck_assert_msg(tu_now_ms() - t0 < PROMPT_MS, "Stop waited %.1f ms for its neighbours' I/O", tu_now_ms() - t0);
    ck_assert_status(WdfIoTargetStart(v), STATUS_SUCCESS);

    struct read_op own;
    read_send(&own, v, 0, WDF_NO_SEND_OPTIONS);
    t0 = tu_now_ms();
    WdfIoTargetStop(v, WdfIoTargetWaitForSentIoToComplete);
    ck_assert_int_eq(tu_ncalls(&own.c), 1); /* its routine ran before Stop returned */
    ck_assert_msg(tu_now_ms() - t0 > STALL_MS / 4, "Stop returned after %.1f ms, before its own stalled read",
                  tu_now_ms() - t0);
    ck_assert_status(own.c.status, STATUS_SUCCESS);
    read_done(&own);
    ck_assert_status(WdfIoTargetStart(v), STATUS_SUCCESS);

    read_send(&own, v, BLK, WDF_NO_SEND_OPTIONS);
    tu_sleep_ms(20);
    t0 = tu_now_ms();
    WdfIoTargetStop(v, WdfIoTargetCancelSentIo);
    ck_assert_msg(tu_now_ms() - t0 < PROMPT_MS, "Stop(CancelSentIo) took %.1f ms", tu_now_ms() - t0);
    read_expect(&own, STATUS_CANCELLED);
    read_done(&own);
    UwdfFaultInjectStall(0);
    neighbours_progress(n, "after the stall");
    WdfObjectDelete(v);
    shared_fini(&sh); /* none of theirs was cancelled */
}
END_TEST

/* Timeouts and cancels of one target's requests leave its neighbours'
 * requests on the same engine alone. With the stall injector (both
 * engines, the framework timer): a read with a 100 ms timeout ends with
 * STATUS_IO_TIMEOUT, a cancelled one with STATUS_CANCELLED, while the
 * neighbours' stalled reads all succeed. On io_uring also FIFO reads that
 * only a kernel-linked timeout or a kernel cancel can end. */
START_TEST(timeouts_and_cancels_leave_neighbours_alone)
{
    struct shared sh;
    shared_init(&sh, _i);
    struct neighbours *n = &sh.n;
    struct tu_env *e = &sh.e;
    WDFIOTARGET a = tu_env_target(e, sh.path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    WDFIOTARGET b = tu_env_target(e, sh.path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    neighbours_progress(n, "at the start");

    UwdfFaultInjectStall(STALL_MS);
    struct read_op timed, cancelled;
    WDF_REQUEST_SEND_OPTIONS o = timeout_ms(100);
    read_send(&timed, a, 0, &o);
    read_send(&cancelled, b, BLK, WDF_NO_SEND_OPTIONS);
    tu_sleep_ms(20);
    ck_assert(WdfRequestCancelSentRequest(cancelled.req));
    read_expect(&cancelled, STATUS_CANCELLED);
    read_expect(&timed, STATUS_IO_TIMEOUT); /* had the stall run out first, it would have succeeded */
    read_done(&timed);
    read_done(&cancelled);
    UwdfFaultInjectStall(0);
    neighbours_progress(n, "after the stall");

    if (_i == 0) { /* io_uring: FIFOs, kernel-linked timeout and kernel cancel */
        WDFIOTARGET fa = tu_env_open_fifo(e), fb = tu_env_target(e, e->path, GENERIC_READ, 0);
        o = timeout_ms(100);
        read_send(&timed, fa, 0, &o);
        read_send(&cancelled, fb, 0, WDF_NO_SEND_OPTIONS);
        expect_not_completed(&cancelled);
        ck_assert(WdfRequestCancelSentRequest(cancelled.req));
        read_expect(&cancelled, STATUS_CANCELLED);
        read_expect(&timed, STATUS_IO_TIMEOUT);
        read_done(&timed);
        read_done(&cancelled);
        neighbours_progress(n, "after the FIFO reads");
        WdfObjectDelete(fa);
        WdfObjectDelete(fb);
    }
    WdfObjectDelete(a);
    WdfObjectDelete(b);
    shared_fini(&sh);
}
END_TEST

/* ---- a target deleted in its neighbour's completion routine ---- */

struct deleter {
    WDFIOTARGET victim;
    atomic_int destroyed;   /* the victim's EvtDestroyCallback ran */
    atomic_int routine_done;
    double routine_ms;      /* how long WdfObjectDelete took in the routine */
    KIRQL irql;
};
static struct deleter *g_deleter;

static VOID victim_destroyed(WDFOBJECT Object)
{
    (void)Object;
    atomic_fetch_add(&g_deleter->destroyed, 1);
}

static VOID delete_victim(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                          WDFCONTEXT Context)
{
    struct deleter *d = Context;
    (void)Request;
    (void)Target;
    (void)Params;
    d->irql = KeGetCurrentIrql();
    double t0 = tu_now_ms();
    WdfObjectDelete(d->victim);
    d->routine_ms = tu_now_ms() - t0;
    atomic_store(&d->routine_done, 1);
}

static void wait_for(atomic_int *v, const char *what)
{
    double end = tu_now_ms() + WAIT_MS;
    while (!atomic_load(v)) {
        ck_assert_msg(tu_now_ms() < end, "%s never happened", what);
        tu_sleep_ms(1);
    }
}

/* Target A's completion routine deletes target B, on the engine thread
 * that also completes B's I/O (pool of one). With nothing of B in flight
 * the delete closes B there and then; with a read of B in flight (held by
 * the stall injector) or pended on B (stopped), waiting there would wait
 * for the thread itself: the routine returns at once, B's read completes
 * exactly once (cancelled, or done if it came back first; a pended one is
 * failed as not sent), the close finishes on the worker thread and B is
 * destroyed, its descriptor closed. A and the neighbours go on. */
START_TEST(target_deleted_in_a_neighbours_completion_routine)
{
    static const char *const how[] = { "idle", "read in flight", "read pended" };
    struct shared sh;
    shared_init(&sh, _i);
    struct neighbours *n = &sh.n;
    const char *path = sh.path;
    WDFIOTARGET a = tu_env_target(&sh.e, path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    for (int k = 0; k < 3; k++) {
        struct deleter d = { 0 };
        g_deleter = &d;
        WDF_OBJECT_ATTRIBUTES attrs;
        WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
        attrs.EvtDestroyCallback = victim_destroyed;
        ck_assert_status(WdfIoTargetCreate(sh.e.device, &attrs, &d.victim), STATUS_SUCCESS);
        WDF_IO_TARGET_OPEN_PARAMS op;
        UNICODE_STRING us;
        WCHAR wbuf[4096];
        tu_unicode(&us, wbuf, 4096, path);
        WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&op, &us, GENERIC_READ);
        op.CreateOptions = FILE_NO_INTERMEDIATE_BUFFERING;
        ck_assert_status(WdfIoTargetOpen(d.victim, &op), STATUS_SUCCESS);
        int fds = count_fds();

        struct read_op bread = { 0 }, aread;
        if (k == 1) {
            UwdfFaultInjectStall(STALL_MS);
            tu_sleep_ms(20);
        }
        if (k == 2) { /* pended on B before A's routine can run */
            WdfIoTargetStop(d.victim, WdfIoTargetLeaveSentIoPending);
            read_send(&bread, d.victim, BLK, WDF_NO_SEND_OPTIONS);
        }
        aread.req = tu_make_request(a);
        aread.mem = tu_make_memory(BLK, &aread.buf);
        tu_completion_init(&aread.c);
        ck_assert_status(WdfIoTargetFormatRequestForRead(a, aread.req, aread.mem, NULL, NULL), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(aread.req, delete_victim, &d);
        ck_assert(WdfRequestSend(aread.req, a, WDF_NO_SEND_OPTIONS));
        if (k == 1) /* after A's: held back longer, so in flight when A's routine runs */
            read_send(&bread, d.victim, BLK, WDF_NO_SEND_OPTIONS);
        wait_for(&d.routine_done, "A's completion routine");
        ck_assert_int_eq(d.irql, DISPATCH_LEVEL);
        ck_assert_msg(d.routine_ms < PROMPT_MS, "%s: WdfObjectDelete in the routine took %.1f ms", how[k],
                      d.routine_ms);
        UwdfFaultInjectStall(0);
        if (k > 0) {
            ck_assert_msg(tu_completion_wait(&bread.c, WAIT_MS), "%s: B's read never completed", how[k]);
            tu_sleep_ms(20);
            ck_assert_int_eq(tu_ncalls(&bread.c), 1);
            if (k == 1)
                ck_assert_msg(bread.c.status == STATUS_CANCELLED || bread.c.status == STATUS_SUCCESS,
                              "%s: " TU_STATUS_FMT, how[k], TU_STATUS_ARG(bread.c.status));
            else
                ck_assert_status(bread.c.status, STATUS_WDF_DEVICE_REMOVED_NOT_SENT);
        }
        wait_for(&d.destroyed, "B's destruction");
        ck_assert_int_eq(atomic_load(&d.destroyed), 1);
        if (k > 0)
            read_done(&bread); /* B's request outlived B */
        ck_assert_int_eq(count_fds(), fds - 1);
        WdfObjectDelete(aread.req);
        WdfObjectDelete(aread.mem);
        tu_completion_fini(&aread.c);
        /* A goes on. */
        read_send(&aread, a, 2 * BLK, WDF_NO_SEND_OPTIONS);
        read_expect(&aread, STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(aread.buf, BLK, SEED, 2 * BLK));
        read_done(&aread);
        neighbours_progress(n, how[k]);
    }
    WdfObjectDelete(a);
    shared_fini(&sh);
}
END_TEST

/* ---- a target whose file fails ---- */

/* A file on a full tmpfs: every write fails with STATUS_DISK_FULL (ENOSPC
 * from the kernel), on the same engine as neighbours whose reads all
 * succeed. The failing target does enough I/O to get a registered-file
 * slot on io_uring; closing it must let go of the file at once, so the
 * tmpfs unmounts right after (EBUSY otherwise). Root only (mount). */
START_TEST(failing_file_beside_healthy_neighbours)
{
    struct tu_env e;
    struct neighbours n;
    if (!tu_root())
        return;
    /* A mount namespace of the test's own (when it has no threads yet, as
     * a forked test has not): a failed test's tmpfs goes with it. */
    if (unshare(CLONE_NEWNS) == 0)
        ck_assert_int_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, ""), 0);
    tu_env_init_backend(&e, _i);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    char *mnt = tu_env_path(&e, "full");
    ck_assert_int_eq(mkdir(mnt, 0700), 0);
    ck_assert_msg(mount("uwdf-full", mnt, "tmpfs", 0, "size=64k") == 0, "mount tmpfs: %s", strerror(errno));
    /* Fill it. */
    char *filler, *victim;
    ck_assert_int_ge(asprintf(&filler, "%s/filler", mnt), 0);
    ck_assert_int_ge(asprintf(&victim, "%s/victim", mnt), 0);
    int fd = open(filler, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    char page[BLK];
    memset(page, 0x5A, sizeof(page));
    while (write(fd, page, sizeof(page)) == (ssize_t)sizeof(page))
        ;
    ck_assert_int_eq(errno, ENOSPC);
    close(fd);

    neighbours_start(&e, &n);
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(e.device, victim, GENERIC_READ | GENERIC_WRITE, FILE_OPEN_IF, 0, &t),
                     STATUS_SUCCESS);
    WDFREQUEST req = tu_make_request(t);
    void *buf;
    WDFMEMORY mem = tu_make_memory(BLK, &buf);
    memset(buf, 0xA5, BLK);
    for (int i = 0; i < 80; i++) {
        struct tu_completion c;
        WDF_REQUEST_REUSE_PARAMS reuse;
        WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(req, &reuse), STATUS_SUCCESS);
        tu_completion_init(&c);
        LONGLONG off = (LONGLONG)(i % 4) * BLK;
        ck_assert_status(WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(req, tu_on_complete, &c);
        ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
        ck_assert(tu_completion_wait(&c, WAIT_MS));
        ck_assert_status_msg(c.status, STATUS_DISK_FULL, "write %d on a full tmpfs", i);
        tu_completion_fini(&c);
    }
    neighbours_progress(&n, "beside the failing file");
    UWDF_IO_TARGET_STATISTICS st = { .Size = sizeof(st) };
    ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(st.Operations, 80);
    ck_assert_int_eq(st.RegisteredFile, _i == 0); /* io_uring: a slot after 8 ops */
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    WdfObjectDelete(t);
    ck_assert_msg(umount(mnt) == 0, "umount after closing the target: %s", strerror(errno));
    neighbours_stop(&n);
    free(filler);
    free(victim);
    free(mnt);
    tu_env_fini(&e);
}
END_TEST

/* ---- the submit policy (UwdfSetEngineSubmitBatch) ---- */

/* Its arguments are checked and 0 restores the default; targets sharing an
 * engine read their own files' data whatever the policy, also when it
 * changes while they run (the engines apply it from their next pass). How
 * many operations each system call carries is counted under strace by
 * tests/bench/test_bench_batch.py. */
START_TEST(submit_policy_keeps_shared_targets_right)
{
    struct tu_env e;
    struct neighbours n;
    tu_env_init_backend(&e, _i);
    ULONG dflt = UwdfGetEngineSubmitBatch();
    ck_assert_status(UwdfSetEngineSubmitBatch(UWDF_MAX_ENGINE_SUBMIT_BATCH + 1), STATUS_INVALID_PARAMETER);
    ck_assert_uint_eq(UwdfGetEngineSubmitBatch(), dflt);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    ck_assert_status(UwdfSetEngineSubmitBatch(1), STATUS_SUCCESS);
    ck_assert_uint_eq(UwdfGetEngineSubmitBatch(), 1);
    neighbours_start(&e, &n);
    neighbours_progress(&n, "submitting one read per system call");
    ck_assert_status(UwdfSetEngineSubmitBatch(UWDF_MAX_ENGINE_SUBMIT_BATCH), STATUS_SUCCESS);
    neighbours_progress(&n, "after the policy changed");
    ck_assert_status(UwdfSetEngineSubmitBatch(0), STATUS_SUCCESS);
    ck_assert_uint_eq(UwdfGetEngineSubmitBatch(), dflt);
    neighbours_progress(&n, "back at the default");
    neighbours_stop(&n); /* every read right, none failed */
    tu_env_fini(&e);
}
END_TEST

/* ---- registered files on a shared ring ---- */

#define SLOT_AFTER_OPS 8 /* lib/engine.c's ENGINE_SLOT_AFTER_OPS */

/* Whether the kernel lists file (a real path) in the registered-file table
 * of one of this process's io_uring rings (/proc/self/fdinfo of the ring:
 * "UserFiles:" and one line per filled slot, printed only while the ring's
 * lock is free, so a caller that expects it waits for it). */
static bool ring_lists_file(const char *file)
{
    bool found = false;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; !found && (de = readdir(d));) {
        char link[300], target[PATH_MAX], info[PATH_MAX + 64];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[io_uring]") != 0)
            continue;
        snprintf(link, sizeof(link), "/proc/self/fdinfo/%s", de->d_name);
        FILE *f = fopen(link, "r");
        if (!f)
            continue;
        bool table = false;
        while (!found && fgets(info, sizeof(info), f)) {
            if (strncmp(info, "UserFiles:", 10) == 0)
                table = true;
            else if (strncmp(info, "UserBufs:", 9) == 0)
                table = false;
            else if (table) {
                char *p = strchr(info, ':');
                info[strcspn(info, "\n")] = '\0';
                found = p && strcmp(p + 2, file) == 0;
            }
        }
        fclose(f);
    }
    closedir(d);
    return found;
}

static bool ring_lists_file_soon(const char *file)
{
    for (int ms = 0; ms < WAIT_MS; ms += 10) {
        if (ring_lists_file(file))
            return true;
        tu_sleep_ms(10);
    }
    return false;
}

/* A target's file gets its registered-file slot at its SLOT_AFTER_OPS-th
 * operation on io_uring, which goes down on it; the kernel's own table
 * lists the file from then until the target closes (an idle neighbour
 * keeps the engine's ring open after that). libaio has no slots. */
START_TEST(a_target_gets_its_slot_at_its_eighth_operation)
{
    struct tu_env e;
    tu_env_init_backend(&e, _i);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    char *path = tu_env_file(&e, "slot", FILE_SIZE, SEED);
    char *other = tu_env_file(&e, "idle", FILE_SIZE, SEED + 1);
    char *real = realpath(path, NULL);
    ck_assert_ptr_nonnull(real);
    WDFIOTARGET idle = tu_env_target(&e, other, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    WDFIOTARGET t = tu_env_target(&e, path, GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    UWDF_IO_TARGET_STATISTICS st = { .Size = sizeof(st) };
    for (unsigned i = 0; i < SLOT_AFTER_OPS; i++) {
        if (i == SLOT_AFTER_OPS - 1) {
            ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_SUCCESS);
            ck_assert_uint_eq(st.Operations, SLOT_AFTER_OPS - 1);
            ck_assert(!st.RegisteredFile);
            ck_assert(!ring_lists_file(real));
        }
        struct read_op op;
        read_send(&op, t, (uint64_t)(i % TU_READER_BLOCKS) * BLK, WDF_NO_SEND_OPTIONS);
        read_expect(&op, STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(op.buf, BLK, SEED, (uint64_t)(i % TU_READER_BLOCKS) * BLK));
        read_done(&op);
    }
    ck_assert_status(UwdfIoTargetGetStatistics(t, &st), STATUS_SUCCESS);
    ck_assert_uint_eq(st.Operations, SLOT_AFTER_OPS);
    ck_assert_int_eq(st.RegisteredFile, _i == 0);
    ck_assert_uint_eq(st.FixedFileOperations, _i == 0 ? 1 : 0);
    if (_i == 0)
        ck_assert_msg(ring_lists_file_soon(real), "no ring lists %s after %u reads", real, SLOT_AFTER_OPS);
    else
        ck_assert(!ring_lists_file(real));
    WdfIoTargetClose(t);
    ck_assert(!ring_lists_file(real)); /* the close dropped it before returning */
    WdfObjectDelete(idle);
    free(real);
    free(path);
    free(other);
    tu_env_fini(&e);
}
END_TEST

/* Targets that do I/O get a registered-file slot each on io_uring (none on
 * libaio); every read still returns its own file's data (a slot mix-up
 * would read a neighbour's), the statistics are each target's own, and a
 * slot freed by a close serves the next target. */
START_TEST(busy_targets_get_their_own_registered_file)
{
    struct tu_env e;
    struct neighbours n;
    tu_env_init_backend(&e, _i);
    ck_assert_status(UwdfSetEnginePoolSize(1), STATUS_SUCCESS);
    for (int round = 0; round < 2; round++) {
        neighbours_start(&e, &n);
        for (int i = 0; i < NEIGHBOURS; i++)
            ck_assert(tu_reader_progresses(&n.r[i], 200, WAIT_MS));
        for (int i = 0; i < NEIGHBOURS; i++) {
            UWDF_IO_TARGET_STATISTICS st = { .Size = sizeof(st) };
            ck_assert_status(UwdfIoTargetGetStatistics(n.r[i].target, &st), STATUS_SUCCESS);
            ck_assert_uint_ge(st.Operations, 200);
            ck_assert_uint_le(st.Operations, atomic_load(&n.r[i].sent));
            ck_assert_int_eq(st.RegisteredFile, _i == 0);
            if (_i == 0)
                ck_assert_uint_ge(st.FixedFileOperations, st.Operations - SLOT_AFTER_OPS);
            else
                ck_assert_uint_eq(st.FixedFileOperations, 0);
        }
        neighbours_stop(&n);
    }
    tu_env_fini(&e);
}
END_TEST

/* ---- many targets ---- */

struct many {
    WDFIOTARGET *t;
    unsigned n;
    atomic_uint next, good, bad, done;
    KEVENT all_done;
};
static struct many g_many;

struct many_slot {
    WDFREQUEST req;
    WDFMEMORY mem;
    void *buf;
    unsigned index;
};

static EVT_WDF_REQUEST_COMPLETION_ROUTINE many_done;

static void many_send_next(struct many_slot *s)
{
    unsigned i = atomic_fetch_add(&g_many.next, 1);
    if (i >= g_many.n)
        return;
    s->index = i;
    WDF_REQUEST_REUSE_PARAMS reuse;
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    WdfRequestReuse(s->req, &reuse);
    LONGLONG off = 0;
    bool sent = WdfIoTargetFormatRequestForRead(g_many.t[i], s->req, s->mem, NULL, &off) == STATUS_SUCCESS;
    if (sent) {
        WdfRequestSetCompletionRoutine(s->req, many_done, s);
        sent = WdfRequestSend(s->req, g_many.t[i], WDF_NO_SEND_OPTIONS);
    }
    if (!sent) {
        atomic_fetch_add(&g_many.bad, 1);
        if (atomic_fetch_add(&g_many.done, 1) + 1 == g_many.n)
            KeSetEvent(&g_many.all_done, IO_NO_INCREMENT, FALSE);
    }
}

static VOID many_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                      WDFCONTEXT Context)
{
    struct many_slot *s = Context;
    (void)Request;
    (void)Target;
    bool ok = Params->IoStatus.Status == STATUS_SUCCESS && Params->IoStatus.Information == BLK &&
              tu_pattern_matches(s->buf, BLK, SEED + s->index, 0);
    atomic_fetch_add(ok ? &g_many.good : &g_many.bad, 1);
    if (atomic_fetch_add(&g_many.done, 1) + 1 == g_many.n)
        KeSetEvent(&g_many.all_done, IO_NO_INCREMENT, FALSE);
    many_send_next(s); /* to the next target, on this engine or another */
}

/* MANY targets open under the soft open-file limit of a Debian root shell
 * (1024): the library raises the soft limit toward the hard one, the opens
 * add no more threads than the pool has engines and one descriptor per
 * target, each target costs under 4 KiB (without sanitizers or valgrind,
 * which inflate every allocation), a 4 KiB read from each (requests hopping
 * from target to target) returns each file's own block, and closing them
 * all leaves no thread and no descriptor behind. Under valgrind, which
 * keeps descriptors of its own under the limit and runs everything far
 * slower, FEW targets and a limit of 256 instead. */
#define MANY 1500u
#define FEW 400u
START_TEST(many_targets_within_the_default_open_file_limit)
{
    struct tu_env e;
    struct rlimit old;
    const unsigned many = tu_running_on_valgrind() ? FEW : MANY;
    const rlim_t soft = tu_running_on_valgrind() ? 256 : 1024;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    if (old.rlim_max < 2 * many + 64)
        return; /* the hard limit itself is too low for the test */
    tu_env_init_backend(&e, _i);
    char **paths = calloc(many, sizeof(*paths));
    memset(&g_many, 0, sizeof(g_many)); /* CK_FORK=no: the previous engine's run left it */
    g_many.t = calloc(many, sizeof(*g_many.t));
    ck_assert(paths && g_many.t);
    for (unsigned i = 0; i < many; i++) {
        char name[32];
        snprintf(name, sizeof(name), "m%u", i);
        paths[i] = tu_env_file(&e, name, BLK, SEED + i);
    }
    struct rlimit low = { soft, old.rlim_max };
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    long t0 = tu_engine_threads(), rss0 = tu_rss_kib();
    int fds0 = count_fds();
    for (unsigned i = 0; i < many; i++)
        g_many.t[i] = tu_env_target(&e, paths[i], GENERIC_READ, FILE_NO_INTERMEDIATE_BUFFERING);
    g_many.n = many;
    long added = tu_engine_threads() - t0;
    ck_assert_int_ge(added, 1); /* engine threads: other threads may come and go (a sanitizer's) */
    ck_assert_int_le(added, (long)UwdfGetEnginePoolSize());
    /* One descriptor per target; each engine has at most two (ring, eventfd). */
    int extra = count_fds() - fds0 - (int)many;
    ck_assert_int_ge(extra, 0);
    ck_assert_int_le(extra, 2 * (int)added);
    double per_target = (double)(tu_rss_kib() - rss0) / many;
    if (!tu_instrumented())
        ck_assert_msg(per_target <= 4.0, "%.2f KiB per open target", per_target);
    struct rlimit now;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &now), 0);
    ck_assert_uint_gt(now.rlim_cur, soft);

    struct many_slot slots[16];
    KeInitializeEvent(&g_many.all_done, NotificationEvent, FALSE);
    for (int k = 0; k < 16; k++) {
        slots[k].req = tu_make_request(NULL);
        slots[k].mem = tu_make_memory(BLK, &slots[k].buf);
    }
    for (int k = 0; k < 16; k++)
        many_send_next(&slots[k]);
    LARGE_INTEGER to = { .QuadPart = WDF_REL_TIMEOUT_IN_SEC(600) };
    ck_assert_status(KeWaitForSingleObject(&g_many.all_done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    ck_assert_uint_eq(atomic_load(&g_many.good), many);
    ck_assert_uint_eq(atomic_load(&g_many.bad), 0);
    for (int k = 0; k < 16; k++) {
        WdfObjectDelete(slots[k].req);
        WdfObjectDelete(slots[k].mem);
    }
    for (unsigned i = 0; i < many; i++)
        WdfObjectDelete(g_many.t[i]);
    expect_threads(t0);
    ck_assert_int_eq(count_fds(), fds0);
    setrlimit(RLIMIT_NOFILE, &old);
    for (unsigned i = 0; i < many; i++)
        free(paths[i]);
    free(paths);
    free(g_many.t);
    UwdfKeDestroyEvent(&g_many.all_done);
    tu_env_fini(&e);
}
END_TEST

/* ---- Filter Manager ---- */

struct flt_inner {
    PFLT_CALLBACK_DATA other; /* callback data of the other file */
    NTSTATUS inner;
    KEVENT done;
};

static VOID flt_sync_inside(PFLT_CALLBACK_DATA Data, PFLT_CONTEXT Context)
{
    struct flt_inner *f = Context;
    (void)Data;
    FltPerformSynchronousIo(f->other);
    f->inner = f->other->IoStatus.Status;
    KeSetEvent(&f->done, IO_NO_INCREMENT, FALSE);
}

static void flt_set_read(PFLT_CALLBACK_DATA d, void *buf)
{
    d->Iopb->MajorFunction = IRP_MJ_READ;
    d->Iopb->IrpFlags = IRP_READ_OPERATION;
    d->Iopb->Parameters.Read.Length = BLK;
    d->Iopb->Parameters.Read.ByteOffset.QuadPart = 0;
    d->Iopb->Parameters.Read.ReadBuffer = buf;
}

/* FltPerformSynchronousIo in an asynchronous callback fails with
 * STATUS_INVALID_DEVICE_REQUEST for another file too, whether or not the
 * pool put that file on the callback's engine: a synchronous I/O there
 * would wait for the thread itself or stall the engine's other targets. */
START_TEST(flt_sync_io_in_a_callback_is_refused_for_any_file)
{
    struct tu_env e;
    struct tu_flt f;
    tu_env_init_backend(&e, _i);
    char *p1 = tu_env_file(&e, "one", FILE_SIZE, SEED), *p2 = tu_env_file(&e, "two", FILE_SIZE, SEED + 1);
    for (unsigned engines = 1; engines <= 2; engines++) {
        ck_assert_status(UwdfSetEnginePoolSize(engines), STATUS_SUCCESS);
        tu_flt_open(&e, p1, &f);
        HANDLE h2;
        PFILE_OBJECT fo2;
        UNICODE_STRING us;
        WCHAR wbuf[4096];
        OBJECT_ATTRIBUTES oa;
        IO_STATUS_BLOCK iosb;
        tu_unicode(&us, wbuf, 4096, p2);
        InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
        ck_assert_status(FltCreateFileEx(f.filter, f.instance, &h2, &fo2, GENERIC_READ, &oa, &iosb, NULL,
                                         FILE_ATTRIBUTE_NORMAL, 0, FILE_OPEN,
                                         FILE_NON_DIRECTORY_FILE | FILE_NO_INTERMEDIATE_BUFFERING, NULL, 0, 0),
                         STATUS_SUCCESS);
        void *b1 = tu_aligned_alloc(BLK), *b2 = tu_aligned_alloc(BLK);
        struct flt_inner in = { 0 };
        KeInitializeEvent(&in.done, NotificationEvent, FALSE);
        PFLT_CALLBACK_DATA d1 = NULL;
        ck_assert_status(FltAllocateCallbackData(f.instance, f.fo, &d1), STATUS_SUCCESS);
        ck_assert_status(FltAllocateCallbackData(f.instance, fo2, &in.other), STATUS_SUCCESS);
        flt_set_read(d1, b1);
        flt_set_read(in.other, b2);
        ck_assert_status(FltPerformAsynchronousIo(d1, flt_sync_inside, &in), STATUS_PENDING);
        LARGE_INTEGER to = { .QuadPart = WDF_REL_TIMEOUT_IN_SEC(10) };
        ck_assert_status(KeWaitForSingleObject(&in.done, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
        ck_assert_status(in.inner, STATUS_INVALID_DEVICE_REQUEST);
        /* On the test's own thread the same call works. */
        FltReuseCallbackData(in.other);
        flt_set_read(in.other, b2);
        FltPerformSynchronousIo(in.other);
        ck_assert_status(in.other->IoStatus.Status, STATUS_SUCCESS);
        ck_assert(tu_pattern_matches(b2, BLK, SEED + 1, 0));
        FltFreeCallbackData(d1);
        FltFreeCallbackData(in.other);
        UwdfKeDestroyEvent(&in.done);
        ck_assert_status(FltClose(h2), STATUS_SUCCESS);
        ObDereferenceObject(fo2);
        tu_flt_close(&f);
        free(b1);
        free(b2);
    }
    free(p1);
    free(p2);
    tu_env_fini(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engines");
    TCase *tc = tu_tcase(s, "shared_engines", TEST_TIMEOUT_SEC);
    tcase_add_loop_test(tc, targets_share_the_pool_engines, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, engine_pool_resize_while_idle, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, targets_opened_in_an_engine_group_share_one_engine, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stop_purge_close_one_target_while_neighbours_run, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, stop_waits_only_for_its_own_io, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, timeouts_and_cancels_leave_neighbours_alone, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, target_deleted_in_a_neighbours_completion_routine, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, failing_file_beside_healthy_neighbours, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, submit_policy_keeps_shared_targets_right, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, busy_targets_get_their_own_registered_file, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_target_gets_its_slot_at_its_eighth_operation, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, many_targets_within_the_default_open_file_limit, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, flt_sync_io_in_a_callback_is_refused_for_any_file, 0, TU_BACKENDS);
    return tu_main_root(s, "test_engines", "the full-tmpfs case was skipped");
}
