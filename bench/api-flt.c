/* --api=flt: the I/O as a minifilter issues its own (fltkernel.h): per
 * slot one FLT_CALLBACK_DATA performed with FltPerformAsynchronousIo, and
 * reused (FltReuseCallbackData) or freed and allocated again from its
 * completion callback. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "io.h"
#include "setup.h"
#include "util.h"

/* The one filter of a run and the volumes it attached to (one instance
 * each). */
struct flt_vol {
    const char *name;
    PFLT_VOLUME volume;
    PFLT_INSTANCE instance;
};

struct flt_state {
    PFLT_FILTER filter;
    struct flt_vol *vols;
    unsigned nvols;
};

static FLT_COMPLETED_ASYNC_IO_CALLBACK flt_completion;

/* Makes the slot's callback data ready for its current I/O: reused
 * (FltReuseCallbackData), or freed and allocated again (--reuse=0), then
 * every Iopb field set (reuse clears them all but the targets). */
static NTSTATUS flt_prepare(struct slot *s)
{
    struct job *j = s->job;
    const struct file_slot *f = &j->files[s->file];
    if (s->fresh) {
        s->fresh = false;
    } else if (j->o.reuse) {
        FltReuseCallbackData(s->cd);
    } else {
        FltFreeCallbackData(s->cd);
        s->cd = NULL;
        NTSTATUS st = FltAllocateCallbackData(f->inst, f->fo, &s->cd);
        if (!NT_SUCCESS(st)) {
            s->cd = NULL;
            return st;
        }
    }
    PFLT_IO_PARAMETER_BLOCK p = s->cd->Iopb;
    bool w = s->ddir == DDIR_WRITE;
    p->TargetFileObject = f->fo; /* several files: the one of this I/O */
    p->TargetInstance = f->inst;
    p->MajorFunction = w ? IRP_MJ_WRITE : IRP_MJ_READ;
    p->MinorFunction = 0;
    p->IrpFlags = (w ? IRP_WRITE_OPERATION : IRP_READ_OPERATION) | (j->o.direct ? IRP_NOCACHE : 0);
    p->OperationFlags = 0;
    if (w) {
        p->Parameters.Write.Length = s->len;
        p->Parameters.Write.Key = 0;
        p->Parameters.Write.ByteOffset.QuadPart = (LONGLONG)s->offset;
        p->Parameters.Write.WriteBuffer = s->buf;
        p->Parameters.Write.MdlAddress = NULL;
    } else {
        p->Parameters.Read.Length = s->len;
        p->Parameters.Read.Key = 0;
        p->Parameters.Read.ByteOffset.QuadPart = (LONGLONG)s->offset;
        p->Parameters.Read.ReadBuffer = s->buf;
        p->Parameters.Read.MdlAddress = NULL;
    }
    return STATUS_SUCCESS;
}

/* Performs the slot's I/O with FltPerformAsynchronousIo; the callback runs
 * on the file's engine thread. */
static bool flt_send(struct slot *s, uint64_t t0)
{
    struct job *j = s->job;
    NTSTATUS st = flt_prepare(s);
    if (!NT_SUCCESS(st)) {
        job_io_error(j, s, st, "FltAllocateCallbackData");
        return false;
    }
    slot_sending(s, t0);
    st = FltPerformAsynchronousIo(s->cd, flt_completion, s);
    /* STATUS_PENDING: in flight (s->cd may already be reused by the
     * callback); STATUS_SUCCESS: failed before the engine, the callback
     * has run inline. Anything else: refused, no callback. */
    if (st != STATUS_PENDING && st != STATUS_SUCCESS) {
        job_io_error(j, s, st, "FltPerformAsynchronousIo");
        return false;
    }
    return true;
}

static void flt_issue(struct slot *s, struct shard *sh, uint64_t t0)
{
    slot_issue_loop(s, sh, t0, flt_send);
}

/* PASSIVE_LEVEL, on the engine thread of the file the I/O went to (or
 * inline in FltPerformAsynchronousIo when it failed before the engine). */
