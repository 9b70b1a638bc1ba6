/* A read or write larger than one kernel op may carry, run as consecutive
 * ops ("pieces") of one request: more segments than IOV_MAX (a long MDL
 * chain), more bytes than the kernel moves in one call, or an O_DIRECT
 * scatter list whose segments the kernel would refuse, staged through an
 * aligned bounce buffer. The engine thread runs them one after the other
 * on the request's own io (engine.c), so the request still completes once,
 * with one status and the bytes of all its pieces; a cancel or timeout
 * reaches whichever piece is in flight, and no later piece starts.
 *
 * Results, as one op reports them: a read stops at the first short piece
 * (the end of the file). A short write goes on from where it stopped, so
 * that the piece after it reports the reason (a full disk) instead of a
 * success with fewer bytes. A failing piece ends the op with its error,
 * and res_done carries the bytes the pieces before it moved, which the
 * request reports in IoStatus.Information.
 *
 * What a request keeps here is allocated on its first such op and reused
 * by the next: the piece's segment array and the bounce buffer (grown,
 * never shrunk); an ordinary op never touches it. */
#include "internal.h"

#include <errno.h>

struct uwdf_io_pieces {
    /* the whole op, as the framework described it */
    struct iovec *src;
    int src_n;
    uint64_t offset;
    uint64_t total;
    bool fixed_offset;   /* a stream's position or an append: every piece there */
    int64_t deadline_ns; /* a relative kernel timeout, for the whole op */
    /* progress: the next byte to move is src[pos_i] + pos_off */
    int pos_i;
    size_t pos_off;
    uint64_t done;
    uint64_t piece_len;
    /* kept between ops */
    struct iovec *iov;
    int iov_cap;
    void *bounce;
    size_t bounce_cap;
};

_Atomic uint64_t uwdf_engine_test_max_bytes;

static uint64_t pieces_src_bytes(const struct iovec *iov, int n)
{
    uint64_t b = 0;
    for (int i = 0; i < n; i++)
        b += iov[i].iov_len;
    return b;
}

/* Copy n bytes between the op's segments (from the position i/off) and a
 * flat buffer. */
static void pieces_copy(struct uwdf_io_pieces *p, int i, size_t off, char *flat, size_t n, bool to_flat)
{
    while (n > 0) {
        size_t take = p->src[i].iov_len - off;
        if (take > n)
            take = n;
        char *seg = (char *)p->src[i].iov_base + off;
        if (to_flat)
            memcpy(flat, seg, take);
        else
            memcpy(seg, flat, take);
        flat += take;
        n -= take;
        i++;
        off = 0;
    }
}

static void pieces_advance(struct uwdf_io_pieces *p, uint64_t n)
{
    p->done += n;
    while (n > 0) {
        size_t left = p->src[p->pos_i].iov_len - p->pos_off;
        if (n < left) {
            p->pos_off += n;
            return;
        }
        n -= left;
        p->pos_i++;
        p->pos_off = 0;
    }
    /* An empty segment at the position adds nothing: step over it, so a
     * piece never starts on one. */
    while (p->pos_i < p->src_n && p->src[p->pos_i].iov_len == 0)
        p->pos_i++;
}

/* Describe the piece that starts at the position in io. */
static void pieces_setup(struct uwdf_io *io, struct uwdf_io_pieces *p, unsigned max_segments, uint64_t max_bytes)
{
    uint64_t left = p->total - p->done;
    io->offset = p->fixed_offset ? p->offset : p->offset + p->done;
    if (io->bounce) {
        uint64_t cap = p->bounce_cap < max_bytes ? p->bounce_cap : max_bytes & ~(uint64_t)(PAGE_SIZE - 1);
        size_t n = left < cap ? (size_t)left : (size_t)cap;
        if (io->op == UWDF_OP_WRITE)
            pieces_copy(p, p->pos_i, p->pos_off, p->bounce, n, true);
        p->iov[0].iov_base = p->bounce;
        p->iov[0].iov_len = n;
        io->iov = p->iov;
        io->iovcnt = 1;
        p->piece_len = n;
        return;
    }
    int n = 0, i = p->pos_i;
    size_t off = p->pos_off;
    uint64_t bytes = 0;
    if (left < max_bytes)
        max_bytes = left;
    while (i < p->src_n && n < (int)max_segments && bytes < max_bytes) {
        size_t take = p->src[i].iov_len - off;
        if (take > max_bytes - bytes)
            take = (size_t)(max_bytes - bytes);
        if (take > 0) {
            p->iov[n].iov_base = (char *)p->src[i].iov_base + off;
            p->iov[n].iov_len = take;
            n++;
            bytes += take;
        }
        i++;
        off = 0;
    }
    io->iov = p->iov;
    io->iovcnt = n;
    p->piece_len = bytes;
}

