/* A seccomp filter for tests that take system calls away (header only:
 * test_backends links without libtestutil). */
#ifndef UWDF_TU_SECCOMP_H
#define UWDF_TU_SECCOMP_H

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>

#if defined(__x86_64__)
#define TU_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TU_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* On the calling thread only (no TSYNC: it ends with the thread; in a
 * forked child, the process): each of the n (at most 8) system calls in
 * nrs fails with err, everything else runs, so do calls of a foreign
 * architecture. False where this architecture is not known here or the
 * filter is refused. */
static inline bool tu_deny_syscalls(const long *nrs, unsigned n, int err)
{
#ifdef TU_AUDIT_ARCH
    enum { MAX_NRS = 8 };
    if (n == 0 || n > MAX_NRS)
        return false;
    struct sock_filter f[MAX_NRS + 6];
    unsigned k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TU_AUDIT_ARCH, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (unsigned i = 0; i < n; i++) /* a match jumps past the rest and the allow, to the deny */
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i], (unsigned char)(n - i), 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA));
    struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
    /* prctl, not seccomp(2): valgrind 3.19 emulates only the former. */
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
#else
    (void)nrs;
    (void)n;
    (void)err;
    return false;
#endif
}

#endif
