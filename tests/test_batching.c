/* Batching (UwdfIoTargetSetBatching, UwdfIoTargetGetBatchStatistics) and
 * the send plug (UwdfStartSendPlug / UwdfFinishSendPlug), lib/engine.c, on
 * both local engines: a completion batch never waits for I/O that was not
 * sent, a plug finished early hands over everything it held, a plug hands
 * over at the target's submit batch, the framework's waits hand a plug
 * over, a held send can be cancelled, and the counts are the batches the
 * engine made. Hand-over times (UwdfIoTargetSetHandOverTimes): when a send
 * reached the kernel, not when it was sent; 0 when not asked for or never
 * handed over. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLK 4096u
#define NBLK 64u
#define SEED 2100u
#define WAIT_MS 10000 /* generous: valgrind and a busy machine */
#define HELD_MS 100   /* long enough to see a held send not complete */
#define MAXOPS 16

struct batch_env {
    struct tu_env e;
    WDFIOTARGET t;
    struct {
        WDFREQUEST req;
        WDFMEMORY mem;
        void *buf;
        struct tu_completion c;
        uint64_t off;
    } op[MAXOPS];
    unsigned nops;
};

/* options: FILE_NO_INTERMEDIATE_BUFFERING for O_DIRECT, whose reads
 * finish one by one in the kernel rather than inside the submission. */
static void benv_init_options(struct batch_env *b, int backend, ULONG options)
{
    memset(b, 0, sizeof(*b));
    tu_env_init_backend(&b->e, backend);
    b->t = tu_env_open_file(&b->e, NBLK * BLK, SEED, GENERIC_READ, options);
}

static void benv_init(struct batch_env *b, int backend)
{
    benv_init_options(b, backend, 0);
}

static void benv_set(struct batch_env *b, ULONG submit, ULONG cmin, ULONG cmax)
{
    UWDF_IO_TARGET_BATCHING cfg;
    UWDF_IO_TARGET_BATCHING_INIT(&cfg, submit, cmin, cmax);
    ck_assert_status(UwdfIoTargetSetBatching(b->t, &cfg), STATUS_SUCCESS);
}

/* n asynchronous 4 KiB reads, blocks i * 3 % NBLK. */
static void benv_send(struct batch_env *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned k = b->nops++;
        ck_assert_uint_lt(k, MAXOPS);
        b->op[k].req = tu_make_request(b->t);
        b->op[k].mem = tu_make_memory(BLK, &b->op[k].buf);
        memset(b->op[k].buf, 0xEE, BLK);
        tu_completion_init(&b->op[k].c);
        b->op[k].off = (uint64_t)(k * 3 % NBLK) * BLK;
        LONGLONG o = (LONGLONG)b->op[k].off;
        ck_assert_status(WdfIoTargetFormatRequestForRead(b->t, b->op[k].req, b->op[k].mem, NULL, &o),
                         STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(b->op[k].req, tu_on_complete, &b->op[k].c);
        ck_assert(WdfRequestSend(b->op[k].req, b->t, WDF_NO_SEND_OPTIONS));
    }
}

/* Every read sent completed once, successfully, with the file's bytes. */
static void benv_expect_all(struct batch_env *b)
{
    for (unsigned k = 0; k < b->nops; k++) {
        ck_assert_msg(tu_completion_wait(&b->op[k].c, WAIT_MS), "read %u never completed", k);
        ck_assert_int_eq(tu_ncalls(&b->op[k].c), 1);
        ck_assert_status(b->op[k].c.status, STATUS_SUCCESS);
        ck_assert_uint_eq(b->op[k].c.information, BLK);
        ck_assert(tu_pattern_matches(b->op[k].buf, BLK, SEED, b->op[k].off));
    }
}

static unsigned benv_completed(struct batch_env *b)
{
    unsigned n = 0;
    for (unsigned k = 0; k < b->nops; k++)
        n += tu_ncalls(&b->op[k].c) > 0;
    return n;
}

/* Waits up to WAIT_MS for n completions by looking, not through a
 * framework wait (which would hand a send plug over). */
