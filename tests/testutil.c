/* The test library's helpers (testutil.h): bug-check capture, drivers and
 * devices, data patterns, completions, guarded buffers, the Filter Manager. */
#define _GNU_SOURCE
#include "config.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

struct tu_bugcheck tu_last_bugcheck;
const char *const tu_backend_names[TU_BACKENDS] = { "io_uring", "libaio" };

static VOID tu_bugcheck_cb(ULONG code, ULONG_PTR p1, ULONG_PTR p2, ULONG_PTR p3, ULONG_PTR p4,
                           PCSTR reason, PVOID ctx)
{
    (void)ctx;
    __atomic_add_fetch(&tu_last_bugcheck.count, 1, __ATOMIC_SEQ_CST);
    tu_last_bugcheck.bugcheck = code;
    tu_last_bugcheck.code = (ULONG)p1;
    tu_last_bugcheck.p[0] = p1;
    tu_last_bugcheck.p[1] = p2;
    tu_last_bugcheck.p[2] = p3;
    tu_last_bugcheck.p[3] = p4;
    snprintf(tu_last_bugcheck.reason, sizeof(tu_last_bugcheck.reason), "%s", reason);
}

void tu_bugcheck_capture(void)
{
    tu_bugcheck_reset();
    UwdfSetBugCheckCallback(tu_bugcheck_cb, NULL);
}

void tu_bugcheck_reset(void)
{
    memset(&tu_last_bugcheck, 0, sizeof(tu_last_bugcheck));
}

void tu_driver_and_device(WDFDRIVER *driver, WDFDEVICE *device)
{
    WDF_DRIVER_CONFIG cfg;
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    ck_assert_status(WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, driver), STATUS_SUCCESS);
    if (!device)
        return;
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(*driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    ck_assert_ptr_nonnull(init);
    ck_assert_status(WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, device), STATUS_SUCCESS);
    ck_assert_ptr_null(init);
    WdfControlFinishInitializing(*device);
}

void tu_fill_pattern(void *buf, size_t len, unsigned seed, uint64_t offset)
{
    /* Every byte depends on both the seed and its file offset (a
     * splitmix64-style mix), so data written with one seed never passes for
     * another's, and a block at the wrong offset is caught. */
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t x = (offset + i) ^ ((uint64_t)seed * 0x9E3779B97F4A7C15ull);
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        x ^= x >> 31;
        p[i] = seed ? (unsigned char)x : 0;
    }
}

void tu_unicode(UNICODE_STRING *us, WCHAR *buf, size_t buf_chars, const char *path)
{
    size_t n = mbstowcs(buf, path, buf_chars - 1);
    ck_assert(n != (size_t)-1);
    buf[n] = L'\0';
    RtlInitUnicodeString(us, buf);
}

NTSTATUS tu_target_open(WDFDEVICE device, const char *path, ACCESS_MASK access, ULONG disposition,
                        ULONG options, WDFIOTARGET *target)
{
    NTSTATUS status = WdfIoTargetCreate(device, WDF_NO_OBJECT_ATTRIBUTES, target);
    if (!NT_SUCCESS(status)) {
        *target = NULL;
        return status;
    }
    return tu_open_name(*target, path, access, disposition, FILE_NON_DIRECTORY_FILE | options);
}

bool tu_use_backend(int index)
{
    setenv("UWDF_BACKEND", tu_backend_names[index], 1);
    return true;
}

WDFDRIVER tu_make_driver(void)
{
    WDFDRIVER driver;
    tu_driver_and_device(&driver, NULL);
    return driver;
}

WDFMEMORY tu_make_memory(size_t size, void **buffer)
{
    WDFMEMORY mem;
    ck_assert_status(WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, size, &mem, buffer),
                     STATUS_SUCCESS);
    return mem;
}

WDFREQUEST tu_make_request(WDFIOTARGET target)
{
    WDFREQUEST req;
    ck_assert_status(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, target, &req), STATUS_SUCCESS);
    return req;
}

