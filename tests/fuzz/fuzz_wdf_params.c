/* libFuzzer harness: the parameter validation of the WDF and Flt DDIs.
 *
 * Each input is a short program: a byte picks an operation, the bytes after
 * it fill that operation's structures (sizes, flags, types, offsets,
 * lengths, timeouts, IOCTL input), and the DDI runs on a small file target.
 * Whatever the bytes say, a DDI must return a status (or report a bug check
 * through the callback, which records it and returns), every request it
 * accepted must complete exactly once, and nothing may touch memory it does
 * not own (AddressSanitizer) or leak (LeakSanitizer).
 *
 * What the fuzzer never controls, because no DDI can check it: pointers
 * (each pointer field is NULL or a valid object of the harness), a raw
 * buffer's length beyond the buffer the harness passes (a caller's promise
 * in WDF as on Windows), and anything naming a file outside the harness's
 * own directory (names are built from a small alphabet with no '/'). Write
 * offsets inside [2 MiB, 2^45) are folded below 2 MiB; larger ones go
 * through unchanged and fail in the kernel (EFBIG / EINVAL). The data file
 * is cut back to its size after every input, and RLIMIT_FSIZE caps every
 * file at MAX_FILE_SIZE, so appends, file-pointer writes and zeroing
 * (which allocates blocks on ext4) cannot fill the disk.
 *
 * The harness works in a directory of its own (UWDF_FUZZ_DIR, else
 * /var/tmp) that it removes at exit. UWDF_BACKEND picks the engine. */
#define _GNU_SOURCE
#include <wdf.h>
#include <uwdf.h>
#include <fltkernel.h>
#include <ntdddisk.h>
#include <ntddstor.h>
#include <ntifs.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BUF_SIZE (64 * 1024)
#define DATA_SIZE (256 * 1024)
#define OFFSET_FOLD (2ull << 20)
#define OFFSET_PASS (1ull << 45)
#define MAX_OPS 12
#define WAIT_MS 20000 /* a completion later than this is lost */
#define NAME_CHARS 32768 /* room for any UNICODE_STRING Length (65535 bytes) */
#define MAX_FILE_SIZE (64ull << 20)

/* ---- the fuzz input as a stream (exhausted: zeros) ---- */

struct input {
    const uint8_t *p;
    size_t left;
};

static void take(struct input *in, void *out, size_t n)
{
    size_t k = n < in->left ? n : in->left;
    memcpy(out, in->p, k);
    memset((uint8_t *)out + k, 0, n - k);
    in->p += k;
    in->left -= k;
}

static uint8_t take_u8(struct input *in)
{
    uint8_t v;
    take(in, &v, 1);
    return v;
}

static uint32_t take_u32(struct input *in)
{
    uint32_t v;
    take(in, &v, sizeof(v));
    return v;
}

static uint64_t take_u64(struct input *in)
{
    uint64_t v;
    take(in, &v, sizeof(v));
    return v;
}

/* A length for a buffer of cap bytes: any value up to cap. */
static ULONG take_len(struct input *in, ULONG cap)
{
    return take_u32(in) % (cap + 1);
}

/* Offsets: the interesting values as they are, the rest folded so the data
 * file stays small (see the header). */
static LONGLONG fold_offset(uint64_t v)
{
    if (v >= OFFSET_FOLD && v < OFFSET_PASS)
        v %= OFFSET_FOLD;
    return (LONGLONG)v;
}

/* ---- harness state, made once ---- */

static struct {
    char *dir;
    WDFDRIVER driver;
    WDFDEVICE device;
    WDFIOTARGET target[2]; /* buffered, O_DIRECT */
    WDFREQUEST request[2];
    WDFMEMORY memory;
    void *membuf;
    unsigned char *raw;    /* BUF_SIZE, page-aligned: descriptors and copies */
    unsigned char *ioctl_in; /* BUF_SIZE */
    PFLT_FILTER filter;
    PFLT_VOLUME volume;
    PFLT_INSTANCE instance;
    HANDLE file_handle[2];
    PFILE_OBJECT file[2];
    WCHAR *name;           /* NAME_CHARS */
    int cwd, dirfd;        /* the caller's working directory, ours */
    int data_fd;           /* to cut the data file back after each input */
    atomic_int bugchecks;
} H;