static bool benv_poll_completed(struct batch_env *b, unsigned n)
{
    for (int ms = 0; ms < WAIT_MS; ms++) {
        if (benv_completed(b) >= n)
            return true;
        usleep(1000);
    }
    return false;
}

static void benv_stats(struct batch_env *b, UWDF_IO_TARGET_BATCH_STATISTICS *st)
{
    memset(st, 0, sizeof(*st));
    st->Size = sizeof(*st);
    ck_assert_status(UwdfIoTargetGetBatchStatistics(b->t, st), STATUS_SUCCESS);
}

static ULONGLONG sum(const ULONGLONG *h)
{
    ULONGLONG n = 0;
    for (unsigned i = 0; i < UWDF_IO_BATCH_BUCKETS; i++)
        n += h[i];
    return n;
}

static void benv_fini(struct batch_env *b)
{
    for (unsigned k = 0; k < b->nops; k++) {
        WdfObjectDelete(b->op[k].req);
        WdfObjectDelete(b->op[k].mem);
        tu_completion_fini(&b->op[k].c);
    }
    tu_env_fini(&b->e);
}

START_TEST(complete_min_above_what_is_in_flight_completes_everything)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 0, 16, 0);
    benv_send(&b, 3); /* fewer than the batch: it is all there is */
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(sum(st.CompletionRounds) >= 1, 1);
    benv_fini(&b);
}
END_TEST

START_TEST(complete_min_runs_the_routines_of_a_batch_together)
{
    struct batch_env b;
    benv_init_options(&b, _i, FILE_NO_INTERMEDIATE_BUFFERING);
    benv_set(&b, 0, 8, 8);
    UwdfStartSendPlug(); /* all 8 in flight before any can finish */
    benv_send(&b, 8);
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    /* one round of 8 (bucket 3: 5..8), nothing else */
    ck_assert_uint_eq(st.CompletionRounds[3], 1);
    ck_assert_uint_eq(sum(st.CompletionRounds), 1);
    benv_fini(&b);
}
END_TEST

START_TEST(complete_max_splits_a_batch_into_rounds)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 0, 2, 2);
    UwdfStartSendPlug();
    benv_send(&b, 8);
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(st.CompletionRounds[1], 4); /* four rounds of 2 */
    ck_assert_uint_eq(sum(st.CompletionRounds), 4);
    benv_fini(&b);
}
END_TEST

START_TEST(plug_finished_early_hands_over_everything)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 16, 0, 0);
    UwdfStartSendPlug();
    benv_send(&b, 5);
    usleep(HELD_MS * 1000);
    ck_assert_uint_eq(benv_completed(&b), 0); /* held: the batch is 16 */
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(st.Submissions[3], 1); /* all 5 in one submission */
    ck_assert_uint_eq(sum(st.Submissions), 1);
    benv_fini(&b);
}
END_TEST

struct plug_thread_arg {
    struct batch_env *b;
    unsigned n;
};

static void *send_plugged_and_exit(void *arg)
{
    struct plug_thread_arg *a = arg;
    UwdfStartSendPlug();
    benv_send(a->b, a->n);
    return NULL; /* ends with its plug unfinished */
}

START_TEST(a_thread_that_ends_plugged_hands_its_sends_over)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 16, 0, 0);
    struct plug_thread_arg a = { &b, 5 };
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, send_plugged_and_exit, &a), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    benv_expect_all(&b); /* all 5 complete, once each */
    benv_fini(&b);
}
END_TEST

START_TEST(plug_hands_over_at_the_submit_batch)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 4, 0, 0);
    UwdfStartSendPlug();
    benv_send(&b, 8);
    /* still plugged: two batches of 4 went */
    ck_assert_msg(benv_poll_completed(&b, 8), "only %u of 8 completed", benv_completed(&b));
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(st.Submissions[2], 2);
    ck_assert_uint_eq(sum(st.Submissions), 2);
    benv_fini(&b);
}
END_TEST

static KEVENT routine_event;

static VOID set_event_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                              WDFCONTEXT Context)
{
    tu_on_complete(Request, Target, Params, Context);
    KeSetEvent(&routine_event, 0, FALSE);
}

