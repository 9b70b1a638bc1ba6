/* uwdf-bench's files (filesetup.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesetup.h"
#include "interrupt.h"
#include "job.h"
#include "setup.h"
#include "verify.h"

/* The uwdf target name of the image of o: rbd:POOL/IMAGE:id=CLIENT, each
 * part with the separators of the syntax escaped, then librbd's cache mode
 * as fio's rbd engine sets it: direct=1 turns the cache off; otherwise fio
 * flushes the image once after opening it, which takes the cache out of
 * its "writethrough until the first flush" mode, and the option below does
 * the same without the flush. */
static const char *rbd_target_name(struct strpool *pool, const struct job_opts *o)
{
    const char *cache = o->direct ? ":rbd_cache=false" : ":rbd_cache_writethrough_until_flush=false";
    const char *client = o->clientname ? o->clientname : "admin";
    if (!strncmp(client, "client.", 7))
        client += 7;
    const char *parts[3] = { o->pool, o->rbdname, client };
    const char *before[3] = { "rbd:", "/", ":id=" };
    size_t len = 16 + strlen(cache);
    for (int i = 0; i < 3; i++)
        len += 2 * strlen(parts[i]);
    char *name = xcalloc(1, len), *p = name;
    for (int i = 0; i < 3; i++) {
        p = stpcpy(p, before[i]);
        for (const char *c = parts[i]; *c; c++) {
            if (strchr(":@/\\", *c))
                *p++ = '\\';
            *p++ = *c;
        }
    }
    strcpy(p, cache);
    const char *kept = keep_str(pool, name);
    free(name);
    return kept;
}

/* remote_image: path is an RBD image (no file); it and an NBD export get
 * their size from their target once it is open (job_target_sizes). */
static struct layout_file *lfile_get(struct layout *lay, const char *path, bool auto_named, const char *job,
                                     bool remote_image)
{
    for (unsigned i = 0; i < lay->n; i++)
        if (!strcmp(lay->files[i]->path, path))
            return lay->files[i];
    struct layout_file *lf = xcalloc(1, sizeof(*lf));
    lf->path = keep_str(lay->strings, path);
    lf->first_job = job;
    lf->auto_named = auto_named;
    struct stat st;
    if (remote_image || filename_is_nbd_uri(path)) {
#ifndef HAVE_LIBNBD
        if (!remote_image) {
            errmsg("%s: '%s': this uwdf-bench was built without libnbd", job, path);
            free(lf);
            return NULL;
        }
#endif
        /* an RBD image or an NBD export: a fixed size, like a block device */
        lf->exists = true;
        lf->is_blk = true;
        lf->size_from_target = true;
    } else if (stat(path, &st) == 0) {
        lf->exists = true;
        if (S_ISBLK(st.st_mode)) {
            lf->is_blk = true;
            int fd = open(path, O_RDONLY);
            uint64_t size = 0;
            if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) != 0) {
                errmsg("%s: cannot get the size of block device '%s': %s", job, path, strerror(errno));
                if (fd >= 0)
                    close(fd);
                free(lf);
                return NULL;
            }
            close(fd);
            lf->real_size = size;
        } else if (S_ISREG(st.st_mode)) {
            lf->real_size = (uint64_t)st.st_size;
        } else {
            errmsg("%s: '%s' is neither a regular file nor a block device", job, path);
            free(lf);
            return NULL;
        }
    } else if (errno != ENOENT) {
        errmsg("%s: cannot access '%s': %s", job, path, strerror(errno));
        free(lf);
        return NULL;
    }
    struct layout_file **grown = realloc(lay->files, (lay->n + 1) * sizeof(*grown));
    if (!grown)
        out_of_memory();
    lay->files = grown;
    lay->files[lay->n++] = lf;
    return lf;
}

void layout_free(struct layout *lay)
{
    for (unsigned i = 0; i < lay->n; i++)
        free(lay->files[i]);
    free(lay->files);
    lay->files = NULL;
    lay->n = 0;
}

/* fio's filename_format for file k of job j: $jobname, $jobnum (the
 * clone) and $filenum replaced. NULL if the name is too long. */