static atomic_int g_completions;
static NTSTATUS g_status;

static VOID on_bugcheck(ULONG Code, ULONG_PTR P1, ULONG_PTR P2, ULONG_PTR P3, ULONG_PTR P4, PCSTR Reason, PVOID Ctx)
{
    atomic_fetch_add(&H.bugchecks, 1); /* the DDI returns its failure */
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void harness_cleanup(void)
{
    if (H.dir)
        nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, NTSTATUS st)
{
    fprintf(stderr, "fuzz_wdf_params: %s: 0x%08x\n", what, (unsigned)st);
    abort();
}

static void unicode_from(UNICODE_STRING *us, WCHAR *buf, size_t cap, const char *s)
{
    size_t n = mbstowcs(buf, s, cap - 1);
    if (n == (size_t)-1)
        die("mbstowcs", 0);
    buf[n] = 0;
    RtlInitUnicodeString(us, buf);
}

static void open_target(const char *path, ULONG options, WDFIOTARGET *t)
{
    WDF_IO_TARGET_OPEN_PARAMS p;
    UNICODE_STRING us;
    WCHAR buf[4096];
    NTSTATUS st = WdfIoTargetCreate(H.device, WDF_NO_OBJECT_ATTRIBUTES, t);
    if (!NT_SUCCESS(st))
        die("WdfIoTargetCreate", st);
    unicode_from(&us, buf, 4096, path);
    WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &us, GENERIC_READ | GENERIC_WRITE);
    p.CreateOptions |= options;
    st = WdfIoTargetOpen(*t, &p);
    if (!NT_SUCCESS(st))
        die("WdfIoTargetOpen", st);
}

static void open_flt_file(const char *path, ULONG options, HANDLE *h, PFILE_OBJECT *fo)
{
    UNICODE_STRING us;
    WCHAR buf[4096];
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK iosb;
    unicode_from(&us, buf, 4096, path);
    InitializeObjectAttributes(&oa, &us, OBJ_KERNEL_HANDLE, NULL, NULL);
    NTSTATUS st = FltCreateFileEx(H.filter, H.instance, h, fo, GENERIC_READ | GENERIC_WRITE, &oa, &iosb, NULL,
                                  FILE_ATTRIBUTE_NORMAL, 0, FILE_OPEN, options, NULL, 0, 0);
    if (!NT_SUCCESS(st))
        die("FltCreateFileEx", st);
}

