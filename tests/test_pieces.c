/* Requests larger than one kernel op: MDL chains longer than IOV_MAX,
 * reads and writes over the byte limit of one op, and O_DIRECT scatter
 * lists whose segments the kernel would refuse. Each is still one request:
 * one completion, one status, the bytes of all its pieces. Both engines. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/internal.h" /* uwdf_engine_test_max_bytes, the pieces limits */

#define PG 4096u
#define SEED 0x5eed

/* A chain of n MDLs over one buffer. Page layout: MDL i describes page
 * n-1-i (reversed, so a piece that lost its place shows). Odd layout:
 * MDL i describes len[i] bytes at an odd offset inside its own 8 KiB
 * slot, lengths odd too; the last one is trimmed or padded so the total
 * is `total`. */
struct chain {
    int n;
    PMDL *m;
    unsigned char *buf;
    size_t buflen;
    size_t *off, *len;
    size_t total;
};

static void chain_link(struct chain *c)
{
    c->m = calloc((size_t)c->n, sizeof(*c->m));
    ck_assert_ptr_nonnull(c->m);
    for (int i = 0; i < c->n; i++) {
        c->m[i] = IoAllocateMdl(c->buf + c->off[i], (ULONG)c->len[i], FALSE, FALSE, NULL);
        ck_assert_ptr_nonnull(c->m[i]);
        MmBuildMdlForNonPagedPool(c->m[i]);
        if (i > 0)
            c->m[i - 1]->Next = c->m[i];
    }
}

static void chain_pages(struct chain *c, int n)
{
    c->n = n;
    c->buflen = (size_t)n * PG;
    ck_assert_int_eq(posix_memalign((void **)&c->buf, PG, c->buflen), 0);
    c->off = calloc((size_t)n, sizeof(size_t));
    c->len = calloc((size_t)n, sizeof(size_t));
    for (int i = 0; i < n; i++) {
        c->off[i] = (size_t)(n - 1 - i) * PG;
        c->len[i] = PG;
    }
    c->total = c->buflen;
    chain_link(c);
}

/* Segments of 1..max_len bytes at odd offsets, totalling total bytes. */
static void chain_odd(struct chain *c, int n, size_t max_len, size_t total)
{
    c->n = n;
    /* Room for an odd start inside the slot: anywhere in a page for
     * longer segments, a few bytes for tiny ones. */
    size_t pad = max_len < 64 ? 8 : PG;
    size_t slot = max_len + pad;
    c->buflen = (size_t)n * slot + total;
    ck_assert_int_eq(posix_memalign((void **)&c->buf, PG, c->buflen), 0);
    c->off = calloc((size_t)n, sizeof(size_t));
    c->len = calloc((size_t)n, sizeof(size_t));
    size_t sum = 0;
    for (int i = 0; i < n; i++) {
        c->off[i] = (size_t)i * slot + 1 + (size_t)(i * 2) % (pad - 1);
        c->len[i] = 1 + ((size_t)i * 37) % max_len;
        if (i == n - 1) { /* the rest (the buffer has room after the last slot) */
            ck_assert_uint_lt(sum, total);
            c->len[i] = total - sum;
        }
        sum += c->len[i];
    }
    c->total = total;
    chain_link(c);
}

static void chain_free(struct chain *c)
{
    for (int i = 0; i < c->n; i++)
        IoFreeMdl(c->m[i]);
    free(c->m);
    free(c->off);
    free(c->len);
    free(c->buf);
}

/* The chain's bytes in order (malloc'd), or the reverse: flat into the chain. */
static unsigned char *chain_gather(const struct chain *c)
{
    unsigned char *flat = malloc(c->total ? c->total : 1), *p = flat;
    for (int i = 0; i < c->n; i++) {
        memcpy(p, c->buf + c->off[i], c->len[i]);
        p += c->len[i];
    }
    return flat;
}

static void chain_scatter(struct chain *c, const unsigned char *flat)
{
    for (int i = 0; i < c->n; i++) {
        memcpy(c->buf + c->off[i], flat, c->len[i]);
        flat += c->len[i];
    }
}