static const char *expand_filename_format(const struct job *j, unsigned k)
{
    const char *fmt = j->o.filename_format ? j->o.filename_format : "$jobname.$jobnum.$filenum";
    char out[4096];
    size_t o = 0;
    for (const char *p = fmt; *p;) {
        char num[16];
        const char *rep = NULL;
        size_t skip = 0;
        if (!strncmp(p, "$jobname", 8)) {
            rep = j->o.name;
            skip = 8;
        } else if (!strncmp(p, "$jobnum", 7)) {
            snprintf(num, sizeof(num), "%u", j->clone);
            rep = num;
            skip = 7;
        } else if (!strncmp(p, "$filenum", 8)) {
            snprintf(num, sizeof(num), "%u", k);
            rep = num;
            skip = 8;
        }
        size_t len = rep ? strlen(rep) : 1;
        if (o + len >= sizeof(out))
            return NULL;
        memcpy(out + o, rep ? rep : p, len);
        o += len;
        p += rep ? skip : 1;
    }
    out[o] = '\0';
    return keep_str(j->run->strings, out);
}

/* The directories above a generated file's path, as fio makes them for a
 * filename_format with a path (they are kept afterwards, as fio does). */
static int make_parent_dirs(const char *job, const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            errmsg("%s: cannot create the directory '%s': %s", job, dir, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    return 0;
}

/* The job names its files itself (fio's jobname.jobnum.filenum). */
static bool names_generated(const struct job_opts *o)
{
    return !o->filename && !o->uri && o->ioengine != ENGINE_RBD;
}

/* File k's region of job j, its offset generator and its share of the
 * job's blocks, once its size is known; -1 with a message. */
static int file_region(struct job *j, unsigned k)
{
    const struct job_opts *o = &j->o;
    struct file_slot *f = &j->files[k];
    struct layout_file *lf = f->lf;
    unsigned n = j->nfiles;
    char a[32], b[32];
    uint64_t real = lf->exists ? lf->real_size : 0;
    if (!lf->exists && (o->offset_pct || o->size_pct)) {
        errmsg("%s: '%s' does not exist: a percentage size or offset needs an existing file",
               o->name, lf->path);
        return -1;
    }
    uint64_t off = o->offset;
    if (o->offset_pct)
        off = real / 100 * o->offset_pct / j->gran * j->gran;
    uint64_t per;
    if (o->size_pct) {
        /* fio: a percentage of the whole file, within what the offset leaves */
        per = real / 100 * o->size_pct;
        if (per > (real > off ? real - off : 0))
            per = real > off ? real - off : 0;
    }
    else if (o->size)
        per = o->size / n;
    else if (names_generated(o))
        per = DEFAULT_FILE_SIZE / n;
    else if (lf->exists)
        per = real > off ? real - off : 0;
    else {
        errmsg("%s: '%s' does not exist; give --size to create it", o->name, lf->path);
        return -1;
    }
    per -= per % j->gran;
    if (per == 0) {
        errmsg("%s: the I/O region of '%s' (%s at offset %s) holds no whole block of %" PRIu32
               " bytes", o->name, lf->path, fmt_bytes(a, sizeof(a), o->size || o->size_pct ? o->size : real),
               fmt_bytes(b, sizeof(b), off), j->gran);
        return -1;
    }
    if (lf->is_blk && off + per > real) {
        errmsg("%s: region %" PRIu64 "+%" PRIu64 " is beyond the end of '%s' (%" PRIu64 " bytes)",
               o->name, off, per, lf->path, real);
        return -1;
    }
    if (!lf->is_blk) {
        if (off + per > lf->need)
            lf->need = off + per;
        if (rw_reads(o->rw) && o->ioengine != ENGINE_NULL)
            lf->fill = true;
        if (o->verify && !rw_writes(o->rw) && !lf->verify_bs)
            lf->verify_bs = j->gran; /* verify: one block size */
    }
    f->start = off;
    f->nblocks = per / j->gran;
    f->bits = bits_for(f->nblocks);
    f->mask = f->bits >= 64 ? UINT64_MAX : (1ull << f->bits) - 1;
    uint64_t seed = j->seed ^ ((uint64_t)j->index << 32) ^ k;
    f->key = splitmix64(&seed);
    /* several sizes: fio's random map, the blocks each I/O covered */
    if (j->vary && rw_random(o->rw) && !o->time_based && !o->norandommap && o->rdist.kind == RDIST_RANDOM)
        f->claimed = xcalloc((f->nblocks + 63) / 64, sizeof(*f->claimed));
    if (rw_random(o->rw) && o->rdist.kind != RDIST_RANDOM) {
        f->dist = xcalloc(1, sizeof(*f->dist));
        if (!rdist_init(f->dist, &o->rdist, f->nblocks, j->gran, splitmix64(&seed))) {
            /* fio says so and does no I/O, exit status 0; here the job fails */
            errmsg("%s: zoned_abs sizes exceed file size ('%s': %s)", o->name, f->path,
                   fmt_bytes(a, sizeof(a), f->nblocks * j->gran));
            return -1;
        }
    }
    j->total_blocks += f->nblocks;
    if (k == 0 || f->nblocks < j->min_nblocks)
        j->min_nblocks = f->nblocks;
    if (o->fsvc == FSVC_SEQUENTIAL && n > 1) {
        if (!j->file_end)
            j->file_end = xcalloc(n, sizeof(*j->file_end));
        j->file_end[k] = j->total_blocks;
    }
    return 0;
}

/* Every file's region, then the job's I/O limits; -1 with a message. */
static int job_regions(struct job *j)
{
    const struct job_opts *o = &j->o;
    for (unsigned k = 0; k < j->nfiles; k++)
        if (file_region(j, k))
            return -1;
    /* One size: an I/O per block of the region. Several: the region's
     * blocks are counted as the I/Os take them (units). */
    j->unit_limit = o->time_based || !j->vary ? UINT64_MAX : j->total_blocks;
    if (o->time_based || j->vary)
        j->io_limit = o->number_ios ? o->number_ios : UINT64_MAX;
    else
        j->io_limit = o->number_ios && o->number_ios < j->total_blocks ? o->number_ios : j->total_blocks;
    return 0;
}

int job_resolve_files(struct job *j)
{
    const struct job_opts *o = &j->o;
    const char **paths;
    unsigned n;
    bool generated = names_generated(o);
    if (o->ioengine == ENGINE_RBD) {
#ifndef HAVE_LIBRBD
        errmsg("%s: RBD image '%s/%s': this uwdf-bench was built without librbd", o->name, o->pool, o->rbdname);
        return -1;
#endif
        n = 1;
        paths = xcalloc(1, sizeof(*paths));
        paths[0] = rbd_target_name(j->run->strings, o);
    } else if (generated) {
        n = o->nrfiles ? o->nrfiles : 1;
        paths = xcalloc(n, sizeof(*paths));
        for (unsigned k = 0; k < n; k++) {
            paths[k] = expand_filename_format(j, k);
            if (!paths[k]) {
                errmsg("%s: --filename_format makes a name longer than 4095 bytes", o->name);
                free(paths);
                return -1;
            }
        }
    } else {
        n = split_filenames(j->run->strings, o->uri ? o->uri : o->filename, &paths);
        if (!n) {
            free(paths);
            errmsg("%s: empty filename", o->name);
            return -1;
        }
    }
    j->nfiles = n;
    j->gran = opts_min_bs(o);
    j->vary = !opts_one_bs(o);
    if (opts_ba_differs(o)) {
        /* fio's blockalign: offsets in units that divide every alignment
         * and size (lengths are then counted as with several sizes), and
         * no random map */
        for (int d = 0; d < 3; d++)
            if (rw_does(o->rw, d))
                j->gran = gcd_u32(gcd_u32(j->gran, opts_ba(o, d)), o->min_bs[d]);
        j->vary = true;
        j->o.norandommap = true;
    }
    j->files = xcalloc_lines(n, sizeof(*j->files));
    for (unsigned k = 0; k < n; k++) {
        struct file_slot *f = &j->files[k];
        struct layout_file *lf = lfile_get(&j->run->layout, paths[k], generated, o->name, o->ioengine == ENGINE_RBD);
        if (!lf) {
            free(paths);
            return -1;
        }
        f->lf = lf;
        f->path = lf->path;
        if (lf->size_from_target)
            j->sizes_pending = true;
    }
    free(paths);
    /* the regions in file order (sequential jobs count their ends) */
    return j->sizes_pending ? 0 : job_regions(j);
}

int job_target_sizes(struct job *j)
{
    if (!j->sizes_pending)
        return 0;
    for (unsigned k = 0; k < j->nfiles; k++) {
        struct file_slot *f = &j->files[k];
        struct layout_file *lf = f->lf;
        if (!lf->size_from_target || lf->size_known) /* another job's target may have told it */
            continue;
        uint64_t len;
        char sb[96];
        NTSTATUS st = f->target ? target_length(f->target, &len) : STATUS_NOT_SUPPORTED;
        if (!NT_SUCCESS(st)) {
            errmsg("%s: cannot get the size of '%s': %s", j->o.name, f->path, status_str(sb, sizeof(sb), st));
            return -1;
        }
        lf->real_size = len;
        lf->size_known = true;
    }
    j->sizes_pending = false;
    return job_regions(j);
}

/* Writes [from, need) of a regular file: data when a job reads it (verify
 * blocks when a verifying reader needs them), else just allocates it. */
static int layout_one(struct layout_file *lf, FILE *info)
{
    if (lf->is_blk)
        return 0;
    uint64_t from = lf->exists ? lf->real_size : 0;
    if (lf->exists && from >= lf->need)
        return 0;
    if (!lf->exists && lf->auto_named && make_parent_dirs(lf->first_job, lf->path) != 0)
        return -1;
    int fd = open(lf->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        errmsg("%s: cannot create '%s': %s", lf->first_job, lf->path, strerror(errno));
        return -1;
    }
    if (!lf->exists) {
        lf->created = true;
        if (lf->auto_named)
            remove_later(lf->path);
    }
    if (info) {
        char sz[32];
        fprintf(info, "%s: Laying out IO file (1 file / %s)\n", lf->first_job,
                fmt_bytes(sz, sizeof(sz), lf->need));
        fflush(info);
    }
    int rc = 0;
    if (!lf->fill) {
        int r = posix_fallocate(fd, (off_t)from, (off_t)(lf->need - from));
        if (r != 0 && ftruncate(fd, (off_t)lf->need) != 0) {
            errmsg("%s: cannot size '%s' to %" PRIu64 " bytes: %s", lf->first_job, lf->path, lf->need,
                   strerror(errno));
            rc = -1;
        }
    } else {
        uint32_t vbs = lf->verify_bs;
        size_t chunk = 1 * MIB;
        if (vbs)
            chunk = (chunk + vbs - 1) / vbs * vbs;
        unsigned char *buf = xcalloc(1, chunk);
        if (vbs)
            from -= from % vbs;
        else
            fill_random(buf, chunk, 0x5eed);
        uint64_t seq = 0x1234567;
        for (uint64_t off = from; off < lf->need && rc == 0;) {
            if (stop_requested()) {
                errmsg("interrupted while laying out '%s'", lf->path);
                rc = -1;
                break;
            }
            size_t n = (size_t)((lf->need - off) < chunk ? (lf->need - off) : chunk);
            if (vbs) {
                /* Whole verify blocks; a tail shorter than a block is never
                 * read as one and gets whatever the buffer holds. */
                if (n >= vbs)
                    n -= n % vbs;
                for (size_t b = 0; b + vbs <= n; b += vbs)
                    verify_fill(buf + b, vbs, off + b, splitmix64(&seq));
            }
            for (size_t done = 0; done < n;) {
                ssize_t w = pwrite(fd, buf + done, n - done, (off_t)(off + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    errmsg("%s: writing '%s' failed: %s", lf->first_job, lf->path,
                           w < 0 ? strerror(errno) : "no progress");
                    rc = -1;
                    break;
                }
                done += (size_t)w;
            }
            off += n;
        }
        free(buf);
    }
    if (rc == 0 && fsync(fd) != 0) {
        errmsg("%s: fsync '%s' failed: %s", lf->first_job, lf->path, strerror(errno));
        rc = -1;
    }
    close(fd);
    if (rc == 0) {
        lf->exists = true;
        lf->real_size = lf->need > lf->real_size ? lf->need : lf->real_size;
    }
    return rc;
}

/* fio's invalidate=1: drop the files' cached pages before the run. */
static void invalidate_cache(const struct layout_file *lf)
{
    int fd = open(lf->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

int layout_all(struct layout *lay, FILE *info)
{
    for (unsigned i = 0; i < lay->n; i++)
        if (layout_one(lay->files[i], info))
            return -1;
    for (unsigned i = 0; i < lay->n; i++)
        invalidate_cache(lay->files[i]);
    return 0;
}