void *tu_read_loop(void *arg)
{
    struct tu_read_loop *s = arg;
    void *buf;
    WDFMEMORY m = tu_make_memory(s->len, &buf);
    WDF_MEMORY_DESCRIPTOR d;
    WDF_MEMORY_DESCRIPTOR_INIT_HANDLE(&d, m, NULL);
    /* Under valgrind, threads take turns on its lock, handed over
     * unfairly: senders whose reads complete inline never block, and the
     * test's own thread waited minutes for a turn (docs/testing.md). */
    bool take_turns = tu_running_on_valgrind();
    while (!atomic_load(s->stop)) {
        if (take_turns)
            sched_yield();
        ULONG_PTR n = 0;
        NTSTATUS st = WdfIoTargetSendReadSynchronously(s->t, NULL, &d, NULL, NULL, &n);
        if (st == STATUS_SUCCESS)
            s->ok++;
        else if (st == STATUS_INVALID_DEVICE_STATE || st == STATUS_CANCELLED)
            s->refused++;
        else
            s->other++;
    }
    WdfObjectDelete(m);
    return NULL;
}

bool tu_pattern_matches(const void *buf, size_t len, unsigned seed, uint64_t offset)
{
    unsigned char *want = malloc(len ? len : 1);
    tu_fill_pattern(want, len, seed, offset);
    bool same = memcmp(buf, want, len) == 0;
    free(want);
    return same;
}

void *tu_aligned_alloc(size_t size)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 4096, size), 0);
    return p;
}

int tu_load(atomic_int *a)
{
    return atomic_load(a);
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *tu_join(const char *dir, const char *name)
{
    char *p = NULL;
    ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
    return p;
}

void tu_write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

bool tu_text_is(const char *path, const char *text)
{
    char buf[256] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)strlen(text) && strcmp(buf, text) == 0;
}

static void *tu_swapper_run(void *arg)
{
    struct tu_swapper *s = arg;
    while (!atomic_load(&s->stop)) {
        for (int step = 0; step < s->steps; step++) {
            if (renameat2(AT_FDCWD, s->from[step], AT_FDCWD, s->to[step], RENAME_EXCHANGE) != 0) {
                s->err = errno;
                return NULL;
            }
            sched_yield();
        }
        atomic_fetch_add(&s->swaps, 1);
    }
    return NULL;
}

void tu_swapper_start(struct tu_swapper *s)
{
    atomic_store(&s->stop, false);
    atomic_store(&s->swaps, 0);
    s->err = 0;
    ck_assert_int_eq(pthread_create(&s->thread, NULL, tu_swapper_run, s), 0);
}

void tu_swapper_stop(struct tu_swapper *s)
{
    atomic_store(&s->stop, true);
    ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *control_timer_main(void *arg)
{
    struct tu_control_timer *c = arg;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &c->deadline, NULL) == EINTR)
        ;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    c->late_ms = (now.tv_sec - c->deadline.tv_sec) * 1e3 + (now.tv_nsec - c->deadline.tv_nsec) / 1e6;
    return NULL;
}

void tu_control_timer_start(struct tu_control_timer *c, double ms)
{
    clock_gettime(CLOCK_MONOTONIC, &c->deadline);
    long long ns = c->deadline.tv_nsec + (long long)(ms * 1e6);
    c->deadline.tv_sec += ns / 1000000000;
    c->deadline.tv_nsec = ns % 1000000000;
    c->late_ms = 0;
    ck_assert_int_eq(pthread_create(&c->thread, NULL, control_timer_main, c), 0);
}

double tu_control_timer_late_ms(struct tu_control_timer *c)
{
    ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
    return c->late_ms;
}

void tu_expect_bugcheck(ULONG_PTR code, ULONG_PTR p2)
{
    ck_assert_int_eq(tu_last_bugcheck.count, 1);
    ck_assert_uint_eq(tu_last_bugcheck.p[0], code);
    ck_assert_uint_eq(tu_last_bugcheck.p[1], p2);
    tu_bugcheck_reset();
}

void tu_expect_bugcheck_reason(ULONG code, const char *reason_part)
{
    ck_assert_int_eq(tu_last_bugcheck.count, 1);
    ck_assert_uint_eq(tu_last_bugcheck.code, code);
    ck_assert_msg(tu_last_bugcheck.reason[0] != '\0', "bug check without a reason");
    if (reason_part)
        ck_assert_msg(strstr(tu_last_bugcheck.reason, reason_part) != NULL,
                      "reason '%s' lacks '%s'", tu_last_bugcheck.reason, reason_part);
    tu_bugcheck_reset();
}