static VOID flt_completion(PFLT_CALLBACK_DATA Data, PFLT_CONTEXT Context)
{
    struct slot *s = Context;
    uint64_t tc = now_ns();
    s->status = Data->IoStatus.Status;
    s->info = Data->IoStatus.Information;
    slot_completed(s, tc);
}

/* --api=flt: the filter (registered and started once). */
static int flt_filter_init(struct bench_run *run)
{
    static const FLT_REGISTRATION reg = {
        .Size = sizeof(FLT_REGISTRATION),
        .Version = FLT_REGISTRATION_VERSION,
    };
    char sb[96];
    if (!run->flt)
        run->flt = xcalloc(1, sizeof(*run->flt));
    struct flt_state *fs = run->flt;
    if (fs->filter)
        return 0;
    NTSTATUS st = FltRegisterFilter(WdfDriverWdmGetDriverObject(run->driver), &reg, &fs->filter);
    if (!NT_SUCCESS(st)) {
        fs->filter = NULL;
        errmsg("FltRegisterFilter failed: %s", status_str(sb, sizeof(sb), st));
        return -1;
    }
    st = FltStartFiltering(fs->filter);
    if (!NT_SUCCESS(st)) {
        errmsg("FltStartFiltering failed: %s", status_str(sb, sizeof(sb), st));
        return -1;
    }
    return 0;
}

/* The instance on the volume named (a directory or a block device),
 * attached the first time a file of it is opened. */
static NTSTATUS flt_volume_instance(struct bench_run *run, const char *name, PFLT_INSTANCE *out)
{
    struct flt_state *fs = run->flt;
    for (unsigned i = 0; i < fs->nvols; i++)
        if (!strcmp(fs->vols[i].name, name)) {
            *out = fs->vols[i].instance;
            return STATUS_SUCCESS;
        }
    WCHAR *w = path_to_wide(name);
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING us;
    RtlInitUnicodeString(&us, w);
    PFLT_VOLUME v = NULL;
    PFLT_INSTANCE inst = NULL;
    NTSTATUS st = FltGetVolumeFromName(fs->filter, &us, &v);
    free(w);
    if (!NT_SUCCESS(st))
        return st;
    st = FltAttachVolume(fs->filter, v, NULL, &inst);
    if (!NT_SUCCESS(st)) {
        FltObjectDereference(v);
        return st;
    }
    struct flt_vol *nv = realloc(fs->vols, (fs->nvols + 1) * sizeof(*fs->vols));
    if (!nv)
        out_of_memory();
    fs->vols = nv;
    fs->vols[fs->nvols].name = keep_str(run->strings, name);
    fs->vols[fs->nvols].volume = v;
    fs->vols[fs->nvols].instance = inst;
    fs->nvols++;
    *out = inst;
    return STATUS_SUCCESS;
}

/* FltCreateFileEx of one file of a job: the absolute path, access and
 * options as open_target gives a WDF target. */
static NTSTATUS flt_open_file(struct bench_run *run, struct file_slot *f, bool write, bool direct,
                              const char **stage)
{
    char *real = realpath(f->path, NULL);
    *stage = "realpath";
    if (!real)
        return errno == ENOENT || errno == ENOTDIR ? STATUS_OBJECT_NAME_NOT_FOUND : STATUS_ACCESS_DENIED;
    /* The volume: the file's directory, or a block device itself. */
    char *vol = xstrdup(real);
    if (!f->lf->is_blk) {
        char *slash = strrchr(vol, '/');
        if (slash == vol)
            slash[1] = '\0';
        else if (slash)
            *slash = '\0';
    }
    *stage = "FltGetVolumeFromName/FltAttachVolume";
    NTSTATUS st = flt_volume_instance(run, vol, &f->inst);
    free(vol);
    if (!NT_SUCCESS(st)) {
        free(real);
        return st;
    }
    WCHAR *w = path_to_wide(real);
    free(real);
    *stage = "FltCreateFileEx";
    if (!w)
        return STATUS_OBJECT_NAME_INVALID;
    UNICODE_STRING us;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    RtlInitUnicodeString(&us, w);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE | OBJ_CASE_INSENSITIVE, NULL, NULL);
    ULONG options = FILE_NON_DIRECTORY_FILE | (direct ? FILE_NO_INTERMEDIATE_BUFFERING : 0);
    st = FltCreateFileEx(run->flt->filter, f->inst, &f->fh, &f->fo, write ? (GENERIC_READ | GENERIC_WRITE) : GENERIC_READ,
                         &oa, &iosb, NULL, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN,
                         options, NULL, 0, 0);
    free(w);
    if (!NT_SUCCESS(st)) {
        f->fo = NULL;
        return st;
    }
    f->fh_open = true;
    return STATUS_SUCCESS;
}

