/* The command line -> the config -> checked job definitions (init.h). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "init.h"
#include "verify.h"

void config_free(struct bench_config *cfg)
{
    for (unsigned i = 0; i < cfg->nsections; i++) {
        free(cfg->sections[i]->kv);
        free(cfg->sections[i]);
    }
    free(cfg->sections);
    free(cfg->jobfiles);
    strpool_free(&cfg->strings);
    memset(cfg, 0, sizeof(*cfg));
}

/* fio's usage lines first (what `fio` alone prints), then ours. */
static void usage(FILE *f)
{
    fprintf(f,
            BENCH_VERSION "\n"
            BENCH_NAME " [options] [job options] <job file(s)>\n"
            "\n"
            "fio-style benchmark of the uwdf request / I/O-target model. Options are fio's,\n"
            "as --opt=value or --opt value (flags: --opt or --opt=0/1); every name uwdf-bench\n"
            "shares with fio means what it means to fio (see uwdf-bench(1)).\n"
            "\n"
            "A job is a --name on the command line or a section of a job file; without one\n"
            "nothing runs (as with fio). fio's defaults apply (rw=read, bs=4k, iodepth=1,\n"
            "direct=0, no runtime limit). Job options given before the first --name act as a\n"
            "[global] section read before the job file(s): a job file's own [global] and job\n"
            "sections override them. Each --name starts a job; options after it belong to it.\n"
            "\n"
            "Job files: INI sections, [global] sets defaults for the sections after it, one job\n"
            "per other section, key=value or a bare flag per line, ';' or '#' comment lines.\n"
            "Values get ${VAR} from the environment and fio's $pagesize, $mb_memory, $ncpus\n"
            "(with + - * /: computed); a number in parentheses is arithmetic: bs=(4k*2).\n"
            "\n"
            "Job options:\n");
    opt_print_help(f, job_options, n_job_options);
    fprintf(f, "\n"
               "Output options (command line only):\n");
    opt_print_help(f, global_options, n_global_options);
    fprintf(f,
            "  --help, --version\n"
            "\n"
            "Statistics: slat = time of the format + send calls, clat = from the send's return\n"
            "to the completion routine's entry, lat = slat + clat (CLOCK_MONOTONIC). The sync API\n"
            "reports the whole call as clat and lat (no slat, as fio's sync engines). Latency\n"
            "units, percentiles and bandwidth lines follow fio's rules. A job's CPU is measured\n"
            "per thread (RUSAGE_THREAD): its own thread, plus each completion thread serving\n"
            "its targets (once, however many targets share it) from the first completion it\n"
            "ran to the job's last. IO depths are the\n"
            "job's requests in flight when each was sent, itself included.\n"
            "\n"
            "BATCHING: without iodepth_batch_* options uwdf's engine batches by itself: every\n"
            "send the completion routines of one round made, and every send from other threads\n"
            "that is waiting, goes to the kernel in one io_uring_enter / io_submit. Any of\n"
            "iodepth_batch_submit (iodepth_batch), iodepth_batch_complete_min\n"
            "(iodepth_batch_complete) or iodepth_batch_complete_max sets fio's batching on the\n"
            "job's targets (UwdfIoTargetSetBatching; fio's defaults 1, 1, =min for the others):\n"
            "submit N at a time (0: iodepth; the first sends go under a send plug), run the\n"
            "completion routines once at least min of the job's I/Os finished (or all in\n"
            "flight), at most max per round. complete_min=0 is taken as 1 (the engine thread\n"
            "waits rather than polls). The report then has fio's submit and complete lines\n"
            "(iodepth_submit, iodepth_complete in JSON), counted by the engine. --api=async.\n"
            "\n"
            "Verify: write jobs with --verify=crc32c store a header (magic, length, offset,\n"
            "crc32c of the block) in every block and read back every block they wrote after\n"
            "the write phase; read-only jobs check every block they read (a generated file is\n"
            "laid out with such blocks). Mixed read/write jobs check the written blocks after\n"
            "the run. A failure is reported; verify_fatal stops the job at the first one.\n"
            "Either way the exit status is 1. Trim workloads cannot be verified.\n"
            "\n"
            "STORAGE OPERATIONS: --rw=trim / randtrim discard bs bytes per I/O, each an\n"
            "IOCTL_STORAGE_MANAGE_DATA_SET_ATTRIBUTES request (DeviceDsmAction_Trim, one\n"
            "DEVICE_DATA_SET_RANGE) formatted with WdfIoTargetFormatRequestForIoctl and sent\n"
            "with WdfRequestSend (--api=sync: WdfIoTargetSendIoctlSynchronously). uwdf runs it\n"
            "as BLKDISCARD on a block device and fallocate(PUNCH_HOLE|KEEP_SIZE) on a file, on\n"
            "a framework worker thread, whatever --ioengine says (the null engine too: its\n"
            "trims are real). --rw=trimwrite trims each block, then writes it (one slot does\n"
            "both, in that order; size and number_ios count such pairs). Trims are reported\n"
            "as \"trim\" (IOPS, bandwidth, latency), as fio does.\n"
            "--fsync=N / --fdatasync=N: once N writes of a job have been issued, the slot that\n"
            "issued the N-th sends a flush as its next request, after that write completed:\n"
            "an IRP_MJ_FLUSH_BUFFERS stack location (MinorFunction 0: fsync(2);\n"
            "IRP_MN_FLUSH_DATA_ONLY: fdatasync(2)) formatted with\n"
            "WdfRequestWdmFormatUsingStackLocation and sent with WdfRequestSend (--api=sync:\n"
            "WDF_REQUEST_SEND_OPTION_SYNCHRONOUS). So a job issues one flush per N writes (fio\n"
            "may issue several at iodepth > 1). When both are given and both fall due on the\n"
            "same write, fsync is sent. Flushes are not I/Os of the IOPS and bandwidth figures:\n"
            "they are counted and timed on their own (\"fsync/fdatasync/sync_file_range\" in\n"
            "the normal report, \"sync\" in JSON), latency from before the format to the\n"
            "completion routine. A flush that fell due is still sent when the runtime or size\n"
            "limit ends the job, not after an error or an interrupt.\n"
            "--sync=1 (sync, dsync): every write is write-through: UwdfRequestSetWriteThrough\n"
            "after its format, sent down with RWF_DSYNC (O_SYNC and O_DSYNC are not told\n"
            "apart). With --api=sync such writes are formatted and sent with\n"
            "WDF_REQUEST_SEND_OPTION_SYNCHRONOUS instead of WdfIoTargetSendWriteSynchronously.\n"
            "\n"
            "FILTER MANAGER: --api=flt issues the I/O as a minifilter does its own\n"
            "(fltkernel.h): FltRegisterFilter + FltStartFiltering, FltGetVolumeFromName on the\n"
            "file's directory (on the device itself for a block device) + FltAttachVolume,\n"
            "FltCreateFileEx (FILE_NO_INTERMEDIATE_BUFFERING with --direct=1), and per queue\n"
            "slot one FLT_CALLBACK_DATA (FltAllocateCallbackDataEx with\n"
            "FLT_ALLOCATE_CALLBACK_DATA_PREALLOCATE_ALL_MEMORY) whose Iopb is filled\n"
            "(IRP_MJ_READ / IRP_MJ_WRITE, IRP_NOCACHE when direct) and performed with\n"
            "FltPerformAsynchronousIo. The completion callback (PASSIVE_LEVEL, on the file's\n"
            "engine thread) accounts the I/O and performs the slot's next one itself:\n"
            "--reuse=1 after FltReuseCallbackData, --reuse=0 after FltFreeCallbackData +\n"
            "FltAllocateCallbackData, so the two show reuse against an allocation per\n"
            "operation. slat is the Iopb set-up (with the reuse or free + allocate) plus the\n"
            "FltPerformAsynchronousIo call. --rw read, write, randread, randwrite, rw and\n"
            "randrw only; --verify, trims, --fsync/--fdatasync, --sync and --request_timeout\n"
            "are refused with --api=flt.\n"
            "\n"
            "DEVICE STACK: --api=stack sends the job's requests as --api=async does, but to a\n"
            "target opened on an in-process control device (\\Device\\uwdfBenchFilterN) made\n"
            "over each file: its parallel default queue forwards every request unchanged\n"
            "(WdfRequestFormatRequestUsingCurrentType + WdfRequestSend) to the device's own\n"
            "target, opened on the file, and completes it with what the file returned: the\n"
            "smallest layer a storage filter is. The engine reported is the one below.\n"
            "\n"
            "Exit status: 0 success, 1 no job, bad options, set-up failure, I/O or verify\n"
            "errors.\n");
}