/* ---- completion record ---- */

void tu_completion_init(struct tu_completion *c)
{
    memset(c, 0, sizeof(*c));
    KeInitializeEvent(&c->done, NotificationEvent, FALSE);
}

void tu_completion_fini(struct tu_completion *c)
{
    UwdfKeDestroyEvent(&c->done);
}

VOID tu_on_complete(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                    WDFCONTEXT Context)
{
    struct tu_completion *c = Context;
    c->request = Request;
    c->target = Target;
    c->status = Params->IoStatus.Status;
    c->information = Params->IoStatus.Information;
    c->type = Params->Type;
    c->params = *Params;
    c->irql = KeGetCurrentIrql();
    atomic_fetch_add(&c->calls, 1);
    KeSetEvent(&c->done, IO_NO_INCREMENT, FALSE);
}

bool tu_completion_wait(struct tu_completion *c, int ms)
{
    LARGE_INTEGER timeout;
    timeout.QuadPart = WDF_REL_TIMEOUT_IN_MS((ULONGLONG)ms);
    return KeWaitForSingleObject(&c->done, Executive, KernelMode, FALSE, &timeout) == STATUS_SUCCESS;
}

int tu_ncalls(struct tu_completion *c)
{
    return atomic_load(&c->calls);
}

/* ---- a neighbour reader ---- */

#define TU_READER_BLK 4096u

static EVT_WDF_REQUEST_COMPLETION_ROUTINE tu_reader_done;