/* The first byte of buf[from, to) that is not zero, or to. */
static size_t first_nonzero(const unsigned char *buf, size_t from, size_t to)
{
    while (from < to && buf[from] == 0)
        from++;
    return from;
}

static NTSTATUS chain_write(WDFIOTARGET t, struct chain *c, LONGLONG off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, c->m[0], (ULONG)c->total);
    return WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, bytes);
}

static NTSTATUS chain_read(WDFIOTARGET t, struct chain *c, LONGLONG off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_MDL(&d, c->m[0], (ULONG)c->total);
    return WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, bytes);
}

/* What the file holds at off, read with a plain aligned buffer. */
static unsigned char *file_bytes(WDFIOTARGET t, size_t len, LONGLONG off)
{
    unsigned char *b;
    ck_assert_int_eq(posix_memalign((void **)&b, PG, len), 0);
    WDF_MEMORY_DESCRIPTOR d;
    ULONG_PTR bytes = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, b, (ULONG)len);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, len);
    return b;
}

static WDFIOTARGET open_rw(struct tu_env *e, const char *path, bool direct)
{
    WDFIOTARGET t;
    ck_assert_status(tu_target_open(e->device, path, GENERIC_READ | GENERIC_WRITE, FILE_OPEN,
                                    direct ? FILE_NO_INTERMEDIATE_BUFFERING : 0, &t),
                     STATUS_SUCCESS);
    return t;
}

/* The test's environment on engine backend, with a file of size bytes
 * (zeros) open buffered or unbuffered. */
static WDFIOTARGET env_target(struct tu_env *e, int backend, size_t size, bool direct, char **path)
{
    tu_env_init_backend(e, backend);
    *path = tu_env_file(e, "f", size, 0);
    return open_rw(e, *path, direct);
}

/* Write through a chain, check the file, read back through another chain
 * of the same shape, check the chain. */
static void round_trip(WDFIOTARGET t, struct chain *w, struct chain *r, LONGLONG off, unsigned seed)
{
    ULONG_PTR bytes = 0;
    unsigned char *want = malloc(w->total);
    tu_fill_pattern(want, w->total, seed, (uint64_t)off);
    chain_scatter(w, want);
    ck_assert_status(chain_write(t, w, off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, w->total);
    unsigned char *got = file_bytes(t, w->total, off);
    ck_assert_msg(memcmp(got, want, w->total) == 0, "the file holds the chain's bytes in chain order");
    free(got);
    memset(r->buf, 0xA5, r->buflen);
    bytes = 0;
    ck_assert_status(chain_read(t, r, off, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, r->total);
    got = chain_gather(r);
    ck_assert_msg(memcmp(got, want, r->total) == 0, "the chain holds the file's bytes in chain order");
    free(got);
    free(want);
}

static const int chain_lengths[] = { 1, 1024, 1025, 5000 };

static void chains_of_pages(int backend, bool direct)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, backend, 5001 * PG, direct, &path);
    for (size_t k = 0; k < RTL_NUMBER_OF(chain_lengths); k++) {
        struct chain w, r;
        chain_pages(&w, chain_lengths[k]);
        chain_pages(&r, chain_lengths[k]);
        round_trip(t, &w, &r, PG, SEED + (unsigned)k);
        chain_free(&w);
        chain_free(&r);
    }
    free(path);
    tu_env_fini(&e);
}

START_TEST(chains_of_1_1024_1025_5000_pages_complete_buffered)
{
    chains_of_pages(_i, false);
}
END_TEST

START_TEST(chains_of_1_1024_1025_5000_pages_complete_unbuffered)
{
    chains_of_pages(_i, true);
}
END_TEST

/* Odd page offsets and lengths: buffered, any shape goes straight to the
 * kernel in pieces; unbuffered, a chain whose offset and length are on the
 * sector size is staged through the bounce buffer. */
