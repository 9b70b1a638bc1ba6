/*
 * rbd-fault: what librbd does with I/O to an OSD that stops answering, on the
 * test cluster of tests/remote/ceph-cluster (run it under `ceph-cluster run`,
 * which exports CEPH_CONF, UWDF_CEPH_POOL, UWDF_CEPH_IMAGE, UWDF_CEPH_ID and
 * UWDF_CEPH_OSD_PID). The facts an RBD engine builds its timeouts on:
 *
 *   rbd-fault hold SECS     a write and a read sent while the OSD is stopped
 *                           (SIGSTOP) stay pending for SECS; after SIGCONT both
 *                           complete and the write reads back
 *   rbd-fault timeout       with rados_osd_op_timeout = T in the client's conf,
 *                           they fail with -ETIMEDOUT after T (not before, and
 *                           within T + 3 s); after SIGCONT new I/O succeeds
 *                           (and the OSD may still apply the timed-out write)
 *   rbd-fault kill          the OSD killed (SIGKILL) under pending I/O: with
 *                           rados_osd_op_timeout = T they fail with -ETIMEDOUT
 *                           after T
 *
 * The OSD is signalled by the pid ceph-cluster read from its pid file, and is
 * always resumed (SIGCONT) before this program exits. Prints what it saw;
 * exits 0 when it is what is described above, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IO_SIZE 4096
#define WRITE_OFFSET 0
#define READ_OFFSET (1u << 20)
/* How long a request that should complete may take on this shared machine. */
#define COMPLETE_WITHIN_S 30.0
/* How late -ETIMEDOUT may come after rados_osd_op_timeout (the objecter's
 * timer and a loaded 2-CPU machine). */
#define TIMEOUT_SLACK_S 3.0

static pid_t osd_pid;
static bool osd_stopped;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The state letter of task TID of the OSD ('R', 'S', 'T', 'Z'...), or 0 when
 * it is gone. */
static char task_state(const char *tid)
{
    char path[64], buf[512], *paren;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)osd_pid, tid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* Whether every thread of the OSD is stopped (SIGSTOP) or, for SIGKILL,
 * whether none is left running. */
static bool osd_reached(int sig)
{
    char dirpath[32];
    struct dirent *d;
    bool reached = true;
    DIR *dir;

    snprintf(dirpath, sizeof(dirpath), "/proc/%d/task", (int)osd_pid);
    if (!(dir = opendir(dirpath)))
        return sig == SIGKILL;
    while (reached && (d = readdir(dir))) {
        char st;

        if (d->d_name[0] == '.')
            continue;
        st = task_state(d->d_name);
        reached = sig == SIGSTOP ? st == 'T' || st == 0 : st == 'Z' || st == 'X' || st == 0;
    }
    closedir(dir);
    return reached;
}

/* Signals the OSD and, for SIGSTOP and SIGKILL, waits until it has taken
 * effect: kill() returns before the other threads of the OSD stop (the group
 * stop starts only once the thread picked for the signal runs), and on a
 * loaded machine they can serve a request meanwhile. */
static void osd_signal(int sig)
{
    const struct timespec tick = {0, 1000 * 1000};
    double until = now_s() + 10;

    if (kill(osd_pid, sig) != 0) {
        fprintf(stderr, "rbd-fault: kill(%d, %d): %s\n", (int)osd_pid, sig, strerror(errno));
        exit(1);
    }
    osd_stopped = sig == SIGSTOP;
    if (sig != SIGSTOP && sig != SIGKILL)
        return;
    while (!osd_reached(sig)) {
        if (now_s() >= until) {
            fprintf(stderr, "rbd-fault: the OSD (pid %d) did not %s within 10 s\n", (int)osd_pid,
                    sig == SIGSTOP ? "stop" : "die");
            exit(1);
        }
        nanosleep(&tick, NULL);
    }
}

static void osd_resume(void)
{
    if (osd_stopped)
        kill(osd_pid, SIGCONT);
}