static bool tu_reader_send(struct tu_reader_slot *sl)
{
    struct tu_reader *r = sl->reader;
    WDF_REQUEST_REUSE_PARAMS reuse;
    WDF_REQUEST_REUSE_PARAMS_INIT(&reuse, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    if (WdfRequestReuse(sl->request, &reuse) != STATUS_SUCCESS)
        return false;
    LONGLONG off = (LONGLONG)sl->offset;
    if (WdfIoTargetFormatRequestForRead(r->target, sl->request, sl->memory, NULL, &off) != STATUS_SUCCESS)
        return false;
    WdfRequestSetCompletionRoutine(sl->request, tu_reader_done, sl);
    atomic_fetch_add(&r->in_flight, 1);
    atomic_fetch_add(&r->sent, 1);
    if (WdfRequestSend(sl->request, r->target, WDF_NO_SEND_OPTIONS))
        return true;
    atomic_fetch_sub(&r->sent, 1);
    atomic_fetch_sub(&r->in_flight, 1);
    return false;
}

static VOID tu_reader_done(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                           WDFCONTEXT Context)
{
    struct tu_reader_slot *sl = Context;
    struct tu_reader *r = sl->reader;
    (void)Request;
    (void)Target;
    if (KeGetCurrentIrql() != DISPATCH_LEVEL)
        atomic_store(&r->off_dispatch, true);
    pthread_t self = pthread_self(), last = atomic_exchange(&r->thread, self);
    if (last && !pthread_equal(last, self))
        atomic_store(&r->threads_differ, true);
    if (Params->IoStatus.Status != STATUS_SUCCESS) {
        if (atomic_fetch_add(&r->failed, 1) == 0)
            r->first_failure = Params->IoStatus.Status;
    } else if (Params->IoStatus.Information != TU_READER_BLK ||
               !tu_pattern_matches(sl->buffer, TU_READER_BLK, r->seed, sl->offset)) {
        atomic_fetch_add(&r->wrong, 1);
    }
    atomic_fetch_add(&r->completed, 1);
    sl->offset = (sl->offset + (uint64_t)r->depth * TU_READER_BLK) % (TU_READER_BLOCKS * TU_READER_BLK);
    bool resent = !atomic_load(&r->stop) && tu_reader_send(sl);
    /* Last: the stopping thread may delete everything once it reads 0. */
    atomic_fetch_sub(&r->in_flight, 1);
    (void)resent;
}

void tu_reader_start(struct tu_reader *r, WDFDEVICE device, const char *path, unsigned seed, unsigned depth)
{
    memset(r, 0, sizeof(*r));
    ck_assert_uint_le(depth, TU_READER_MAX_DEPTH);
    r->seed = seed;
    r->depth = depth;
    NTSTATUS st = tu_target_open(device, path, GENERIC_READ, FILE_OPEN, FILE_NO_INTERMEDIATE_BUFFERING, &r->target);
    ck_assert_status(st, STATUS_SUCCESS);
    for (unsigned i = 0; i < depth; i++) {
        struct tu_reader_slot *sl = &r->slots[i];
        sl->reader = r;
        sl->offset = (uint64_t)i * TU_READER_BLK;
        sl->request = tu_make_request(r->target);
        sl->memory = tu_make_memory(TU_READER_BLK, &sl->buffer);
    }
    for (unsigned i = 0; i < depth; i++)
        ck_assert(tu_reader_send(&r->slots[i]));
}

unsigned long tu_reader_completed(struct tu_reader *r)
{
    return atomic_load(&r->completed);
}

bool tu_reader_progresses(struct tu_reader *r, unsigned long n, int ms)
{
    unsigned long want = tu_reader_completed(r) + n;
    double end = tu_now_ms() + ms;
    while (tu_reader_completed(r) < want) {
        if (tu_now_ms() > end)
            return false;
        tu_sleep_ms(1);
    }
    return true;
}

void tu_reader_stop(struct tu_reader *r)
{
    atomic_store(&r->stop, true);
    double end = tu_now_ms() + 20000;
    while (atomic_load(&r->in_flight) > 0) {
        ck_assert_msg(tu_now_ms() < end, "reader: %lu reads still in flight", atomic_load(&r->in_flight));
        tu_sleep_ms(1);
    }
    ck_assert_uint_eq(atomic_load(&r->completed), atomic_load(&r->sent));
    ck_assert_msg(atomic_load(&r->failed) == 0, "reader: %lu reads failed, the first with %s",
                  atomic_load(&r->failed), tu_status_name(r->first_failure));
    ck_assert_msg(atomic_load(&r->wrong) == 0, "reader: %lu reads returned other data", atomic_load(&r->wrong));
    ck_assert_msg(!atomic_load(&r->off_dispatch), "reader: a completion routine ran below DISPATCH_LEVEL");
    for (unsigned i = 0; i < r->depth; i++) {
        WdfObjectDelete(r->slots[i].request);
        WdfObjectDelete(r->slots[i].memory);
    }
    WdfObjectDelete(r->target);
    r->target = NULL;
}

/* The time (ns) a thread of this process has been runnable: on a CPU or
 * waiting for one (its schedstat), which a thread that never sleeps fills
 * whatever the load; its CPU time (its stat's clock ticks) without
 * schedstats. */
static uint64_t thread_runnable_ns(const char *tid)
{
    char path[300];
    unsigned long long run = 0, wait = 0, ut = 0, st = 0;
    snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", tid);
    FILE *f = fopen(path, "re");
    if (f) {
        int got = fscanf(f, "%llu %llu", &run, &wait);
        fclose(f);
        if (got == 2)
            return run + wait;
    }
    snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
    f = fopen(path, "re");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
        return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
    return 0;
}

/* The read-type system calls (read, readv, pread, recv...) a thread of
 * this process has made: its io file's syscr; 0 without task I/O
 * accounting. */
static uint64_t thread_read_calls(const char *tid)
{
    char path[300], line[128];
    unsigned long long n = 0;
    snprintf(path, sizeof(path), "/proc/self/task/%s/io", tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "syscr: %llu", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* Walk this process's engine threads: how many, and (runnable_ns) their
 * runnable time, (read_calls) their read-type system calls. */
static long engine_threads_walk(uint64_t *runnable_ns, uint64_t *read_calls)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    long n = 0;
    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue; /* ended meanwhile */
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
        if (strcmp(comm, "uwdf-engine\n") != 0)
            continue;
        n++;
        if (runnable_ns)
            *runnable_ns += thread_runnable_ns(de->d_name);
        if (read_calls)
            *read_calls += thread_read_calls(de->d_name);
    }
    closedir(d);
    return n;
}

long tu_engine_threads(void)
{
    return engine_threads_walk(NULL, NULL);
}

uint64_t tu_engine_threads_runnable_ns(void)
{
    uint64_t ns = 0;
    (void)engine_threads_walk(&ns, NULL);
    return ns;
}

bool tu_read_calls_counted(void)
{
    char tid[32];
    snprintf(tid, sizeof(tid), "%ld", (long)gettid());
    return thread_read_calls(tid) > 0; /* this thread has read files before */
}

uint64_t tu_engine_threads_read_calls(void)
{
    uint64_t n = 0;
    (void)engine_threads_walk(NULL, &n);
    return n;
}

/* ---- CRC32C and guarded buffers ---- */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc32c_table[i] = c;
    }
}