/* --cmdhelp[=NAME]: fio's per-option help, or every option's line. */
static int print_cmdhelp(const char *name)
{
    if (!*name || !strcmp(name, "all")) {
        for (size_t i = 0; i < n_job_options; i++)
            printf("%-24s: %s\n", job_options[i].name, job_options[i].help);
        for (size_t i = 0; i < n_global_options; i++)
            printf("%-24s: %s\n", global_options[i].name, global_options[i].help);
        return 2;
    }
    const struct opt_def *d = find_job_option(name);
    if (!d)
        d = opt_find(global_options, n_global_options, name);
    if (d) {
        opt_print_cmdhelp(stdout, d);
        return 2;
    }
    const char *near = suggest_option(name, true);
    if (near)
        errmsg("No such command: %s; did you mean %s?", name, near);
    else
        errmsg("No such command: %s", name);
    return 1;
}

static int take_value(int argc, char **argv, int *i, const char *key, const char *eqval,
                      bool is_flag, const char **val)
{
    if (eqval) {
        *val = eqval;
        return 0;
    }
    if (is_flag) {
        /* fio's booleans take a value ("--direct 1"); a bare flag does not
         * swallow a following job file name. */
        if (*i + 1 < argc && (!strcmp(argv[*i + 1], "0") || !strcmp(argv[*i + 1], "1")))
            *val = argv[++*i];
        else
            *val = NULL;
        return 0;
    }
    /* "--size --rw=read": the value was forgotten, not "--rw=read". */
    if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2)) {
        errmsg("option '--%s' needs a value", key);
        return -1;
    }
    *val = argv[++*i];
    return 0;
}