static void harness_init(void)
{
    static const FLT_REGISTRATION reg = { .Size = sizeof(FLT_REGISTRATION), .Version = FLT_REGISTRATION_VERSION };
    const char *base = getenv("UWDF_FUZZ_DIR");
    char templ[4096], path[4200];
    WDF_DRIVER_CONFIG cfg;
    UNICODE_STRING us;
    WCHAR buf[4096];
    NTSTATUS st;

    snprintf(templ, sizeof(templ), "%s/uwdf-fuzz-XXXXXX", base && *base ? base : "/var/tmp");
    if (!mkdtemp(templ))
        die("mkdtemp", errno);
    H.dir = strdup(templ);
    atexit(harness_cleanup);
    H.cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    H.dirfd = open(H.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (H.cwd < 0 || H.dirfd < 0)
        die("open directory", errno);
    snprintf(path, sizeof(path), "%s/data.bin", H.dir);
    struct rlimit fsize = { MAX_FILE_SIZE, MAX_FILE_SIZE };
    signal(SIGXFSZ, SIG_IGN); /* past the limit a write fails with EFBIG instead */
    if (setrlimit(RLIMIT_FSIZE, &fsize) != 0)
        die("setrlimit", errno);
    H.data_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (H.data_fd < 0 || ftruncate(H.data_fd, DATA_SIZE) != 0)
        die("data file", errno);

    UwdfSetBugCheckCallback(on_bugcheck, NULL);
    WDF_DRIVER_CONFIG_INIT(&cfg, WDF_NO_EVENT_CALLBACK);
    st = WdfDriverCreate(NULL, NULL, WDF_NO_OBJECT_ATTRIBUTES, &cfg, &H.driver);
    if (!NT_SUCCESS(st))
        die("WdfDriverCreate", st);
    PWDFDEVICE_INIT init = WdfControlDeviceInitAllocate(H.driver, &SDDL_DEVOBJ_SYS_ALL_ADM_ALL);
    st = WdfDeviceCreate(&init, WDF_NO_OBJECT_ATTRIBUTES, &H.device);
    if (!NT_SUCCESS(st))
        die("WdfDeviceCreate", st);
    WdfControlFinishInitializing(H.device);
    open_target(path, 0, &H.target[0]);
    open_target(path, FILE_NO_INTERMEDIATE_BUFFERING, &H.target[1]);
    for (int i = 0; i < 2; i++)
        if (!NT_SUCCESS(st = WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, H.target[i], &H.request[i])))
            die("WdfRequestCreate", st);
    st = WdfMemoryCreate(WDF_NO_OBJECT_ATTRIBUTES, NonPagedPoolNx, 0, BUF_SIZE, &H.memory, &H.membuf);
    if (!NT_SUCCESS(st))
        die("WdfMemoryCreate", st);
    if (posix_memalign((void **)&H.raw, 4096, BUF_SIZE) || posix_memalign((void **)&H.ioctl_in, 4096, BUF_SIZE))
        die("posix_memalign", 0);
    H.name = calloc(NAME_CHARS, sizeof(WCHAR));
    if (!H.name)
        die("calloc", 0);

    st = FltRegisterFilter(WdfDriverWdmGetDriverObject(H.driver), &reg, &H.filter);
    if (NT_SUCCESS(st))
        st = FltStartFiltering(H.filter);
    if (!NT_SUCCESS(st))
        die("FltRegisterFilter", st);
    unicode_from(&us, buf, 4096, H.dir);
    if (!NT_SUCCESS(st = FltGetVolumeFromName(H.filter, &us, &H.volume)))
        die("FltGetVolumeFromName", st);
    if (!NT_SUCCESS(st = FltAttachVolume(H.filter, H.volume, NULL, &H.instance)))
        die("FltAttachVolume", st);
    open_flt_file(path, FILE_NON_DIRECTORY_FILE, &H.file_handle[0], &H.file[0]);
    open_flt_file(path, FILE_NON_DIRECTORY_FILE | FILE_NO_INTERMEDIATE_BUFFERING, &H.file_handle[1], &H.file[1]);
}

/* ---- completion bookkeeping ---- */

static VOID on_complete(WDFREQUEST Request, WDFIOTARGET Target, PWDF_REQUEST_COMPLETION_PARAMS Params,
                        WDFCONTEXT Context)
{
    g_status = Params->IoStatus.Status;
    atomic_fetch_add(&g_completions, 1);
}

static VOID on_flt_complete(PFLT_CALLBACK_DATA Data, PFLT_CONTEXT Context)
{
    atomic_fetch_add(&g_completions, 1);
}

/* Waits for exactly `want` completions (more is a double completion). */
static void expect_completions(int want, const char *what)
{
    struct timespec nap = { 0, 50 * 1000 };
    for (int waited_us = 0; atomic_load(&g_completions) < want; waited_us += 50) {
        if (waited_us > WAIT_MS * 1000) {
            fprintf(stderr, "fuzz_wdf_params: %s: completion lost\n", what);
            abort();
        }
        nanosleep(&nap, NULL);
    }
    if (atomic_load(&g_completions) != want) {
        fprintf(stderr, "fuzz_wdf_params: %s: %d completions, expected %d\n", what, atomic_load(&g_completions),
                want);
        abort();
    }
}

static void request_reset(WDFREQUEST r)
{
    WDF_REQUEST_REUSE_PARAMS p;
    WDF_REQUEST_REUSE_PARAMS_INIT(&p, WDF_REQUEST_REUSE_NO_FLAGS, STATUS_SUCCESS);
    NTSTATUS st = WdfRequestReuse(r, &p);
    if (!NT_SUCCESS(st))
        die("WdfRequestReuse of an idle request", st);
}