uint32_t tu_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
    while (len--)
        crc = crc32c_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static size_t page_round(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (len + page - 1) / page * page;
}

void *tu_guarded_alloc(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), body = page_round(len);
    char *base = mmap(NULL, body + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(base != MAP_FAILED, "mmap: %s", strerror(errno));
    ck_assert_int_eq(mprotect(base + page, body, PROT_READ | PROT_WRITE), 0);
    return base + page;
}

void tu_guarded_free(void *buf, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (buf)
        munmap((char *)buf - page, page_round(len) + 2 * page);
}

void tu_child_must_abort(void (*fn)(int fd), char *report, size_t size)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        fn(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used < size - 1 && (n = read(fds[0], report + used, size - 1 - used)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_int_gt(n, 0);
        used += (size_t)n;
    }
    report[used] = '\0';
    close(fds[0]);
    int wstatus = 0;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGABRT, "child did not abort (status 0x%x)",
                  wstatus);
}

bool tu_running_on_valgrind(void)
{
    return RUNNING_ON_VALGRIND != 0;
}

bool tu_instrumented(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#endif
#endif
    return tu_running_on_valgrind();
}

long tu_rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

WDFDEVICE tu_named_device(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io,
                          PWDF_OBJECT_ATTRIBUTES request_attrs, WDF_IO_QUEUE_DISPATCH_TYPE type,
                          PFN_WDF_IO_QUEUE_IO_READ rd, PFN_WDF_IO_QUEUE_IO_WRITE wr)
{
    WDFDEVICE dev;
    ck_assert_status(tu_device_create(driver, name, io, WDF_NO_OBJECT_ATTRIBUTES, request_attrs, &dev),
                     STATUS_SUCCESS);
    WDF_IO_QUEUE_CONFIG c;
    WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&c, type);
    if (type != WdfIoQueueDispatchManual) {
        c.EvtIoRead = rd;
        c.EvtIoWrite = wr;
    }
    ck_assert_status(WdfIoQueueCreate(dev, &c, WDF_NO_OBJECT_ATTRIBUTES, NULL), STATUS_SUCCESS);
    return dev;
}

void tu_open_by_name(WDFIOTARGET t, const char *name, ULONG options)
{
    ck_assert_status(tu_open_name(t, name, GENERIC_READ | GENERIC_WRITE, FILE_OPEN, options), STATUS_SUCCESS);
}

WDFDEVICE tu_make_forwarder(WDFDRIVER driver, const char *name, WDF_DEVICE_IO_TYPE io, const char *lower,
                            ULONG options)
{
    WDFDEVICE dev;
    ck_assert_status(tu_forwarder_create(driver, name, io, WdfIoQueueDispatchParallel, lower,
                                         GENERIC_READ | GENERIC_WRITE, options, &dev),
                     STATUS_SUCCESS);
    return dev;
}

static VOID tu_hold_cancelled(WDFREQUEST r)
{
    WdfRequestComplete(r, STATUS_CANCELLED);
}

VOID tu_hold_until_cancelled(WDFQUEUE Queue, WDFREQUEST Request, size_t Length)
{
    (void)Queue;
    (void)Length;
    if (!NT_SUCCESS(WdfRequestMarkCancelableEx(Request, tu_hold_cancelled)))
        WdfRequestComplete(Request, STATUS_CANCELLED);
}

/* ---- Filter Manager ---- */

