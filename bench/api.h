/* The --api modes (fio's ioengines), one ops table each: api-async.c
 * (WdfRequestSend with a completion routine), api-sync.c (synchronous
 * sends), api-flt.c (Filter Manager callback data), api-stack.c (through a
 * filter device's queue). */
#ifndef UWDF_BENCH_API_H
#define UWDF_BENCH_API_H

#include "job.h"

extern const struct bench_api api_async;
extern const struct bench_api api_sync;
extern const struct bench_api api_flt;
extern const struct bench_api api_stack;

/* The WDF request pieces of api-async.c that sync and stack share. */
NTSTATUS slot_create_request(struct slot *s, WDFIOTARGET t);
NTSTATUS slot_renew_request(struct slot *s, WDFIOTARGET t);
NTSTATUS slot_format(struct slot *s, WDFIOTARGET t);
int renew_slot_requests(struct job *j);
int wdf_setup_slot(struct slot *s);
void async_issue(struct slot *s, struct shard *sh, uint64_t t0);
int async_setup(struct job *j);

/* Makes a device over the file at path (--api=stack); the target to open
 * is then the device's name, and *lower the device's own target. */
typedef NTSTATUS device_over_fn(struct job *j, const char *path, bool write, bool direct,
                                const char **name, WDFIOTARGET *lower);
/* A WDF target on each file of the job, or with over, on a device made
 * over each file; the job's engine is the one below. */
int wdf_open_targets(struct job *j, device_over_fn *over);

#endif
