/* Plain blocking system calls for an op whose sender waits for it on its
 * own thread (a synchronous send) and wants nothing only a ring or an AIO
 * context gives: no kernel-enforced timeout, no cancel (the core offers only
 * file and block-device ops, which neither engine can stop once started).
 * Such a send then costs what fio's psync costs: one preadv2/pwritev2 and
 * no submit-and-wait round trip. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* preadv2, pwritev2 */
#endif
#include "backend.h"

#include <errno.h>
#include <unistd.h>

int uwdf_psync_run(struct uwdf_io *io)
{
    ssize_t r;
    do {
        switch (io->op) {
        case UWDF_OP_READ:
            r = preadv2(io->fd, io->iov, io->iovcnt, (off_t)io->offset, io->rw_flags);
            break;
        case UWDF_OP_WRITE:
            r = pwritev2(io->fd, io->iov, io->iovcnt, (off_t)io->offset, io->rw_flags);
            break;
        case UWDF_OP_FSYNC:
            r = fsync(io->fd);
            break;
        case UWDF_OP_FDATASYNC:
            r = fdatasync(io->fd);
            break;
        default:
            return -EOPNOTSUPP; /* not started: the engine takes it */
        }
    } while (r < 0 && errno == EINTR); /* a signal before any byte moved */
    io->res = r < 0 ? -errno : r;
    io->timed_out = false;
    return 0;
}