/* Sends a formatted request with fuzzed send options and waits for the
 * outcome: a completion routine call exactly when the send was accepted
 * asynchronously. */
static void send_fuzzed(struct input *in, WDFREQUEST r, WDFIOTARGET t)
{
    WDF_REQUEST_SEND_OPTIONS o;
    take(in, &o, sizeof(o));
    if (take_u8(in) & 1)
        o.Size = sizeof(o);
    bool with_options = take_u8(in) & 1;
    atomic_store(&g_completions, 0);
    WdfRequestSetCompletionRoutine(r, on_complete, NULL);
    BOOLEAN sent = WdfRequestSend(r, t, with_options ? &o : WDF_NO_SEND_OPTIONS);
    bool synchronous = with_options && o.Size == sizeof(o) && (o.Flags & WDF_REQUEST_SEND_OPTION_SYNCHRONOUS);
    if (sent && !synchronous)
        expect_completions(1, "WdfRequestSend");
    else if (atomic_load(&g_completions) > (synchronous ? 1 : 0))
        die("completion routine ran for a send that failed", WdfRequestGetStatus(r));
    (void)WdfRequestGetStatus(r);
    request_reset(r);
}

static void fuzz_memory_offset(struct input *in, WDFMEMORY_OFFSET *mo)
{
    mo->BufferOffset = (size_t)take_u64(in);
    mo->BufferLength = (size_t)take_u64(in);
    if (take_u8(in) & 1) { /* mostly in range, to get past the check */
        mo->BufferOffset %= BUF_SIZE + 1;
        mo->BufferLength %= BUF_SIZE + 1;
    }
}

/* ---- operations ---- */

/* WdfIoTargetOpen with a fuzzed WDF_IO_TARGET_OPEN_PARAMS on a new target. */
static void op_target_open(struct input *in)
{
    static const WCHAR alphabet[] = { L'a', L'b', L'.', L'\\', 0xE9, 0xD800, 0x10FFFF, 0 };
    WDF_IO_TARGET_OPEN_PARAMS p;
    WDFIOTARGET t;
    LONGLONG alloc_size = (LONGLONG)take_u64(in);
    take(in, &p, sizeof(p));
    if (take_u8(in) & 1)
        p.Size = sizeof(p);
    if (take_u8(in) & 1)
        p.Type = WdfIoTargetOpenByName + (take_u8(in) & 1); /* ByName or Reopen */
    p.EvtIoTargetQueryRemove = NULL;
    p.EvtIoTargetRemoveCanceled = NULL;
    p.EvtIoTargetRemoveComplete = NULL;
    p.TargetDeviceObject = NULL;
    p.TargetFileObject = NULL;
    p.EaBuffer = NULL;
    p.AllocationSize = take_u8(in) & 1 ? &alloc_size : NULL;
    p.FileName.Buffer = NULL;
    p.FileName.Length = p.FileName.MaximumLength = 0;
    /* A name in this directory: "f", then up to 8 letters of the alphabet,
     * then 'z' up to the end of the buffer, which covers any Length. */
    size_t n = 0;
    H.name[n++] = L'f';
    for (unsigned k = take_u8(in) % 9; k > 0; k--)
        H.name[n++] = alphabet[take_u8(in) % (sizeof(alphabet) / sizeof(alphabet[0]))];
    while (n < NAME_CHARS)
        H.name[n++] = L'z';
    switch (take_u8(in) % 3) {
    case 0: p.TargetDeviceName.Buffer = NULL; break;
    case 1: p.TargetDeviceName.Buffer = H.name; break;
    default: p.TargetDeviceName.Buffer = H.name; /* exactly the name so far */
        p.TargetDeviceName.Length = (USHORT)((1 + (p.TargetDeviceName.Length % 9)) * sizeof(WCHAR));
        break;
    }
    NTSTATUS st = WdfIoTargetCreate(H.device, WDF_NO_OBJECT_ATTRIBUTES, &t);
    if (!NT_SUCCESS(st))
        die("WdfIoTargetCreate", st);
    /* Names the fuzzer builds are relative: they resolve in our directory
     * (only while the open runs, so libFuzzer's own paths keep working). */
    if (fchdir(H.dirfd) != 0)
        die("fchdir", errno);
    st = WdfIoTargetOpen(t, &p);
    if (fchdir(H.cwd) != 0)
        die("fchdir", errno);
    if (NT_SUCCESS(st)) {
        /* An open target must take a request. */
        WDFREQUEST r;
        if (NT_SUCCESS(WdfRequestCreate(WDF_NO_OBJECT_ATTRIBUTES, t, &r))) {
            LONGLONG off = 0;
            if (NT_SUCCESS(WdfIoTargetFormatRequestForRead(t, r, H.memory, NULL, &off)))
                send_fuzzed(in, r, t);
            WdfObjectDelete(r);
        }
        if (take_u8(in) & 1) { /* close and reopen with the same parameters */
            WdfIoTargetClose(t);
            WDF_IO_TARGET_OPEN_PARAMS again;
            WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN(&again);
            if (fchdir(H.dirfd) != 0)
                die("fchdir", errno);
            (void)WdfIoTargetOpen(t, &again);
            if (fchdir(H.cwd) != 0)
                die("fchdir", errno);
        }
    }
    WdfObjectDelete(t);
}