static void odd_chains(int backend, bool direct)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, backend, 8u << 20, direct, &path);
    for (size_t k = 0; k < RTL_NUMBER_OF(chain_lengths); k++) {
        int n = chain_lengths[k];
        /* 2 MiB in 5000 segments is over the 1 MiB bounce: two pieces. */
        size_t total = n == 1 ? 3 * PG : (size_t)n * 400 + PG - (size_t)n * 400 % PG;
        struct chain w, r;
        chain_odd(&w, n, 777, total);
        chain_odd(&r, n, 777, total);
        round_trip(t, &w, &r, 2 * PG, SEED + 10 + (unsigned)k);
        chain_free(&w);
        chain_free(&r);
    }
    free(path);
    tu_env_fini(&e);
}

START_TEST(chains_at_odd_page_offsets_complete_buffered)
{
    odd_chains(_i, false);
}
END_TEST

START_TEST(chains_at_odd_page_offsets_are_staged_unbuffered)
{
    odd_chains(_i, true);
}
END_TEST

/* The unbuffered rules stay where the caller can keep them: a chain whose
 * length is off the sector size, or one misaligned buffer, fails as before
 * and writes nothing. */
START_TEST(unbuffered_chain_off_the_sector_size_still_fails)
{
    struct tu_env e;
    ULONG_PTR bytes = 1;
    char *path;
    WDFIOTARGET t = env_target(&e, _i, 1u << 20, true, &path);
    struct chain w;
    chain_odd(&w, 1500, 300, 1500 * 200 + 1);
    memset(w.buf, 0x77, w.buflen);
    ck_assert_status(chain_write(t, &w, 0, &bytes), STATUS_DATATYPE_MISALIGNMENT);
    ck_assert_uint_eq(bytes, 0);
    unsigned char *got = file_bytes(t, PG, 0);
    ck_assert_uint_eq(first_nonzero(got, 0, PG), PG);
    free(got);
    chain_free(&w);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* Over the byte limit of one op (lowered here from 2 GiB - 4 KiB): one
 * buffer runs as pieces, at the right offsets, and a NULL DeviceOffset
 * moves the file position by the whole request. */
static void over_the_byte_limit(int backend, bool direct)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, backend, 4u << 20, direct, &path);
    atomic_store(&uwdf_engine_test_max_bytes, 64 * 1024);
    size_t len = (1u << 20) + 3 * PG;
    unsigned char *w, *r;
    ck_assert_int_eq(posix_memalign((void **)&w, PG, len), 0);
    ck_assert_int_eq(posix_memalign((void **)&r, PG, len), 0);
    WDF_MEMORY_DESCRIPTOR d;
    ULONG_PTR bytes = 0;
    for (int pass = 0; pass < 2; pass++) { /* NULL offset: the file position, twice */
        tu_fill_pattern(w, len, SEED + 20, (uint64_t)pass * len);
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, w, (ULONG)len);
        ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, NULL, NULL, &bytes), STATUS_SUCCESS);
        ck_assert_uint_eq(bytes, len);
    }
    for (int pass = 0; pass < 2; pass++) {
        LONGLONG off = (LONGLONG)(pass * len);
        memset(r, 0, len);
        WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, r, (ULONG)len);
        ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
        ck_assert_uint_eq(bytes, len);
        ck_assert(tu_pattern_matches(r, len, SEED + 20, (uint64_t)off));
    }
    /* A read that runs into the end of the file: a short count, success. */
    LONGLONG off = (4 << 20) - 5 * PG;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, r, (ULONG)len);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 5 * PG);
    atomic_store(&uwdf_engine_test_max_bytes, 0);
    free(w);
    free(r);
    free(path);
    tu_env_fini(&e);
}

START_TEST(over_the_byte_limit_runs_as_pieces_buffered)
{
    over_the_byte_limit(_i, false);
}
END_TEST

START_TEST(over_the_byte_limit_runs_as_pieces_unbuffered)
{
    over_the_byte_limit(_i, true);
}
END_TEST

/* A failure in the middle piece: a block device (a loop device) of 5 MiB,
 * a write of 2,100 pages from its start. The first piece (1,024 pages)
 * fits, the second runs into the end (a short write), the third starts at
 * the end: STATUS_DISK_FULL, with the bytes written before it. A read the
 * same way stops at the end with a short count. */