START_TEST(a_framework_wait_hands_the_plug_over)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 16, 0, 0);
    KeInitializeEvent(&routine_event, NotificationEvent, FALSE);
    UwdfStartSendPlug();
    benv_send(&b, 1);
    WdfRequestSetCompletionRoutine(b.op[0].req, set_event_routine, &b.op[0].c);
    LARGE_INTEGER to = { .QuadPart = -(LONGLONG)WAIT_MS * 10000 };
    ck_assert_status(KeWaitForSingleObject(&routine_event, Executive, KernelMode, FALSE, &to), STATUS_SUCCESS);
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    benv_fini(&b);
}
END_TEST

/* The trigger's routine (on the other engine's thread) sends the prepared
 * reads one by one, a pause between them. */
struct cross_sender {
    struct batch_env *b;
    unsigned n;
};

static VOID send_to_the_other_engine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                                     WDFCONTEXT Context)
{
    struct cross_sender *x = Context;
    (void)Request;
    (void)Target;
    (void)Params;
    for (unsigned k = 0; k < x->n; k++) {
        if (k)
            usleep(2000); /* the other engine would take each alone */
        (void)WdfRequestSend(x->b->op[k].req, x->b->t, WDF_NO_SEND_OPTIONS); /* FALSE: its routine says why */
    }
}

START_TEST(a_routines_sends_to_another_engine_go_over_together)
{
    /* b.t and the trigger on two engines: a routine's sends to b.t reach
     * b.t's engine at the end of the routine's round, one submission. */
    ck_assert_status(UwdfSetEnginePoolSize(2), STATUS_SUCCESS);
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 0, 0, 0); /* counted, no batch of its own */
    char *path = tu_env_file(&b.e, "trigger", BLK, SEED + 1);
    WDFIOTARGET trig = tu_env_target(&b.e, path, GENERIC_READ, 0);
    enum { N = 8 };
    for (unsigned k = 0; k < N; k++) { /* prepared here, sent by the routine */
        b.op[k].req = tu_make_request(b.t);
        b.op[k].mem = tu_make_memory(BLK, &b.op[k].buf);
        tu_completion_init(&b.op[k].c);
        b.op[k].off = (uint64_t)(k * 3 % NBLK) * BLK;
        LONGLONG o = (LONGLONG)b.op[k].off;
        ck_assert_status(WdfIoTargetFormatRequestForRead(b.t, b.op[k].req, b.op[k].mem, NULL, &o), STATUS_SUCCESS);
        WdfRequestSetCompletionRoutine(b.op[k].req, tu_on_complete, &b.op[k].c);
    }
    b.nops = N;
    struct cross_sender x = { &b, N };
    void *tbuf;
    WDFREQUEST treq = tu_make_request(trig);
    WDFMEMORY tmem = tu_make_memory(BLK, &tbuf);
    ck_assert_status(WdfIoTargetFormatRequestForRead(trig, treq, tmem, NULL, NULL), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(treq, send_to_the_other_engine, &x);
    ck_assert(WdfRequestSend(treq, trig, WDF_NO_SEND_OPTIONS));
    benv_expect_all(&b);
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(st.Submissions[3], 1); /* all 8 in one submission (5..8) */
    ck_assert_uint_eq(sum(st.Submissions), 1);
    WdfObjectDelete(treq);
    WdfObjectDelete(tmem);
    free(path);
    benv_fini(&b);
    ck_assert_status(UwdfSetEnginePoolSize(0), STATUS_SUCCESS);
}
END_TEST

START_TEST(a_held_send_can_be_cancelled)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 16, 0, 0);
    UwdfStartSendPlug();
    benv_send(&b, 2);
    ck_assert(WdfRequestCancelSentRequest(b.op[0].req));
    UwdfFinishSendPlug();
    ck_assert(tu_completion_wait(&b.op[0].c, WAIT_MS));
    ck_assert_int_eq(tu_ncalls(&b.op[0].c), 1);
    ck_assert_status(b.op[0].c.status, STATUS_CANCELLED);
    ck_assert(tu_completion_wait(&b.op[1].c, WAIT_MS));
    ck_assert_status(b.op[1].c.status, STATUS_SUCCESS);
    benv_fini(&b);
}
END_TEST