/* Format a read or write with fuzzed memory offsets and device offset,
 * then send it with fuzzed options. */
static void op_format_and_send(struct input *in)
{
    int which = take_u8(in) & 1;
    bool write = take_u8(in) & 1;
    WDFMEMORY_OFFSET mo;
    fuzz_memory_offset(in, &mo);
    LONGLONG dev_off = fold_offset(take_u64(in));
    uint8_t nulls = take_u8(in);
    WDFREQUEST r = H.request[which];
    WDFIOTARGET t = H.target[which];
    NTSTATUS st = write ? WdfIoTargetFormatRequestForWrite(t, r, H.memory, nulls & 1 ? NULL : &mo,
                                                           nulls & 2 ? NULL : &dev_off)
                        : WdfIoTargetFormatRequestForRead(t, r, H.memory, nulls & 1 ? NULL : &mo,
                                                          nulls & 2 ? NULL : &dev_off);
    if (NT_SUCCESS(st)) {
        if (write && (nulls & 4))
            UwdfRequestSetWriteThrough(r, TRUE);
        send_fuzzed(in, r, t);
    } else {
        request_reset(r);
    }
}

/* WdfRequestReuse with a fuzzed WDF_REQUEST_REUSE_PARAMS. */
static void op_reuse(struct input *in)
{
    WDF_REQUEST_REUSE_PARAMS p;
    take(in, &p, sizeof(p));
    if (take_u8(in) & 1)
        p.Size = sizeof(p);
    p.NewIrp = NULL;
    WDFREQUEST r = H.request[take_u8(in) & 1];
    (void)WdfRequestReuse(r, &p);
    request_reset(r);
}

/* WdfMemoryCopyToBuffer / FromBuffer with fuzzed offset and length. The
 * harness's buffer is as large as the memory object, so every length the
 * DDI may accept fits it. */
static void op_memory_copy(struct input *in)
{
    size_t off = (size_t)take_u64(in), len = (size_t)take_u64(in);
    if (take_u8(in) & 1) {
        off %= BUF_SIZE + 1;
        len %= BUF_SIZE + 1;
    }
    if (take_u8(in) & 1)
        (void)WdfMemoryCopyToBuffer(H.memory, off, H.raw, len);
    else
        (void)WdfMemoryCopyFromBuffer(H.memory, off, H.raw, len);
}