int parse_cmdline(int argc, char **argv, struct bench_config *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->g.formats = OUT_NORMAL;
    cl->g.eta = ETA_AUTO;
    cl->jobfiles = xcalloc((size_t)argc, sizeof(*cl->jobfiles));
    struct section *cur = section_new(cl, NULL, true); /* options before any --name */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 2;
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
            printf("%s\n", BENCH_VERSION);
            return 2;
        }
        if (a[0] != '-' || !a[1]) {
            if (!strcmp(a, "-")) {
                errmsg("reading a job file from stdin is not supported");
                return 1;
            }
            cl->jobfiles[cl->njobfiles++] = a;
            continue;
        }
        if (a[1] != '-') {
            errmsg("unrecognized option '%s' (options are spelled --name=value; see --help)", a);
            return 1;
        }
        char keybuf[128];
        const char *body = a + 2, *eq = strchr(body, '=');
        size_t klen = eq ? (size_t)(eq - body) : strlen(body);
        if (klen == 0 || klen >= sizeof(keybuf)) {
            errmsg("unrecognized option '%s'", a);
            return 1;
        }
        memcpy(keybuf, body, klen);
        keybuf[klen] = '\0';
        const char *key = keybuf, *eqval = eq ? eq + 1 : NULL, *val = NULL;

        /* process-wide options */
        const struct opt_def *d = opt_find(global_options, n_global_options, key);
        if (d) {
            char err[256];
            if (d->kind == OPT_PRESET && eqval) {
                errmsg("option '--%s' takes no value", key);
                return 1;
            }
            if (d->bare_ok)
                val = eqval; /* its value only after '=' */
            else if (d->kind != OPT_PRESET && take_value(argc, argv, &i, key, eqval, false, &val))
                return 1;
            if (opt_set(d, &cl->g, val, &cl->strings, err, sizeof(err))) {
                errmsg("invalid value '%s' for option '%s': %s", val ? val : "", key, err);
                return 1;
            }
            continue;
        }

        /* job options */
        d = find_job_option(key);
        if (!d) {
            const char *near = suggest_option(key, true);
            if (near)
                errmsg("unrecognized option '--%s'; did you mean --%s? (see --help)", key, near);
            else
                errmsg("unrecognized option '--%s' (see --help)", key);
            return 1;
        }
        if (take_value(argc, argv, &i, key, eqval, opt_is_flag(d), &val))
            return 1;
        if (val && strcmp(d->name, "name") != 0) {
            char err[256];
            val = expand_value(&cl->strings, val, false, err, sizeof(err));
            if (!val) {
                errmsg("invalid value for option '%s': %s", key, err);
                return 1;
            }
        }
        if (!strcmp(d->name, "name")) {
            if (!val || !*val) {
                errmsg("invalid value '' for option 'name': a job name must not be empty");
                return 1;
            }
            cl->saw_name = true;
            if (!strcmp(val, "global")) {
                cur = section_new(cl, "global", true);
                continue;
            }
            cur = section_new(cl, val, false);
            section_add(cl, cur, "name", val);
            continue;
        }
        if (!check_option(cl, "", key, val))
            return 1;
        section_add(cl, cur, d->name, val);
    }
    if (cl->g.cmdhelp)
        return print_cmdhelp(cl->g.cmdhelp);
    return 0;
}