void tu_flt_attach(struct tu_env *e, const char *volume_path, struct tu_flt *f)
{
    static const FLT_REGISTRATION reg = {
        .Size = sizeof(FLT_REGISTRATION),
        .Version = FLT_REGISTRATION_VERSION,
    };
    WCHAR wbuf[4096];
    UNICODE_STRING us;
    memset(f, 0, sizeof(*f));
    ck_assert_status(FltRegisterFilter(WdfDriverWdmGetDriverObject(e->driver), &reg, &f->filter), STATUS_SUCCESS);
    ck_assert_status(FltStartFiltering(f->filter), STATUS_SUCCESS);
    tu_unicode(&us, wbuf, 4096, volume_path);
    ck_assert_status(FltGetVolumeFromName(f->filter, &us, &f->volume), STATUS_SUCCESS);
    ck_assert_status(FltAttachVolume(f->filter, f->volume, NULL, &f->instance), STATUS_SUCCESS);
}

void tu_flt_detach(struct tu_flt *f)
{
    FltObjectDereference(f->instance);
    FltObjectDereference(f->volume);
    FltUnregisterFilter(f->filter);
}

void tu_flt_open(struct tu_env *e, const char *path, struct tu_flt *f)
{
    WCHAR wbuf[4096];
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    tu_flt_attach(e, e->dir, f);
    tu_unicode(&us, wbuf, 4096, path);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
    ck_assert_status(FltCreateFileEx(f->filter, f->instance, &f->fh, &f->fo, GENERIC_READ | GENERIC_WRITE, &oa, &iosb,
                                     NULL, FILE_ATTRIBUTE_NORMAL, 0, FILE_OPEN,
                                     FILE_NON_DIRECTORY_FILE | FILE_NO_INTERMEDIATE_BUFFERING, NULL, 0, 0),
                     STATUS_SUCCESS);
}

void tu_flt_close(struct tu_flt *f)
{
    ck_assert_status(FltClose(f->fh), STATUS_SUCCESS);
    ObDereferenceObject(f->fo);
    tu_flt_detach(f);
}

/* ---- requests on block-like targets ---- */

NTSTATUS tu_sync_rw(WDFIOTARGET t, bool write, void *buf, ULONG len, LONGLONG off, ULONG_PTR *bytes)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&d, buf, len);
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(TU_SYNC_TIMEOUT_SEC));
    ULONG_PTR got = 0;
    NTSTATUS s = write ? WdfIoTargetSendWriteSynchronously(t, NULL, &d, &off, &o, &got)
                       : WdfIoTargetSendReadSynchronously(t, NULL, &d, &off, &o, &got);
    if (bytes)
        *bytes = got;
    return s;
}

NTSTATUS tu_sync_ioctl(WDFIOTARGET t, ULONG code, const void *in, ULONG in_len, void *out, ULONG out_len)
{
    WDF_MEMORY_DESCRIPTOR din, dout;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&din, (PVOID)in, in_len);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&dout, out, out_len);
    return WdfIoTargetSendIoctlSynchronously(t, NULL, code, in ? &din : NULL, out ? &dout : NULL, NULL, NULL);
}

NTSTATUS tu_write_through_request(WDFIOTARGET t, ULONG len, LONGLONG off, unsigned char fill)
{
    WDFREQUEST req = tu_make_request(t);
    void *data;
    WDFMEMORY mem = tu_make_memory(len, &data);
    memset(data, fill, len);
    NTSTATUS st = WdfIoTargetFormatRequestForWrite(t, req, mem, NULL, &off);
    if (NT_SUCCESS(st)) {
        UwdfRequestSetWriteThrough(req, TRUE);
        WDF_REQUEST_SEND_OPTIONS o;
        WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(TU_SYNC_TIMEOUT_SEC));
        (void)WdfRequestSend(req, t, &o);
        st = WdfRequestGetStatus(req);
    }
    WdfObjectDelete(req);
    WdfObjectDelete(mem);
    return st;
}

NTSTATUS tu_flush(WDFIOTARGET t)
{
    WDFREQUEST req = tu_make_request(t);
    IO_STACK_LOCATION stack;
    WDF_REQUEST_SEND_OPTIONS o;
    memset(&stack, 0, sizeof(stack));
    stack.MajorFunction = IRP_MJ_FLUSH_BUFFERS;
    WdfRequestWdmFormatUsingStackLocation(req, &stack);
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_SEC(TU_SYNC_TIMEOUT_SEC));
    ck_assert(WdfRequestSend(req, t, &o));
    NTSTATUS s = WdfRequestGetStatus(req);
    WdfObjectDelete(req);
    return s;
}