/* A WDF_MEMORY_DESCRIPTOR of a fuzzed type over the harness's buffers. */
static void fuzz_descriptor(struct input *in, WDF_MEMORY_DESCRIPTOR *d, WDFMEMORY_OFFSET *mo, PMDL *mdl,
                            unsigned char *buf)
{
    uint8_t type = take_u8(in);
    memset(d, 0, sizeof(*d));
    d->Type = (WDF_MEMORY_DESCRIPTOR_TYPE)(type % 5); /* includes Invalid and one past the end */
    switch (d->Type) {
    case WdfMemoryDescriptorTypeBuffer:
        d->u.BufferType.Buffer = type & 0x80 ? NULL : buf;
        d->u.BufferType.Length = take_len(in, BUF_SIZE);
        break;
    case WdfMemoryDescriptorTypeMdl: {
        ULONG len = take_len(in, BUF_SIZE);
        *mdl = len ? IoAllocateMdl(buf, len, FALSE, FALSE, NULL) : NULL;
        if (*mdl)
            MmBuildMdlForNonPagedPool(*mdl);
        d->u.MdlType.Mdl = *mdl;
        d->u.MdlType.BufferLength = take_len(in, len);
        break;
    }
    case WdfMemoryDescriptorTypeHandle:
        fuzz_memory_offset(in, mo);
        d->u.HandleType.Memory = H.memory;
        d->u.HandleType.Offsets = type & 0x80 ? NULL : mo;
        break;
    default:
        break;
    }
}

/* WdfIoTargetSendRead/WriteSynchronously with a fuzzed descriptor, device
 * offset and send options; with the harness's request or none. */
static void op_sync_rw(struct input *in)
{
    WDF_MEMORY_DESCRIPTOR d;
    WDFMEMORY_OFFSET mo;
    WDF_REQUEST_SEND_OPTIONS o;
    PMDL mdl = NULL;
    ULONG_PTR done = 0;
    int which = take_u8(in) & 1;
    bool write = take_u8(in) & 1;
    uint8_t flags = take_u8(in);
    fuzz_descriptor(in, &d, &mo, &mdl, H.raw);
    LONGLONG dev_off = fold_offset(take_u64(in));
    take(in, &o, sizeof(o));
    if (flags & 1)
        o.Size = sizeof(o);
    if (flags & 2) { /* a timeout always, as the verifier asks */
        o.Flags |= WDF_REQUEST_SEND_OPTION_TIMEOUT;
        o.Timeout = WDF_REL_TIMEOUT_IN_SEC(5);
    }
    WDFREQUEST r = flags & 4 ? H.request[which] : NULL;
    PWDF_MEMORY_DESCRIPTOR pd = flags & 8 ? NULL : &d;
    if (write)
        (void)WdfIoTargetSendWriteSynchronously(H.target[which], r, pd, flags & 16 ? NULL : &dev_off,
                                                flags & 32 ? NULL : &o, flags & 64 ? NULL : &done);
    else
        (void)WdfIoTargetSendReadSynchronously(H.target[which], r, pd, flags & 16 ? NULL : &dev_off,
                                               flags & 32 ? NULL : &o, flags & 64 ? NULL : &done);
    if (r)
        request_reset(r);
    if (mdl)
        IoFreeMdl(mdl);
}

static const ULONG ioctl_codes[] = {
    IOCTL_DISK_GET_LENGTH_INFO,     IOCTL_DISK_GET_DRIVE_GEOMETRY,           IOCTL_DISK_GET_DRIVE_GEOMETRY_EX,
    IOCTL_STORAGE_QUERY_PROPERTY,   IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES, FSCTL_SET_ZERO_DATA,
};
#define N_IOCTLS (sizeof(ioctl_codes) / sizeof(ioctl_codes[0]))

/* IOCTL input: fuzz bytes (a DSM header and its ranges, a zero-data range,
 * a property query), with the range offsets folded like write offsets. */
static ULONG fuzz_ioctl_input(struct input *in, ULONG code)
{
    ULONG len = take_u32(in) % 512;
    take(in, H.ioctl_in, len);
    if (code == FSCTL_SET_ZERO_DATA && len >= sizeof(FILE_ZERO_DATA_INFORMATION)) {
        FILE_ZERO_DATA_INFORMATION *z = (void *)H.ioctl_in;
        z->FileOffset.QuadPart = fold_offset((uint64_t)z->FileOffset.QuadPart);
        z->BeyondFinalZero.QuadPart = fold_offset((uint64_t)z->BeyondFinalZero.QuadPart);
    }
    return len;
}

static ULONG pick_ioctl(struct input *in)
{
    uint8_t k = take_u8(in);
    return k < 0xF0 ? ioctl_codes[k % N_IOCTLS] : take_u32(in);
}

