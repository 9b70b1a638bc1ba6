/* uwdf-bench: a fio-style benchmark for the uwdf request / I/O-target model.
 *
 * It drives files and block devices through the public WDF API only
 * (#include <uwdf.h>): asynchronous requests formatted with
 * WdfIoTargetFormatRequestForRead/Write and sent with WdfRequestSend, whose
 * completion routine reuses (WdfRequestReuse) and resends them, or
 * synchronous WdfIoTargetSendRead/WriteSynchronously calls, or (--api=flt,
 * #include <fltkernel.h>) Filter Manager callback data performed with
 * FltPerformAsynchronousIo and reused (FltReuseCallbackData) or freed and
 * allocated again from its completion callback. Options, job
 * files and the normal / terse / JSON / JSON+ reports follow fio, so fio
 * users can bring their command lines and job files. `uwdf-bench --help`
 * documents the options and where uwdf differs from fio.
 *
 * This file is main: the phases in order, each in a file of its own, as
 * fio splits itself. The front end (init.c, jobfile.c, options.c, parse.c)
 * reads the command line and job files into job definitions; setup.c makes
 * the jobs, filesetup.c their files, and the driver, device and targets
 * through the --api mode's ops (api-*.c); run.c runs a thread per job, whose
 * I/O path is io.c; eta.c monitors them; stat.c and report-*.c report.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filesetup.h"
#include "init.h"
#include "interrupt.h"
#include "log.h"
#include "report.h"
#include "run.h"
#include "setup.h"
#include "stat.h"
#include "verify.h"

int main(int argc, char **argv)
{
    int rc = 1;
    struct bench_config cfg;
    struct bench_run run = { .cfg = &cfg, .strings = &cfg.strings, .layout.strings = &cfg.strings };
    struct jobdef *defs = NULL;
    FILE *out = stdout;

    crc32c_init();
    int pr = parse_cmdline(argc, argv, &cfg);
    if (pr) {
        rc = pr == 2 ? 0 : 1; /* 2: --help, --version or --cmdhelp */
        goto done_args;
    }
    unsigned ndefs = read_jobdefs(&cfg, &defs);
    if (!ndefs)
        goto done_args;
    if (cfg.g.parse_only) {
        rc = 0;
        goto done_args;
    }
    jobs_create(&run, defs, ndefs);

    /* Every file is checked before the report file is created: a job that
     * cannot run leaves nothing behind. */
    for (unsigned i = 0; i < run.njobs; i++)
        if (job_resolve_files(&run.jobs[i]))
            goto done_files;
    if (cfg.g.output) {
        out = fopen(cfg.g.output, "w");
        if (!out) {
            errmsg("cannot open output file '%s': %s", cfg.g.output, strerror(errno));
            out = stdout;
            goto done_jobs;
        }
    }
    run.out = out;
    FILE *info = (cfg.g.formats & OUT_NORMAL) ? out : NULL;
    interrupt_catch();
    if (layout_all(&run.layout, info))
        goto done_files;

    if (run_setup(&run))
        goto done_framework;
    if (info)
        print_header(out, &run, defs, ndefs);
    struct cpu_use cpu;
    run_jobs(&run, &cpu);
    print_reports(out, &run, &cpu);
    fflush(out);
    rc = run_failed(&run) ? 1 : 0;
    for (unsigned i = 0; i < run.njobs; i++)
        if (!logs_close(&run.jobs[i]))
            rc = 1;

done_framework:
    run_teardown(&run);
done_files:
    remove_generated_files();
done_jobs:
    if (out != stdout && fclose(out) != 0) {
        errmsg("writing '%s' failed: %s", cfg.g.output, strerror(errno));
        rc = 1;
    }
    jobs_free(&run);
done_args:
    free(defs);
    config_free(&cfg);
    return rc;
}