NTSTATUS tu_trim(WDFIOTARGET t, LONGLONG off, ULONGLONG len)
{
    /* The ranges start on an 8-byte boundary after the header. */
    enum { RANGES_AT = (sizeof(DEVICE_MANAGE_DATA_SET_ATTRIBUTES) + 7) & ~7u };
    uint64_t words[(RANGES_AT + sizeof(DEVICE_DATA_SET_RANGE)) / 8];
    DEVICE_MANAGE_DATA_SET_ATTRIBUTES hdr;
    DEVICE_DATA_SET_RANGE r = { off, len };
    memset(&hdr, 0, sizeof(hdr));
    hdr.Size = sizeof(hdr);
    hdr.Action = DeviceDsmAction_Trim;
    hdr.DataSetRangesOffset = RANGES_AT;
    hdr.DataSetRangesLength = sizeof(r);
    memset(words, 0, sizeof(words));
    memcpy(words, &hdr, sizeof(hdr));
    memcpy((char *)words + RANGES_AT, &r, sizeof(r));
    return tu_sync_ioctl(t, IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, words, sizeof(words), NULL, 0);
}

NTSTATUS tu_set_zero(WDFIOTARGET t, LONGLONG from, LONGLONG beyond)
{
    FILE_ZERO_DATA_INFORMATION z;
    z.FileOffset.QuadPart = from;
    z.BeyondFinalZero.QuadPart = beyond;
    return tu_sync_ioctl(t, FSCTL_SET_ZERO_DATA, &z, sizeof(z), NULL, 0);
}

bool tu_trim_enabled(WDFIOTARGET t)
{
    STORAGE_PROPERTY_QUERY q = { .PropertyId = StorageDeviceTrimProperty, .QueryType = PropertyStandardQuery };
    DEVICE_TRIM_DESCRIPTOR d;
    memset(&d, 0, sizeof(d));
    ck_assert_status(tu_sync_ioctl(t, IOCTL_STORAGE_QUERY_PROPERTY, &q, sizeof(q), &d, sizeof(d)), STATUS_SUCCESS);
    return d.TrimEnabled != FALSE;
}

bool tu_all_bytes(const void *buf, size_t len, unsigned char v)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

void tu_late_send(WDFIOTARGET t, struct tu_late *l, size_t len, LONGLONG timeout)
{
    l->len = len;
    l->buf = malloc(len);
    ck_assert_ptr_nonnull(l->buf);
    memset(l->buf, TU_UNTOUCHED, len);
    tu_completion_init(&l->c);
    l->req = tu_make_request(t);
    WDF_OBJECT_ATTRIBUTES attrs;
    WDF_OBJECT_ATTRIBUTES_INIT(&attrs);
    ck_assert_status(WdfMemoryCreatePreallocated(&attrs, l->buf, len, &l->mem), STATUS_SUCCESS);
    LONGLONG off = 0;
    ck_assert_status(WdfIoTargetFormatRequestForRead(t, l->req, l->mem, NULL, &off), STATUS_SUCCESS);
    WdfRequestSetCompletionRoutine(l->req, tu_on_complete, &l->c);
    WDF_REQUEST_SEND_OPTIONS o;
    WDF_REQUEST_SEND_OPTIONS_INIT(&o, 0);
    if (timeout)
        WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, timeout);
    ck_assert(WdfRequestSend(l->req, t, &o));
}

void tu_late_fini(struct tu_late *l)
{
    WdfObjectDelete(l->req);
    WdfObjectDelete(l->mem);
    tu_completion_fini(&l->c);
    free(l->buf);
}

void tu_stop_purge_or_close(WDFIOTARGET t, int round)
{
    if (round == 0)
        WdfIoTargetStop(t, WdfIoTargetCancelSentIo);
    else if (round == 1)
        WdfIoTargetPurge(t, WdfIoTargetPurgeIoAndWait);
    else
        WdfIoTargetClose(t);
}

/* ---- the Ceph test cluster ---- */

bool tu_rbd_available(void)
{
#ifdef HAVE_LIBRBD
    return getenv("CEPH_CONF") && getenv("UWDF_CEPH_POOL") && getenv("UWDF_CEPH_DIR");
#else
    return false;
#endif
}