START_TEST(batching_arguments_are_checked)
{
    struct batch_env b;
    benv_init(&b, _i);
    UWDF_IO_TARGET_BATCHING cfg;
    UWDF_IO_TARGET_BATCH_STATISTICS st = { .Size = sizeof(st) };
    ck_assert_status(UwdfIoTargetGetBatchStatistics(b.t, &st), STATUS_NOT_FOUND);
    UWDF_IO_TARGET_BATCHING_INIT(&cfg, 1, 8, 4);
    ck_assert_status(UwdfIoTargetSetBatching(b.t, &cfg), STATUS_INVALID_PARAMETER);
    UWDF_IO_TARGET_BATCHING_INIT(&cfg, UWDF_IO_BATCH_MAX + 1, 0, 0);
    ck_assert_status(UwdfIoTargetSetBatching(b.t, &cfg), STATUS_INVALID_PARAMETER);
    UWDF_IO_TARGET_BATCHING_INIT(&cfg, 1, 1, 1);
    cfg.Size--;
    ck_assert_status(UwdfIoTargetSetBatching(b.t, &cfg), STATUS_INFO_LENGTH_MISMATCH);
    st.Size--;
    ck_assert_status(UwdfIoTargetGetBatchStatistics(b.t, &st), STATUS_INFO_LENGTH_MISMATCH);
    UWDF_IO_TARGET_BATCHING_INIT(&cfg, 1, 1, 1);
    if (_i == 0) { /* libaio opens no FIFO at all */
        char *data = b.e.path; /* the environment holds one path: the FIFO's now */
        b.e.path = NULL;
        free(data);
        WDFIOTARGET fifo = tu_env_open_fifo(&b.e);
        ck_assert_status(UwdfIoTargetSetBatching(fifo, &cfg), STATUS_NOT_SUPPORTED);
    }
    WdfIoTargetClose(b.t);
    ck_assert_status(UwdfIoTargetSetBatching(b.t, &cfg), STATUS_INVALID_DEVICE_STATE);
    benv_fini(&b);
}
END_TEST

/* ---- hand-over times (UwdfIoTargetSetHandOverTimes) ---- */

static LONGLONG mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (LONGLONG)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

START_TEST(handover_time_is_when_a_held_send_reached_the_kernel)
{
    struct batch_env b;
    benv_init(&b, _i);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    UwdfStartSendPlug();
    LONGLONG sent = mono_ns();
    benv_send(&b, 3);
    usleep(HELD_MS * 1000);
    LONGLONG released = mono_ns();
    UwdfFinishSendPlug();
    benv_expect_all(&b);
    LONGLONG after = mono_ns();
    for (unsigned k = 0; k < b.nops; k++) {
        LONGLONG h = UwdfRequestGetHandOverTime(b.op[k].req);
        /* Not when it was sent: when the plug let it go to the kernel. */
        ck_assert_msg(h >= released && h <= after, "read %u: hand-over %lld ns after the send, plug released %lld ns after it",
                      k, (long long)(h - sent), (long long)(released - sent));
    }
    /* The three went in one system call: one clock read. */
    ck_assert_int_eq(UwdfRequestGetHandOverTime(b.op[0].req), UwdfRequestGetHandOverTime(b.op[2].req));
    benv_fini(&b);
}
END_TEST

/* A buffered read runs inside the submitting system call (libaio: always,
 * io_uring: from the page cache); big enough that its copy dwarfs the
 * engine's own steps. */
#define BIG_READ (64u << 20)

struct timed_completion {
    struct tu_completion c;
    LONGLONG at; /* when the routine ran */
};

static VOID timed_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                          WDFCONTEXT Context)
{
    struct timed_completion *t = Context;
    t->at = mono_ns();
    tu_on_complete(Request, Target, Params, &t->c);
}