/* WdfIoTargetSendIoctlSynchronously with fuzzed code, input and output. */
static void op_sync_ioctl(struct input *in)
{
    int which = take_u8(in) & 1;
    ULONG code = pick_ioctl(in);
    ULONG in_len = fuzz_ioctl_input(in, code);
    WDF_MEMORY_DESCRIPTOR din, dout;
    ULONG out_len = take_len(in, BUF_SIZE);
    uint8_t flags = take_u8(in);
    ULONG_PTR returned = 0;
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&din, H.ioctl_in, in_len);
    WDF_MEMORY_DESCRIPTOR_INIT_BUFFER(&dout, H.raw, out_len);
    (void)WdfIoTargetSendIoctlSynchronously(H.target[which], flags & 4 ? H.request[which] : NULL, code,
                                            flags & 1 ? NULL : &din, flags & 2 ? NULL : &dout, NULL,
                                            flags & 8 ? NULL : &returned);
    if (flags & 4)
        request_reset(H.request[which]);
}

/* WdfIoTargetFormatRequestForIoctl with fuzzed memory offsets, sent
 * asynchronously. */
static void op_format_ioctl(struct input *in)
{
    int which = take_u8(in) & 1;
    ULONG code = pick_ioctl(in);
    ULONG in_len = fuzz_ioctl_input(in, code);
    WDFMEMORY_OFFSET in_off, out_off;
    WDFMEMORY in_mem;
    uint8_t flags = take_u8(in);
    fuzz_memory_offset(in, &in_off);
    fuzz_memory_offset(in, &out_off);
    NTSTATUS st = WdfMemoryCreatePreallocated(WDF_NO_OBJECT_ATTRIBUTES, H.ioctl_in, in_len ? in_len : 1, &in_mem);
    if (!NT_SUCCESS(st))
        return;
    WDFREQUEST r = H.request[which];
    st = WdfIoTargetFormatRequestForIoctl(H.target[which], r, code, flags & 1 ? NULL : in_mem,
                                          flags & 2 ? NULL : &in_off, flags & 4 ? NULL : H.memory,
                                          flags & 8 ? NULL : &out_off);
    if (NT_SUCCESS(st))
        send_fuzzed(in, r, H.target[which]);
    else
        request_reset(r);
    WdfObjectDelete(in_mem);
}

/* WdfRequestWdmFormatUsingStackLocation with a fuzzed stack location (no
 * pointers), then a send. */
static void op_stack_location(struct input *in)
{
    int which = take_u8(in) & 1;
    IO_STACK_LOCATION s;
    memset(&s, 0, sizeof(s));
    s.MajorFunction = take_u8(in);
    if (take_u8(in) & 1) /* mostly the ones the framework handles */
        s.MajorFunction = (UCHAR[]){ IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_DEVICE_CONTROL,
                                     IRP_MJ_INTERNAL_DEVICE_CONTROL }[take_u8(in) % 5];
    s.MinorFunction = take_u8(in);
    s.Flags = take_u8(in);
    switch (s.MajorFunction) {
    case IRP_MJ_READ:
    case IRP_MJ_WRITE:
        s.Parameters.Read.Length = take_u32(in);
        s.Parameters.Read.Key = take_u32(in);
        s.Parameters.Read.Flags = take_u32(in);
        s.Parameters.Read.ByteOffset.QuadPart = fold_offset(take_u64(in));
        break;
    case IRP_MJ_DEVICE_CONTROL:
    case IRP_MJ_INTERNAL_DEVICE_CONTROL:
        s.Parameters.DeviceIoControl.OutputBufferLength = take_u32(in);
        s.Parameters.DeviceIoControl.InputBufferLength = take_u32(in);
        s.Parameters.DeviceIoControl.IoControlCode = pick_ioctl(in);
        break;
    default:
        break;
    }
    WdfRequestWdmFormatUsingStackLocation(H.request[which], &s);
    send_fuzzed(in, H.request[which], H.target[which]);
}

/* Flt: a callback data block with a fuzzed Iopb, performed synchronously or
 * asynchronously, maybe reused and performed again, then freed. */