int tu_rbd_tool(const char *fmt, ...)
{
    char args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "timeout -k 5 60 rbd --conf '%s' --no-progress %s >/dev/null 2>&1",
             getenv("CEPH_CONF"), args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* ---- nbdkit ---- */

#define TU_NBDKIT_START_MS 10000
#define TU_NBDKIT_MAX_ARGS 24

bool tu_nbd_available(void)
{
#ifndef HAVE_LIBNBD
    fprintf(stderr, "built without libnbd: the NBD tests are skipped\n");
    return false;
#else
    if (system("nbdkit --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "nbdkit is not installed (apt-get install nbdkit): the NBD tests are skipped\n");
        return false;
    }
    return true;
#endif
}

void tu_nbdkit_start(struct tu_env *e, struct tu_nbdkit *s, const char *name, const char *const *args)
{
    const char *argv[TU_NBDKIT_MAX_ARGS + 8];
    char pidname[256];
    int n = 0;
    s->sock = tu_env_path(e, name);
    snprintf(pidname, sizeof(pidname), "%s.pid", name);
    s->pidfile = tu_env_path(e, pidname);
    unlink(s->sock);
    unlink(s->pidfile);
    argv[n++] = "nbdkit";
    argv[n++] = "-f";
    argv[n++] = "--exit-with-parent";
    argv[n++] = "-U";
    argv[n++] = s->sock;
    argv[n++] = "-P";
    argv[n++] = s->pidfile;
    for (int i = 0; args[i]; i++) {
        ck_assert_int_lt(i, TU_NBDKIT_MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        execvp("nbdkit", (char *const *)argv);
        _exit(127);
    }
    /* nbdkit writes its pid file once it accepts connections (the socket
     * exists a moment earlier, when a connect is still refused). */
    double t0 = tu_now_ms();
    struct stat st;
    while (stat(s->pidfile, &st) != 0 || st.st_size == 0) {
        int status;
        ck_assert_msg(waitpid(s->pid, &status, WNOHANG) == 0, "nbdkit %s exited before listening", args[0]);
        ck_assert_msg(tu_now_ms() - t0 < TU_NBDKIT_START_MS, "nbdkit did not listen on %s", s->sock);
        tu_sleep_ms(5);
    }
    snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
}

static void tu_nbdkit_signal(struct tu_nbdkit *s, int sig)
{
    if (s->pid > 0) {
        kill(s->pid, sig);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

void tu_nbdkit_stop(struct tu_nbdkit *s)
{
    tu_nbdkit_signal(s, SIGTERM);
    free(s->sock);
    free(s->pidfile);
    s->sock = s->pidfile = NULL;
}

void tu_nbdkit_kill(struct tu_nbdkit *s)
{
    tu_nbdkit_signal(s, SIGKILL);
}

/* ---- stderr capture ---- */

static int g_capture_fd = -1, g_saved_stderr = -1;

void tu_stderr_begin(void)
{
    char tmpl[] = "/tmp/uwdf-stderr-XXXXXX";
    ck_assert_int_lt(g_capture_fd, 0);
    int fd = mkstemp(tmpl);
    ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(tmpl);
    fflush(stderr);
    g_saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(g_saved_stderr, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    g_capture_fd = fd;
}

/* No ck_* here: tu_stderr_end runs in the teardown. */
static char *capture_contents(void)
{
    size_t cap = 1 << 16, len = 0;
    char *text = calloc(1, cap);
    ssize_t n;
    fflush(stderr);
    if (!text)
        return NULL;
    while ((n = pread(g_capture_fd, text + len, cap - 1 - len, (off_t)len)) > 0) {
        len += (size_t)n;
        if (len == cap - 1) {
            char *bigger = realloc(text, cap * 2);
            if (!bigger)
                break;
            text = bigger;
            cap *= 2;
        }
    }
    text[len] = '\0';
    return text;
}

char *tu_stderr_read(void)
{
    ck_assert_int_ge(g_capture_fd, 0);
    char *text = capture_contents();
    ck_assert_ptr_nonnull(text);
    return text;
}

char *tu_stderr_end(void)
{
    if (g_capture_fd < 0)
        return NULL;
    char *text = capture_contents();
    dup2(g_saved_stderr, STDERR_FILENO);
    close(g_saved_stderr);
    close(g_capture_fd);
    g_saved_stderr = g_capture_fd = -1;
    return text;
}