START_TEST(handover_time_is_read_after_the_submitting_call)
{
    struct batch_env b;
    memset(&b, 0, sizeof(b));
    tu_env_init_backend(&b.e, _i);
    b.t = tu_env_open_file(&b.e, BIG_READ, SEED, GENERIC_READ, 0);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    WDFREQUEST req = tu_make_request(b.t);
    void *buf;
    WDFMEMORY mem = tu_make_memory(BIG_READ, &buf);
    struct timed_completion done;
    tu_completion_init(&done.c);
    LONGLONG o = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(b.t, req, mem, NULL, &o), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(req, timed_routine, &done);
    UwdfStartSendPlug();
    ck_assert(WdfRequestSend(req, b.t, WDF_NO_SEND_OPTIONS));
    LONGLONG released = mono_ns();
    UwdfFinishSendPlug();
    ck_assert(tu_completion_wait(&done.c, WAIT_MS));
    ck_assert_status(done.c.status, STATUS_SUCCESS);
    ck_assert_uint_eq(done.c.information, BIG_READ);
    ck_assert(tu_pattern_matches(buf, BIG_READ, SEED, 0));
    LONGLONG h = UwdfRequestGetHandOverTime(req);
    /* fio's issue time: when the call that carried the read returned. The
     * copy inside it lies between the plug's release and the hand-over,
     * not between the hand-over and the routine. */
    ck_assert_msg(h - released > done.at - h, "hand-over %lld ns after the plug let go, %lld ns before the routine",
                  (long long)(h - released), (long long)(done.at - h));
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    tu_completion_fini(&done.c);
    tu_env_fini(&b.e);
}
END_TEST

/* With one op per system call (UwdfSetEngineSubmitBatch(1)) each op's
 * hand-over is its own call's: a small read staged just before a big
 * buffered one is not stamped by the big one's call. */
START_TEST(handover_time_with_one_op_per_submit_is_each_ops_own_call)
{
    struct batch_env b;
    memset(&b, 0, sizeof(b));
    tu_env_init_backend(&b.e, _i);
    b.t = tu_env_open_file(&b.e, BIG_READ, SEED, GENERIC_READ, 0);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    ck_assert_status(UwdfSetEngineSubmitBatch(1), STATUS_SUCCESS);
    WDFREQUEST small = tu_make_request(b.t), big = tu_make_request(b.t);
    void *sbuf, *bbuf;
    WDFMEMORY smem = tu_make_memory(BLK, &sbuf), bmem = tu_make_memory(BIG_READ, &bbuf);
    struct tu_completion sdone;
    struct timed_completion bdone;
    tu_completion_init(&sdone);
    tu_completion_init(&bdone.c);
    LONGLONG o = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(b.t, small, smem, NULL, &o), STATUS_SUCCESS);
    ck_assert_status(WdfIoTargetFormatRequestForRead(b.t, big, bmem, NULL, &o), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(small, tu_on_complete, &sdone);
    WdfRequestSetCompletionRoutine(big, timed_routine, &bdone);
    UwdfStartSendPlug(); /* both reach the engine together, in this order */
    ck_assert(WdfRequestSend(small, b.t, WDF_NO_SEND_OPTIONS));
    ck_assert(WdfRequestSend(big, b.t, WDF_NO_SEND_OPTIONS));
    LONGLONG released = mono_ns();
    UwdfFinishSendPlug();
    ck_assert(tu_completion_wait(&sdone, WAIT_MS));
    ck_assert(tu_completion_wait(&bdone.c, WAIT_MS));
    ck_assert_status(sdone.status, STATUS_SUCCESS);
    ck_assert_status(bdone.c.status, STATUS_SUCCESS);
    ck_assert(tu_pattern_matches(sbuf, BLK, SEED, 0));
    ck_assert(tu_pattern_matches(bbuf, BIG_READ, SEED, 0));
    LONGLONG hs = UwdfRequestGetHandOverTime(small), hb = UwdfRequestGetHandOverTime(big);
    /* The big read's copy lies between the two hand-overs, not between the
     * plug's release and the small read's. */
    ck_assert_msg(hb - hs > hs - released, "small read handed over %lld ns after the plug let go, big read %lld ns after it",
                  (long long)(hs - released), (long long)(hb - hs));
    ck_assert_status(UwdfSetEngineSubmitBatch(0), STATUS_SUCCESS);
    WdfObjectDelete(small);
    WdfObjectDelete(big);
    WdfObjectDelete(smem);
    WdfObjectDelete(bmem);
    tu_completion_fini(&sdone);
    tu_completion_fini(&bdone.c);
    tu_env_fini(&b.e);
}
END_TEST

