/* Introspection helpers for the io_uring engine (diagnostics and tests). */
#ifndef UWDF_BACKEND_IO_URING_H
#define UWDF_BACKEND_IO_URING_H

struct uwdf_engine;

/* The IORING_SETUP_* flags the kernel accepted for this engine's ring,
 * besides CQSIZE, as text ("SINGLE_ISSUER|DEFER_TASKRUN|..." or "none").
 * NULL if e is not an open io_uring engine. Engine thread only. */
const char *uwdf_io_uring_setup_flags_desc(const struct uwdf_engine *e);

/* The same as a raw IORING_SETUP_* mask (0 if e is not an open io_uring
 * engine). Engine thread only. */
unsigned uwdf_io_uring_setup_flags(const struct uwdf_engine *e);

#endif