static void flt_fill_iopb(struct input *in, PFLT_CALLBACK_DATA cd)
{
    PFLT_IO_PARAMETER_BLOCK iopb = cd->Iopb;
    uint8_t major = take_u8(in);
    if (take_u8(in) & 1)
        major = (UCHAR[]){ IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_CREATE }[take_u8(in) % 4];
    iopb->MajorFunction = major;
    iopb->MinorFunction = take_u8(in);
    iopb->IrpFlags = take_u32(in);
    iopb->OperationFlags = take_u8(in);
    memset(&iopb->Parameters, 0, sizeof(iopb->Parameters));
    if (major == IRP_MJ_READ || major == IRP_MJ_WRITE) {
        uint8_t how = take_u8(in);
        ULONG len = take_len(in, BUF_SIZE);
        iopb->Parameters.Read.Length = len;
        iopb->Parameters.Read.Key = take_u32(in);
        switch (how % 4) {
        case 0: iopb->Parameters.Read.ByteOffset.QuadPart = fold_offset(take_u64(in)); break;
        case 1: /* the file pointer, as FltReadFile with a NULL ByteOffset */
            iopb->Parameters.Read.ByteOffset.HighPart = -1;
            iopb->Parameters.Read.ByteOffset.LowPart = FILE_USE_FILE_POINTER_POSITION;
            break;
        case 2:
            iopb->Parameters.Read.ByteOffset.HighPart = -1;
            iopb->Parameters.Read.ByteOffset.LowPart = FILE_WRITE_TO_END_OF_FILE;
            break;
        default: /* negative, other than the two markers above */
            iopb->Parameters.Read.ByteOffset.QuadPart = (LONGLONG)(take_u64(in) | (1ull << 63));
            break;
        }
        iopb->Parameters.Read.ReadBuffer = how & 4 ? NULL : H.raw;
        if ((how & 8) && len) { /* an MDL the perform path owns from here on */
            iopb->Parameters.Read.MdlAddress = IoAllocateMdl(H.raw, len, FALSE, FALSE, NULL);
            if (iopb->Parameters.Read.MdlAddress)
                MmBuildMdlForNonPagedPool(iopb->Parameters.Read.MdlAddress);
        }
    } else if (major == IRP_MJ_FLUSH_BUFFERS) {
        iopb->Parameters.FlushBuffers.Type = take_u32(in);
    }
}

static void flt_perform(struct input *in, PFLT_CALLBACK_DATA cd)
{
    if (take_u8(in) & 1) {
        FltPerformSynchronousIo(cd);
        return;
    }
    atomic_store(&g_completions, 0);
    (void)FltPerformAsynchronousIo(cd, on_flt_complete, NULL);
    /* Success or not, the callback runs exactly once (docs/devices.md). */
    expect_completions(1, "FltPerformAsynchronousIo");
}

static void op_flt(struct input *in)
{
    PFLT_CALLBACK_DATA cd = NULL;
    int which = take_u8(in) & 1;
    ULONG flags = take_u8(in) & 1 ? FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY : take_u32(in);
    NTSTATUS st = FltAllocateCallbackDataEx(H.instance, H.file[which], flags, &cd);
    if (!NT_SUCCESS(st))
        return;
    flt_fill_iopb(in, cd);
    flt_perform(in, cd);
    if (take_u8(in) & 1) {
        FltReuseCallbackData(cd);
        flt_fill_iopb(in, cd);
        flt_perform(in, cd);
    }
    FltFreeCallbackData(cd);
}

typedef void op_fn(struct input *in);
static op_fn *const ops[] = {
    op_target_open, op_format_and_send, op_reuse,    op_memory_copy, op_sync_rw,
    op_sync_ioctl,  op_format_ioctl,    op_stack_location, op_flt,
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!H.driver)
        harness_init();
    struct input in = { data, size };
    for (int n = 0; n < MAX_OPS && in.left > 0; n++)
        ops[take_u8(&in) % N_OPS](&in);
    /* Whatever happened, the harness's requests are idle and reusable. */
    request_reset(H.request[0]);
    request_reset(H.request[1]);
    if (ftruncate(H.data_fd, DATA_SIZE) != 0)
        die("ftruncate", errno);
    return 0;
}