static void on_fatal_signal(int sig)
{
    osd_resume();
    signal(sig, SIG_DFL);
    raise(sig);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

struct image {
    rados_t cluster;
    rados_ioctx_t ioctx;
    rbd_image_t img;
    double osd_op_timeout;
};

static int image_open(struct image *im)
{
    const char *pool = env_or("UWDF_CEPH_POOL", "rbd");
    const char *name = env_or("UWDF_CEPH_IMAGE", "uwdf");
    char val[64];
    int r;

    /* NULL: the default search, which starts with $CEPH_CONF. */
    if ((r = rados_create(&im->cluster, env_or("UWDF_CEPH_ID", "admin"))) < 0 ||
        (r = rados_conf_read_file(im->cluster, NULL)) < 0 ||
        (r = rados_conf_parse_env(im->cluster, NULL)) < 0 || (r = rados_connect(im->cluster)) < 0) {
        fprintf(stderr, "rbd-fault: connecting to the cluster (CEPH_CONF=%s): %s\n",
                env_or("CEPH_CONF", "(unset)"), strerror(-r));
        return r;
    }
    if ((r = rados_ioctx_create(im->cluster, pool, &im->ioctx)) < 0 ||
        (r = rbd_open(im->ioctx, name, &im->img, NULL)) < 0) {
        fprintf(stderr, "rbd-fault: opening %s/%s: %s\n", pool, name, strerror(-r));
        return r;
    }
    im->osd_op_timeout = 0;
    if (rados_conf_get(im->cluster, "rados_osd_op_timeout", val, sizeof(val)) == 0)
        im->osd_op_timeout = strtod(val, NULL);
    printf("rbd-fault: %s/%s open, rados_osd_op_timeout = %g s\n", pool, name, im->osd_op_timeout);
    return 0;
}

static void image_close(struct image *im)
{
    rbd_close(im->img);
    rados_ioctx_destroy(im->ioctx);
    rados_shutdown(im->cluster);
}

/* A request in flight: its completion and the time it was sent. */
struct io {
    const char *what;
    rbd_completion_t c;
    double sent;
    char *buf;
};

static int io_send(struct image *im, struct io *io, const char *what, char *buf)
{
    int r;

    io->what = what;
    io->buf = buf;
    if ((r = rbd_aio_create_completion(NULL, NULL, &io->c)) < 0)
        return r;
    io->sent = now_s();
    if (strcmp(what, "write") == 0)
        r = rbd_aio_write(im->img, WRITE_OFFSET, IO_SIZE, buf, io->c);
    else
        r = rbd_aio_read(im->img, READ_OFFSET, IO_SIZE, buf, io->c);
    if (r < 0) {
        fprintf(stderr, "rbd-fault: rbd_aio_%s: %s\n", what, strerror(-r));
        rbd_aio_release(io->c);
    }
    return r;
}

/* Waits until IO completes or UNTIL (monotonic seconds); polling keeps this
 * program free of librbd's callback thread. Returns whether it completed. */
static bool io_wait(struct io *io, double until)
{
    const struct timespec tick = {0, 5 * 1000 * 1000};

    while (!rbd_aio_is_complete(io->c)) {
        if (now_s() >= until)
            return false;
        nanosleep(&tick, NULL);
    }
    return true;
}

/* Waits for IO (bounded) and checks its result against WANT (a byte count,
 * 0 or -errno) and, when MIN_S >= 0, that it took at least MIN_S and at most
 * MAX_S seconds. Releases it. */
static bool io_expect(struct io *io, ssize_t want, double min_s, double max_s)
{
    double bound = min_s >= 0 ? max_s : COMPLETE_WITHIN_S;
    ssize_t got;
    double took;
    bool ok;

    if (!io_wait(io, io->sent + bound)) {
        printf("FAIL: %s still pending after %.1f s\n", io->what, bound);
        /* Unreleased on purpose: librbd may still complete into io->buf. */
        return false;
    }
    took = now_s() - io->sent;
    got = rbd_aio_get_return_value(io->c);
    rbd_aio_release(io->c);
    ok = got == want && (min_s < 0 || (took >= min_s && took <= max_s));
    printf("%s: %s completed with %zd (%s) after %.2f s, want %zd", ok ? "PASS" : "FAIL", io->what, got,
           got < 0 ? strerror((int)-got) : "ok", took, want);
    if (min_s >= 0)
        printf(" within [%.1f, %.1f] s", min_s, max_s);
    printf("\n");
    return ok;
}

static bool write_then_read_back(struct image *im, char fill)
{
    char out[IO_SIZE], in[IO_SIZE];
    bool ok;

    memset(out, fill, IO_SIZE);
    ok = rbd_write(im->img, WRITE_OFFSET, IO_SIZE, out) == IO_SIZE &&
         rbd_read(im->img, WRITE_OFFSET, IO_SIZE, in) == IO_SIZE && memcmp(in, out, IO_SIZE) == 0;
    printf("%s: a synchronous write of 0x%02x reads back\n", ok ? "PASS" : "FAIL", (unsigned char)fill);
    return ok;
}

static bool check_hold(struct image *im, double hold_s)
{
    static char wbuf[IO_SIZE], rbuf[IO_SIZE], check[IO_SIZE];
    struct io w, r;
    bool ok = write_then_read_back(im, 0x11), back;

    memset(wbuf, 0x5a, sizeof(wbuf));
    osd_signal(SIGSTOP);
    if (io_send(im, &w, "write", wbuf) < 0 || io_send(im, &r, "read", rbuf) < 0)
        return false;
    if (io_wait(&w, now_s() + hold_s) || rbd_aio_is_complete(r.c)) {
        printf("FAIL: I/O to the stopped OSD completed within %.1f s\n", hold_s);
        ok = false;
    } else {
        printf("PASS: a write and a read to the stopped OSD pending after %.1f s\n", hold_s);
    }
    osd_signal(SIGCONT);
    /* A write completes with 0, a read with its byte count. */
    ok &= io_expect(&w, 0, -1, 0);
    ok &= io_expect(&r, IO_SIZE, -1, 0);
    back = rbd_read(im->img, WRITE_OFFSET, IO_SIZE, check) == IO_SIZE && memcmp(check, wbuf, IO_SIZE) == 0;
    printf("%s: the held write reads back after SIGCONT\n", back ? "PASS" : "FAIL");
    return ok && back;
}

/* The OSD still holds a timed-out write in its socket buffer: once resumed
 * it may apply it. What a caller can assume of a write that failed with
 * -ETIMEDOUT: nothing either way. Shown, not asserted. */
static void report_timed_out_write(struct image *im, const char *wbuf)
{
    char now[IO_SIZE];

    if (rbd_read(im->img, WRITE_OFFSET, IO_SIZE, now) != IO_SIZE)
        printf("INFO: reading back the timed-out write's range failed\n");
    else
        printf("INFO: after SIGCONT the write that timed out is %s the image\n",
               memcmp(now, wbuf, IO_SIZE) == 0 ? "ON" : "not on");
}

static bool check_timeout(struct image *im, int sig)
{
    static char wbuf[IO_SIZE], rbuf[IO_SIZE];
    double t = im->osd_op_timeout;
    struct io w, r;
    bool ok = write_then_read_back(im, 0x22);

    if (t <= 0) {
        printf("FAIL: rados_osd_op_timeout is not set in the client's conf\n");
        return false;
    }
    memset(wbuf, 0x66, sizeof(wbuf));
    osd_signal(sig);
    if (io_send(im, &w, "write", wbuf) < 0 || io_send(im, &r, "read", rbuf) < 0)
        return false;
    ok &= io_expect(&w, -ETIMEDOUT, t - 0.05, t + TIMEOUT_SLACK_S);
    ok &= io_expect(&r, -ETIMEDOUT, t - 0.05, t + TIMEOUT_SLACK_S);
    if (sig == SIGSTOP) {
        osd_signal(SIGCONT);
        report_timed_out_write(im, wbuf);
        ok &= write_then_read_back(im, 0x33);
    }
    return ok;
}

int main(int argc, char **argv)
{
    const char *pid_s = getenv("UWDF_CEPH_OSD_PID");
    struct image im;
    bool ok;

    if (argc < 2 || !pid_s || (strcmp(argv[1], "hold") == 0 && argc != 3)) {
        fprintf(stderr, "usage: rbd-fault hold SECS | timeout | kill (under ceph-cluster run)\n");
        return 2;
    }
    osd_pid = (pid_t)atoi(pid_s);
    atexit(osd_resume);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGABRT, on_fatal_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (image_open(&im) < 0)
        return 1;
    if (strcmp(argv[1], "hold") == 0)
        ok = check_hold(&im, strtod(argv[2], NULL));
    else if (strcmp(argv[1], "timeout") == 0)
        ok = check_timeout(&im, SIGSTOP);
    else if (strcmp(argv[1], "kill") == 0)
        ok = check_timeout(&im, SIGKILL);
    else
        return 2;
    /* A killed OSD leaves nothing to flush to; rbd_close would wait on it. */
    if (strcmp(argv[1], "kill") != 0)
        image_close(&im);
    return ok ? 0 : 1;
}