unsigned build_jobdefs(struct bench_config *cl, struct jobdef **out)
{
    struct job_opts running;
    opts_fio_defaults(&running);
    unsigned n = 0;
    struct jobdef *defs = xcalloc(cl->nsections + 1, sizeof(*defs));
    for (unsigned i = 0; i < cl->nsections; i++) {
        const struct section *s = cl->sections[i];
        if (s->global) {
            apply_section(cl, &running, s);
            continue;
        }
        defs[n].o = running;
        defs[n].o.name = s->name;
        apply_section(cl, &defs[n].o, s);
        if (s->file_stonewall)
            defs[n].o.stonewall = true;
        defs[n].sec = s;
        n++;
    }
    if (n == 0 && cl->njobfiles == 0) {
        /* as fio: the message, then the usage, and exit status 1 */
        fprintf(stderr, "No job(s) defined\n\n");
        usage(stdout);
    } else if (n == 0) {
        errmsg("no jobs defined (a job file needs at least one section other than [global])");
    }
    *out = defs;
    return n;
}

/* Whether a verifying job would run on the null engine, which moves no
 * data: --ioengine=null, or no --ioengine and UWDF_BACKEND=null. */
static bool verify_engine_is_null(const struct job_opts *o)
{
    if (o->ioengine != ENGINE_DEFAULT)
        return o->ioengine == ENGINE_NULL;
    const char *env = getenv("UWDF_BACKEND");
    return env && !strcmp(env, "null");
}