struct resend_ctx {
    struct batch_env *b;
    bool resent;
    LONGLONG first_handover; /* of the first send */
    LONGLONG round_end;      /* when the first routine returned */
    struct tu_completion done;
};

/* First completion: note its hand-over, resend the request and hold the
 * round for HELD_MS; the resend's completion ends the test. */
static VOID resend_routine(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                           WDFCONTEXT Context)
{
    struct resend_ctx *r = Context;
    if (r->resent) {
        tu_on_complete(Request, Target, Params, &r->done);
        return;
    }
    r->resent = true;
    r->first_handover = UwdfRequestGetHandOverTime(Request);
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    LONGLONG o = BLK;
    if (!NT_SUCCESS(WdfRequestReuse(Request, &rp)) ||
        !NT_SUCCESS(WdfIoTargetFormatRequestForRead(Target, Request, r->b->op[0].mem, NULL, &o))) {
        tu_on_complete(Request, Target, Params, &r->done);
        return;
    }
    WdfRequestSetCompletionRoutine(Request, resend_routine, r);
    if (!WdfRequestSend(Request, Target, WDF_NO_SEND_OPTIONS)) {
        tu_on_complete(Request, Target, Params, &r->done);
        return;
    }
    usleep(HELD_MS * 1000);
    r->round_end = mono_ns();
}

/* Sends one read whose routine resends it once (resend_routine) and waits
 * for the resend; returns the resend's hand-over time. */
static LONGLONG resend_once(struct batch_env *b, struct resend_ctx *r)
{
    *r = (struct resend_ctx){ .b = b };
    tu_completion_init(&r->done);
    b->nops = 1;
    b->op[0].req = tu_make_request(b->t);
    b->op[0].mem = tu_make_memory(BLK, &b->op[0].buf);
    tu_completion_init(&b->op[0].c);
    LONGLONG o = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(b->t, b->op[0].req, b->op[0].mem, NULL, &o), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(b->op[0].req, resend_routine, r);
    ck_assert(WdfRequestSend(b->op[0].req, b->t, WDF_NO_SEND_OPTIONS));
    ck_assert(tu_completion_wait(&r->done, WAIT_MS));
    ck_assert_status(r->done.status, STATUS_SUCCESS);
    return UwdfRequestGetHandOverTime(b->op[0].req);
}

START_TEST(handover_time_of_a_resend_is_when_its_round_ended)
{
    struct batch_env b;
    benv_init(&b, _i);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    struct resend_ctx r;
    LONGLONG h = resend_once(&b, &r);
    ck_assert_int_gt(r.first_handover, 0);
    /* The resend waited in the engine until the routine's round ended. */
    ck_assert_msg(h >= r.round_end, "resend handed over %lld ns before its round ended",
                  (long long)(r.round_end - h));
    tu_completion_fini(&r.done);
    benv_fini(&b);
}
END_TEST

/* With SubmitBatch 1 a routine's resend goes to the kernel as soon as the
 * routine has returned, not inside its WdfRequestSend: a device that needs
 * this thread's CPU (a loop device's worker) would wait for the routine's
 * way back otherwise. */
START_TEST(batched_resend_is_handed_over_when_its_routine_returned)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_set(&b, 1, 1, 1);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    struct resend_ctx r;
    LONGLONG h = resend_once(&b, &r);
    ck_assert_msg(h >= r.round_end, "resend handed over %lld ns before its routine returned",
                  (long long)(r.round_end - h));
    UWDF_IO_TARGET_BATCH_STATISTICS st;
    benv_stats(&b, &st);
    ck_assert_uint_eq(st.Submissions[0], 2); /* each alone, as SubmitBatch 1 says */
    tu_completion_fini(&r.done);
    benv_fini(&b);
}
END_TEST

