/* What memcheck cannot see the kernel do for a backend that reads the
 * kernel's completion ring itself instead of a system call (io_uring's
 * CQ ring, libaio's event ring): the data a read put in its buffers. A
 * no-op outside valgrind, and where its headers are not installed. */
#ifndef UWDF_BACKEND_VALGRIND_H
#define UWDF_BACKEND_VALGRIND_H

#include "backend.h"

#if defined(__has_include) && !defined(__CPPCHECK__) /* cppcheck cannot evaluate it */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UWDF_BE_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define UWDF_BE_MARK_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#endif
#endif
#ifndef UWDF_BE_UNDER_VALGRIND
#define UWDF_BE_UNDER_VALGRIND() false
#endif
#ifndef UWDF_BE_MARK_DEFINED
#define UWDF_BE_MARK_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* io finished (res filled): its read data is defined from here on. */
static inline void uwdf_be_mark_read_defined(const struct uwdf_io *io)
{
    if (io->op != UWDF_OP_READ || io->res <= 0 || !UWDF_BE_UNDER_VALGRIND())
        return;
    int64_t left = io->res;
    for (int i = 0; i < io->iovcnt && left > 0; i++) {
        size_t n = io->iov[i].iov_len < (uint64_t)left ? io->iov[i].iov_len : (size_t)left;
        UWDF_BE_MARK_DEFINED(io->iov[i].iov_base, n);
        left -= (int64_t)n;
    }
}

#endif