static void middle_piece_fails(int backend, bool direct)
{
    struct tu_env e;
    if (!tu_root())
        return;
    tu_env_init_backend(&e, backend);
    char *backing = tu_env_file(&e, "backing", 5u << 20, 0);
    const char *dev = tu_env_loop(&e, backing, 0);
    ck_assert_ptr_nonnull(dev);
    WDFIOTARGET t = open_rw(&e, dev, direct);
    struct chain w, r;
    chain_pages(&w, 2100);
    chain_pages(&r, 2100);
    unsigned char *want = malloc(w.total);
    tu_fill_pattern(want, w.total, SEED + 30, 0);
    chain_scatter(&w, want);
    ULONG_PTR bytes = 0;
    ck_assert_status(chain_write(t, &w, 0, &bytes), STATUS_DISK_FULL);
    ck_assert_uint_eq(bytes, 5u << 20);
    unsigned char *got = file_bytes(t, 5u << 20, 0);
    ck_assert(memcmp(got, want, 5u << 20) == 0);
    free(got);
    bytes = 0;
    ck_assert_status(chain_read(t, &r, 0, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, 5u << 20);
    got = chain_gather(&r);
    ck_assert(memcmp(got, want, 5u << 20) == 0);
    free(got);
    /* Starting at the end: the first piece fails, nothing moved. */
    ck_assert_status(chain_write(t, &w, 5 << 20, &bytes), STATUS_DISK_FULL);
    ck_assert_uint_eq(bytes, 0);
    free(want);
    chain_free(&w);
    chain_free(&r);
    free(backing);
    tu_env_fini(&e);
}

START_TEST(failure_in_the_middle_piece_reports_bytes_before_it_buffered)
{
    middle_piece_fails(_i, false);
}
END_TEST

START_TEST(failure_in_the_middle_piece_reports_bytes_before_it_unbuffered)
{
    middle_piece_fails(_i, true);
}
END_TEST

/* ---- asynchronous: one completion, cancel and timeout reach the pieces ---- */

struct done_rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    NTSTATUS status;
    ULONG_PTR info;
};