START_TEST(handover_time_is_zero_when_not_asked_or_not_handed_over)
{
    struct batch_env b;
    benv_init(&b, _i);
    benv_send(&b, 1);
    benv_expect_all(&b);
    ck_assert_int_eq(UwdfRequestGetHandOverTime(b.op[0].req), 0); /* off by default */
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_SUCCESS);
    UwdfStartSendPlug();
    benv_send(&b, 2);
    ck_assert(WdfRequestCancelSentRequest(b.op[1].req)); /* never reaches the kernel */
    UwdfFinishSendPlug();
    ck_assert(tu_completion_wait(&b.op[1].c, WAIT_MS));
    ck_assert_status(b.op[1].c.status, STATUS_CANCELLED);
    ck_assert_int_eq(UwdfRequestGetHandOverTime(b.op[1].req), 0);
    ck_assert(tu_completion_wait(&b.op[2].c, WAIT_MS));
    ck_assert_int_gt(UwdfRequestGetHandOverTime(b.op[2].req), 0);
    /* Sent again, and held back by a cancel: the last send's, not the earlier one's. */
    WDF_REQUEST_REUSE_PARAMS rp;
    WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    ck_assert_status(WdfRequestReuse(b.op[2].req, &rp), STATUS_SUCCESS);
    LONGLONG o = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(b.t, b.op[2].req, b.op[2].mem, NULL, &o), STATUS_SUCCESS);
    tu_completion_fini(&b.op[2].c);
    tu_completion_init(&b.op[2].c);
    WdfRequestSetCompletionRoutine(b.op[2].req, tu_on_complete, &b.op[2].c);
    UwdfStartSendPlug();
    ck_assert(WdfRequestSend(b.op[2].req, b.t, WDF_NO_SEND_OPTIONS));
    ck_assert(WdfRequestCancelSentRequest(b.op[2].req));
    UwdfFinishSendPlug();
    ck_assert(tu_completion_wait(&b.op[2].c, WAIT_MS));
    ck_assert_status(b.op[2].c.status, STATUS_CANCELLED);
    ck_assert_int_eq(UwdfRequestGetHandOverTime(b.op[2].req), 0);
    /* Turned off again. */
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, FALSE), STATUS_SUCCESS);
    benv_send(&b, 1);
    ck_assert(tu_completion_wait(&b.op[3].c, WAIT_MS));
    ck_assert_int_eq(UwdfRequestGetHandOverTime(b.op[3].req), 0);
    benv_fini(&b);
}
END_TEST

START_TEST(handover_time_arguments_are_checked)
{
    struct batch_env b;
    benv_init(&b, _i);
    if (_i == 0) { /* libaio opens no FIFO at all */
        char *data = b.e.path; /* the environment holds one path: the FIFO's now */
        b.e.path = NULL;
        free(data);
        WDFIOTARGET fifo = tu_env_open_fifo(&b.e);
        ck_assert_status(UwdfIoTargetSetHandOverTimes(fifo, TRUE), STATUS_NOT_SUPPORTED);
    }
    WdfIoTargetClose(b.t);
    ck_assert_status(UwdfIoTargetSetHandOverTimes(b.t, TRUE), STATUS_INVALID_DEVICE_STATE);
    benv_fini(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batching");
    TCase *tc = tu_tcase(s, "batching", 60);
    tcase_add_loop_test(tc, complete_min_above_what_is_in_flight_completes_everything, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, complete_min_runs_the_routines_of_a_batch_together, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, complete_max_splits_a_batch_into_rounds, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, plug_finished_early_hands_over_everything, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, plug_hands_over_at_the_submit_batch, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_thread_that_ends_plugged_hands_its_sends_over, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_framework_wait_hands_the_plug_over, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_held_send_can_be_cancelled, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, a_routines_sends_to_another_engine_go_over_together, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, batching_arguments_are_checked, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_is_when_a_held_send_reached_the_kernel, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_of_a_resend_is_when_its_round_ended, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, batched_resend_is_handed_over_when_its_routine_returned, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_is_read_after_the_submitting_call, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_with_one_op_per_submit_is_each_ops_own_call, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_is_zero_when_not_asked_or_not_handed_over, 0, TU_BACKENDS);
    tcase_add_loop_test(tc, handover_time_arguments_are_checked, 0, TU_BACKENDS);
    return tu_main(s, "test_batching");
}