int validate_jobdef(const struct jobdef *def, bool quiet)
{
    const struct job_opts *o = &def->o;
    char who[300] = "";
    if (def->sec)
        snprintf(who, sizeof(who), "%s: ", o->name);
    /* fio's $clientuid names a file after its client/server mode's client. */
    if (o->filename_format && strstr(o->filename_format, "$clientuid")) {
        errmsg("%s--filename_format: $clientuid is fio's client/server mode, which " BENCH_NAME
               " does not have", who);
        return -1;
    }
    /* fio's nbd engine: --uri names the export; here a --filename that is
     * an NBD URI does as well. */
    if (o->ioengine == ENGINE_NBD && !o->uri && !(o->filename && filename_is_nbd_uri(o->filename))) {
        errmsg("%s--ioengine=nbd needs --uri=nbd://... (or an NBD URI as --filename)", who);
        return -1;
    }
    if (o->uri && !filename_is_nbd_uri(o->uri)) {
        errmsg("%s--uri: '%s' is not an NBD URI (nbd://, nbds://, nbd+unix://)", who, o->uri);
        return -1;
    }
    if (o->uri && o->ioengine != ENGINE_NBD && o->ioengine != ENGINE_DEFAULT) {
        errmsg("%s--uri is for --ioengine=nbd", who);
        return -1;
    }
    /* fio's rbd engine: --pool and --rbdname name the image. */
    if (o->ioengine == ENGINE_RBD && (!o->pool || !o->rbdname || !*o->pool || !*o->rbdname)) {
        errmsg("%s--ioengine=rbd needs --pool= and --rbdname=", who);
        return -1;
    }
    if ((o->pool || o->rbdname || o->clientname) && o->ioengine != ENGINE_RBD) {
        errmsg("%s--pool, --rbdname and --clientname are for --ioengine=rbd", who);
        return -1;
    }
    if (o->ioengine == ENGINE_RBD && o->filename) {
        errmsg("%s--ioengine=rbd takes its image from --pool and --rbdname, not --filename", who);
        return -1;
    }
    if (o->verify && !opts_one_bs(o)) {
        errmsg("%s--verify needs one block size (not bsrange, bssplit or different read and write sizes)", who);
        return -1;
    }
    if (o->verify && opts_min_bs(o) < sizeof(struct verify_hdr)) {
        errmsg("%s--verify needs bs of at least %zu bytes", who, sizeof(struct verify_hdr));
        return -1;
    }
    if (o->verify && verify_engine_is_null(o)) {
        errmsg("%s--verify needs an engine that moves data (the null engine does not)", who);
        return -1;
    }
    if (opts_ba_differs(o) && o->verify) {
        errmsg("%s--verify cannot be used with blockalign other than the block size (overlapping I/Os)", who);
        return -1;
    }
    if (opts_ba_differs(o) && o->rdist.kind != RDIST_RANDOM) {
        errmsg("%sblockalign other than the block size is not supported with random_distribution=%s "
               "(only random)", who, o->rdist.kind == RDIST_ZIPF ? "zipf" : o->rdist.kind == RDIST_PARETO ? "pareto"
               : o->rdist.kind == RDIST_NORMAL ? "normal" : o->rdist.kind == RDIST_ZONED ? "zoned" : "zoned_abs");
        return -1;
    }
    if (o->verify && rw_trims(o->rw)) {
        errmsg("%s--verify cannot be used with rw=%s (trim workloads cannot be verified)", who,
               rw_names[o->rw]);
        return -1;
    }
    if (o->api == API_FLT) {
        const char *bad = o->verify ? "--verify"
                          : rw_trims(o->rw) ? (o->rw == RW_TRIM ? "--rw=trim"
                                               : o->rw == RW_RANDTRIM ? "--rw=randtrim" : "--rw=trimwrite")
                          : o->fsync_blocks ? "--fsync"
                          : o->fdatasync_blocks ? "--fdatasync"
                          : o->sync != SYNC_NONE ? "--sync"
                          : o->request_timeout_ns ? "--request_timeout" : NULL;
        if (bad) {
            errmsg("%s%s is not supported with --api=flt (Filter Manager callback data: reads and "
                   "writes only, no verify, flushes, write-through or timeouts)", who, bad);
            return -1;
        }
    }
    for (int d = 0; d < 3 && o->direct; d++) {
        if (!rw_does(o->rw, d))
            continue;
        uint32_t bad = o->min_bs[d] % 512 ? o->min_bs[d] : o->max_bs[d] % 512 ? o->max_bs[d] : 0;
        for (unsigned i = 0; i < o->nsplit[d] && !bad; i++)
            if (o->split[d][i].bs % 512)
                bad = o->split[d][i].bs;
        if (bad) {
            errmsg("%swith direct=1, bs (%" PRIu32 ") must be a multiple of 512", who, bad);
            return -1;
        }
        if (opts_ba(o, d) % 512) {
            errmsg("%swith direct=1, blockalign (%" PRIu32 ") must be a multiple of 512", who, opts_ba(o, d));
            return -1;
        }
    }
    if ((o->fixedbufs || o->registerfiles) && o->api == API_FLT)
        errmsg("%s: warning: fixedbufs/registerfiles do not apply to --api=flt (the Filter "
               "Manager owns that target); ignored", o->name);
    if (!quiet && o->batch_set && o->api != API_ASYNC)
        errmsg("%snote: iodepth_batch_* apply to --api=async (the engines' batching); ignored with --api=%s",
               who, api_names[o->api]);
    if (!quiet && o->api == API_SYNC && o->iodepth > 1)
        errmsg("%snote: --api=sync runs one synchronous request per thread; iodepth=%u is not "
               "used (use numjobs for parallelism)", who, o->iodepth);
    if (!quiet && !rw_writes(o->rw) && (o->fsync_blocks || o->fdatasync_blocks || o->sync != SYNC_NONE))
        errmsg("%snote: rw=%s issues no writes: %s has no effect", who, rw_names[o->rw],
               o->sync != SYNC_NONE ? "sync" : o->fsync_blocks ? "fsync" : "fdatasync");
    if (!quiet && opts_ba_differs(o) && !o->norandommap) /* fio's words; then norandommap */
        errmsg("%snote: any use of blockalign= turns off randommap", who);
    if (!quiet && o->time_based && !o->runtime_ns)
        errmsg("%snote: time_based without runtime runs until interrupted", who);
    return 0;
}

unsigned read_jobdefs(struct bench_config *cfg, struct jobdef **defs)
{
    for (unsigned i = 0; i < cfg->njobfiles; i++)
        if (parse_job_file(cfg, cfg->jobfiles[i]))
            return 0;
    unsigned n = build_jobdefs(cfg, defs);
    bool quiet = !(cfg->g.formats & OUT_NORMAL);
    for (unsigned i = 0; i < n; i++)
        if (validate_jobdef(&(*defs)[i], quiet))
            return 0;
    return n;
}