static VOID on_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params, WDFCONTEXT Context)
{
    (void)Request;
    (void)Target;
    struct done_rec *d = Context;
    pthread_mutex_lock(&d->lock);
    d->calls++;
    d->status = Params->IoStatus.Status;
    d->info = Params->IoStatus.Information;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void wait_done(struct done_rec *d)
{
    pthread_mutex_lock(&d->lock);
    while (d->calls == 0)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

/* A request carrying the chain in its IRP, formatted as a write at off. */
static void format_chain_write(WDFREQUEST req, struct chain *c, LONGLONG off)
{
    IO_STACK_LOCATION s;
    memset(&s, 0, sizeof(s));
    s.MajorFunction = IRP_MJ_WRITE;
    s.Parameters.Write.Length = (ULONG)c->total;
    s.Parameters.Write.ByteOffset.QuadPart = off;
    WdfRequestWdmFormatUsingStackLocation(req, &s);
    WdfRequestWdmGetIrp(req)->MdlAddress = c->m[0];
}

START_TEST(async_chain_completes_once_with_the_total)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, _i, 6000 * PG, true, &path);
    struct chain w;
    chain_pages(&w, 5000);
    tu_fill_pattern(w.buf, w.buflen, SEED + 40, 0);
    WDFREQUEST req = tu_make_request(t);
    struct done_rec d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
    for (int round = 0; round < 3; round++) { /* reused: the pieces' state is kept */
        WDF_REQUEST_REUSE_PARAMS rp;
        WDF_REQUEST_REUSE_PARAMS_INIT(&rp, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
        ck_assert_status(WdfRequestReuse(req, &rp), STATUS_SUCCESS);
        format_chain_write(req, &w, (LONGLONG)round * PG);
        WdfRequestSetCompletionRoutine(req, on_done, &d);
        d.calls = 0;
        ck_assert(WdfRequestSend(req, t, WDF_NO_SEND_OPTIONS));
        wait_done(&d);
        tu_sleep_ms(20); /* a second completion would come now */
        ck_assert_int_eq(d.calls, 1);
        ck_assert_status(d.status, STATUS_SUCCESS);
        ck_assert_uint_eq(d.info, w.total);
    }
    unsigned char *want = chain_gather(&w), *got = file_bytes(t, w.total, 2 * PG);
    ck_assert(memcmp(got, want, w.total) == 0);
    free(want);
    free(got);
    WdfObjectDelete(req);
    chain_free(&w);
    free(path);
    tu_env_fini(&e);
}
END_TEST

/* Every piece's completion is held 200 ms (the stall injector), so a
 * 5-piece request lasts 1 s; its 450 ms timeout ends it in the middle:
 * STATUS_IO_TIMEOUT once, with the bytes of the pieces done, no more
 * pieces started. A cancel does the same with STATUS_CANCELLED. */
static void cut_short(int backend, bool by_timeout)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, backend, 6000 * PG, false, &path);
    struct chain w;
    chain_pages(&w, 5000);
    memset(w.buf, 0x3C, w.buflen);
    WDFREQUEST req = tu_make_request(t);
    struct done_rec d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
    format_chain_write(req, &w, 0);
    WdfRequestSetCompletionRoutine(req, on_done, &d);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    if (by_timeout)
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(450));
    UwdfFaultInjectStall(200);
    double t0 = tu_now_ms();
    /* the bound below checks the framework's delay, not a loaded scheduler's */
    struct tu_control_timer ctl;
    tu_control_timer_start(&ctl, 450);
    ck_assert(WdfRequestSend(req, t, &o));
    if (!by_timeout) {
        tu_sleep_ms(450);
        ck_assert(WdfRequestCancelSentRequest(req));
    }
    wait_done(&d);
    double took = tu_now_ms() - t0;
    UwdfFaultInjectStall(0);
    tu_sleep_ms(200);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_status(d.status, by_timeout ? STATUS_IO_TIMEOUT : STATUS_CANCELLED);
    ck_assert_uint_lt(d.info, w.total);
    ck_assert_uint_eq(d.info % (1024 * PG), 0); /* whole pieces */
    double late = tu_control_timer_late_ms(&ctl);
    ck_assert_msg(took < 900 + late, "ended in the middle (%.0f ms; a control timer %.1f ms late)", took, late);
    /* The piece the cancel found may have reached the file; none after it
     * started. */
    unsigned char *got = file_bytes(t, w.total, 0);
    ck_assert_uint_eq(first_nonzero(got, d.info + 1024 * PG, w.total), w.total);
    free(got);
    WdfObjectDelete(req);
    chain_free(&w);
    free(path);
    tu_env_fini(&e);
}

START_TEST(timeout_ends_a_request_between_pieces_once)
{
    cut_short(_i, true);
}
END_TEST

START_TEST(cancel_ends_a_request_between_pieces_once)
{
    cut_short(_i, false);
}
END_TEST

/* The longest chains: Windows puts no bound on an MDL chain's length, only
 * on the transfer (Parameters.Write.Length, a ULONG, 4 GiB - 1 bytes) and
 * on one MDL (4 GiB - PAGE_SIZE). So the most segments a request can have
 * is one byte each: 100,000 of them here (98 pieces), buffered and staged
 * unbuffered. */
static void byte_sized_chain(int backend, bool direct)
{
    struct tu_env e;
    char *path;
    WDFIOTARGET t = env_target(&e, backend, 1u << 20, direct, &path);
    enum { N = 100000 };
    struct chain w, r;
    chain_odd(&w, N, 1, 25 * PG);
    chain_odd(&r, N, 1, 25 * PG);
    round_trip(t, &w, &r, PG, SEED + 50);
    chain_free(&w);
    chain_free(&r);
    free(path);
    tu_env_fini(&e);
}

START_TEST(chain_of_100000_single_byte_mdls_buffered)
{
    byte_sized_chain(_i, false);
}
END_TEST

START_TEST(chain_of_100000_single_byte_mdls_unbuffered)
{
    byte_sized_chain(_i, true);
}
END_TEST

