/* The engines (lib/engine.c). Private to the framework; backends see only
 * backends/backend.h. Not installed. */
#ifndef UWDF_ENGINE_H
#define UWDF_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../backends/backend.h"

struct uwdf_object;

/* ---- engine (one per open target; lib/engine.c) ---- */
struct uwdf_engine *uwdf_engine_create(const struct uwdf_backend_ops *ops, unsigned depth,
                                       int *err);
void uwdf_engine_destroy(struct uwdf_engine *e);
/* Hand an io to the engine. On the engine's own thread it goes straight
 * into the backend (staged, submitted with the rest of the batch). */
void uwdf_engine_submit(struct uwdf_engine *e, struct uwdf_io *io);
/* Deliver a completion that did not come from the kernel (res preset). */
void uwdf_engine_post_completion(struct uwdf_engine *e, struct uwdf_io *io);
/* Ask the engine to cancel an in-flight io. The caller holds a completion
 * reference; the engine calls uwdf_request_cancel_done(io) after the attempt. */
void uwdf_engine_cancel(struct uwdf_engine *e, struct uwdf_io *io);
extern __thread struct uwdf_engine *uwdf_tls_engine; /* the engine whose thread this is */
static inline bool uwdf_engine_on_own_thread(const struct uwdf_engine *e)
{
    return uwdf_tls_engine == e;
}
const char *uwdf_engine_name(const struct uwdf_engine *e);
unsigned uwdf_engine_caps(const struct uwdf_engine *e);
const struct uwdf_backend_ops *uwdf_backend_select(int *err);
/* Registration with the kernel (lib/fixedio.c's DDIs), run on the engine
 * thread. Buffers: the engine keeps the n objects referenced until it is
 * destroyed (the kernel holds their pages as long). -EOPNOTSUPP: the engine
 * has no registration. */
int uwdf_engine_register_buffers(struct uwdf_engine *e, const struct iovec *iov,
                                 struct uwdf_object *const *owners, unsigned n);
int uwdf_engine_register_file(struct uwdf_engine *e, int fd);
/* Ops handed to the backend so far, and the backend's registration stats. */
void uwdf_engine_stats(struct uwdf_engine *e, uint64_t *ios, struct uwdf_backend_stats *be);

/* Called by the engine on its thread. */
void uwdf_request_io_done(struct uwdf_io *io);
void uwdf_request_cancel_done(struct uwdf_io *io, int cancel_result);

#endif