int uwdf_pieces_start(struct uwdf_io *io, unsigned max_segments, uint64_t max_bytes)
{
    struct uwdf_io_pieces *p = io->core_pieces;
    if (!p) {
        p = uwdf_zalloc(sizeof(*p));
        if (!p)
            return -ENOMEM;
        io->core_pieces = p;
    }
    uint64_t total = pieces_src_bytes(io->iov, io->iovcnt);
    int need = io->bounce ? 1 : (io->iovcnt < (int)max_segments ? io->iovcnt : (int)max_segments);
    if (need > p->iov_cap) {
        struct iovec *grown = uwdf_alloc(sizeof(*grown) * (size_t)need);
        if (!grown)
            return -ENOMEM;
        uwdf_free(p->iov);
        p->iov = grown;
        p->iov_cap = need;
    }
    if (io->bounce) {
        size_t want = total < UWDF_ENGINE_BOUNCE_MAX ? (size_t)total : UWDF_ENGINE_BOUNCE_MAX;
        if (want > max_bytes)
            want = (size_t)(max_bytes & ~(uint64_t)(PAGE_SIZE - 1));
        if (want > p->bounce_cap) {
            void *b = uwdf_alloc_aligned(PAGE_SIZE, ROUND_TO_PAGES(want));
            if (!b)
                return -ENOMEM;
            uwdf_free(p->bounce);
            p->bounce = b;
            p->bounce_cap = ROUND_TO_PAGES(want);
        }
    }
    p->src = io->iov;
    p->src_n = io->iovcnt;
    p->offset = io->offset;
    p->total = total;
    p->fixed_offset = io->offset == UWDF_IO_OFFSET_CURRENT || (io->rw_flags & RWF_APPEND);
    p->deadline_ns = 0;
    if (io->has_timeout && !io->timeout_abs)
        p->deadline_ns = uwdf_mono_ns() + io->timeout_sec * 1000000000 + io->timeout_nsec;
    p->pos_i = 0;
    p->pos_off = 0;
    p->done = 0;
    pieces_advance(p, 0);
    io->core_piecing = true;
    pieces_setup(io, p, max_segments, max_bytes);
    return 0;
}

/* The op's own buffers and result back in io. */
static void pieces_finish(struct uwdf_io *io, struct uwdf_io_pieces *p, int64_t err)
{
    io->iov = p->src;
    io->iovcnt = p->src_n;
    io->offset = p->offset;
    io->core_piecing = false;
    if (err < 0) {
        io->res = err;
        io->res_done = p->done;
    } else {
        io->res = (int64_t)p->done;
    }
}

bool uwdf_pieces_next(struct uwdf_io *io, unsigned max_segments, uint64_t max_bytes)
{
    struct uwdf_io_pieces *p = io->core_pieces;
    int64_t res = io->res;
    if (res < 0) {
        pieces_finish(io, p, res);
        return false;
    }
    uint64_t moved = (uint64_t)res < p->piece_len ? (uint64_t)res : p->piece_len;
    if (io->bounce && io->op == UWDF_OP_READ)
        pieces_copy(p, p->pos_i, p->pos_off, p->bounce, (size_t)moved, false);
    pieces_advance(p, moved);
    bool stop = p->done == p->total || io->timed_out || moved == 0 ||
                (io->op == UWDF_OP_READ && moved < p->piece_len);
    if (stop) {
        pieces_finish(io, p, 0);
        return false;
    }
    if (p->deadline_ns) {
        int64_t rel = p->deadline_ns - uwdf_mono_ns();
        if (rel <= 0) {
            /* The whole op's time is up between two pieces. */
            io->timed_out = true;
            pieces_finish(io, p, -ECANCELED);
            return false;
        }
        io->timeout_sec = rel / 1000000000;
        io->timeout_nsec = rel % 1000000000;
    }
    pieces_setup(io, p, max_segments, max_bytes);
    return true;
}

void uwdf_pieces_fini(struct uwdf_io *io)
{
    struct uwdf_io_pieces *p = io->core_pieces;
    if (!p)
        return;
    uwdf_free(p->iov);
    uwdf_free(p->bounce);
    uwdf_free(p);
    io->core_pieces = NULL;
}