/* A direct-I/O filter presents a misaligned buffer, which the port
 * describes by an MDL, and forwards it to an unbuffered file: sent on, it
 * is the MDL direct I/O built, which the target stages as any one-MDL
 * buffer whose offset and length are on the sector size. */
START_TEST(misaligned_buffer_forwarded_by_a_direct_io_filter_is_staged_unbuffered)
{
    struct tu_env e;
    char *path;
    tu_env_init_backend(&e, _i);
    path = tu_env_file(&e, "f", 1u << 20, 0);
    WDFDEVICE dev;
    ck_assert_status(tu_forwarder_create(e.driver, "\\Device\\uwdfPiecesFilter", WdfDeviceIoDirect,
                                         WdfIoQueueDispatchParallel, path, GENERIC_READ | GENERIC_WRITE,
                                         FILE_NO_INTERMEDIATE_BUFFERING, &dev),
                     STATUS_SUCCESS);
    WDFIOTARGET t;
    ck_assert_status(WdfIoTargetCreate(e.device, WDF_NO_OBJECT_ATTRIBUTES, &t), STATUS_SUCCESS);
    tu_open_by_name(t, "\\Device\\uwdfPiecesFilter", 0);
    unsigned char *w, *r;
    ck_assert_int_eq(posix_memalign((void **)&w, PG, 2 * PG), 0);
    ck_assert_int_eq(posix_memalign((void **)&r, PG, 2 * PG), 0);
    tu_fill_pattern(w + 1, PG, SEED + 40, PG);
    memset(r, 0, 2 * PG);
    WDF_MEMORY_DESCRIPTOR d;
    ULONG_PTR bytes = 0;
    LONGLONG off = PG;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, w + 1, PG);
    ck_assert_status(WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, PG);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, r + 1, PG);
    ck_assert_status(WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, NULL, &bytes), STATUS_SUCCESS);
    ck_assert_uint_eq(bytes, PG);
    ck_assert(tu_pattern_matches(r + 1, PG, SEED + 40, PG));
    ck_assert_uint_eq(tu_forwarder_of(dev)->completed, 2);
    free(w);
    free(r);
    WdfObjectDelete(t);
    free(path);
    tu_env_fini(&e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pieces");
    struct {
        const char *name;
        const TTest *test;
        int timeout;
    } cases[] = {
        { "chains_pages_buffered", chains_of_1_1024_1025_5000_pages_complete_buffered, 60 },
        { "chains_pages_unbuffered", chains_of_1_1024_1025_5000_pages_complete_unbuffered, 60 },
        { "odd_buffered", chains_at_odd_page_offsets_complete_buffered, 60 },
        { "odd_unbuffered", chains_at_odd_page_offsets_are_staged_unbuffered, 60 },
        { "off_sector", unbuffered_chain_off_the_sector_size_still_fails, 30 },
        { "byte_limit_buffered", over_the_byte_limit_runs_as_pieces_buffered, 60 },
        { "byte_limit_unbuffered", over_the_byte_limit_runs_as_pieces_unbuffered, 60 },
        { "middle_buffered", failure_in_the_middle_piece_reports_bytes_before_it_buffered, 60 },
        { "middle_unbuffered", failure_in_the_middle_piece_reports_bytes_before_it_unbuffered, 60 },
        { "async_once", async_chain_completes_once_with_the_total, 60 },
        { "timeout", timeout_ends_a_request_between_pieces_once, 60 },
        { "cancel", cancel_ends_a_request_between_pieces_once, 60 },
        { "bytes_buffered", chain_of_100000_single_byte_mdls_buffered, 120 },
        { "bytes_unbuffered", chain_of_100000_single_byte_mdls_unbuffered, 120 },
        { "filter_staged", misaligned_buffer_forwarded_by_a_direct_io_filter_is_staged_unbuffered, 30 },
    };
    for (size_t i = 0; i < RTL_NUMBER_OF(cases); i++) {
        TCase *tc = tu_tcase(s, cases[i].name, cases[i].timeout);
        tcase_add_loop_test(tc, cases[i].test, 0, TU_BACKENDS);
    }
    return tu_run_suite(s);
}