/* Detaches and releases what flt_filter_init / flt_volume_instance made
 * (the jobs' files and callback data are gone), before the driver goes. */
static void flt_global_teardown(struct bench_run *run)
{
    struct flt_state *fs = run->flt;
    if (!fs)
        return;
    for (unsigned i = fs->nvols; i-- > 0;) {
        if (fs->filter)
            (void)FltDetachVolume(fs->filter, fs->vols[i].volume, NULL);
        FltObjectDereference(fs->vols[i].instance);
        FltObjectDereference(fs->vols[i].volume);
    }
    free(fs->vols);
    if (fs->filter)
        FltUnregisterFilter(fs->filter);
    free(fs);
    run->flt = NULL;
}

/* --api=flt: the filter, the volumes and the files opened through them. */
static int flt_setup(struct job *j)
{
    const struct job_opts *o = &j->o;
    struct bench_run *run = j->run;
    char sb[96];
    if (flt_filter_init(run))
        return -1;
    for (unsigned k = 0; k < j->nfiles; k++) {
        struct file_slot *f = &j->files[k];
        const char *stage;
        NTSTATUS st = flt_open_file(run, f, rw_writes(o->rw), o->direct, &stage);
        if (!NT_SUCCESS(st)) {
            errmsg("%s: cannot open '%s' through the filter (%s)%s: %s", o->name, f->path, stage,
                   o->ioengine != ENGINE_DEFAULT ? " with the requested engine" : "",
                   status_str(sb, sizeof(sb), st));
            return -1;
        }
        if (!j->backend) {
            /* The filter's files are WDF targets on the same engines: a
             * target opened the same way tells which one this job gets. */
            WDFIOTARGET probe;
            st = open_target(run, f->path, rw_writes(o->rw), o->direct, &probe);
            if (NT_SUCCESS(st)) {
                PCSTR be = UwdfIoTargetGetBackendName(probe);
                j->backend = keep_str(run->strings, be ? be : "unknown");
                WdfObjectDelete(probe);
            } else {
                j->backend = keep_str(run->strings, "unknown");
            }
        }
    }
    return 0;
}

static int flt_setup_slot(struct slot *s)
{
    struct job *j = s->job;
    char sb[96];
    NTSTATUS st = FltAllocateCallbackDataEx(j->files[0].inst, j->files[0].fo,
                                            FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY, &s->cd);
    if (!NT_SUCCESS(st)) {
        s->cd = NULL;
        errmsg("%s: FltAllocateCallbackDataEx failed: %s", j->o.name, status_str(sb, sizeof(sb), st));
        return -1;
    }
    s->fresh = true;
    return 0;
}

/* FltClose first: it closes the file's WDF target, which waits for its
 * engine thread, so every callback has returned (the last one signals the
 * job before it returns) before its data is freed. */
static void flt_teardown(struct job *j)
{
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].fh_open) {
            (void)FltClose(j->files[k].fh);
            j->files[k].fh_open = false;
        }
    for (unsigned i = 0; i < j->nslots; i++)
        if (j->slots[i].cd) {
            FltFreeCallbackData(j->slots[i].cd);
            j->slots[i].cd = NULL;
        }
    for (unsigned k = 0; k < j->nfiles; k++)
        if (j->files[k].fo) {
            ObDereferenceObject(j->files[k].fo);
            j->files[k].fo = NULL;
        }
}

const struct bench_api api_flt = {
    .setup = flt_setup,
    .setup_slot = flt_setup_slot,
    .issue = flt_issue,
    .teardown = flt_teardown,
    .cleanup = flt_global_teardown,
};
