/* The Filter Manager's callback data (lib/flt.c): the state of a block's
 * asynchronous I/O. Not installed. */
#ifndef UWDF_FLT_H
#define UWDF_FLT_H

#include "runtime.h"

/* Where a callback data block's asynchronous I/O is (its state word). It
 * changes only through the transitions below; the DDIs that reuse, free or
 * perform a block check it first (FltCallbackDataReuse).
 *
 *          start_io                 call_back
 *   IDLE ------------> IN_FLIGHT ---------------> CALLBACK_RUNNING
 *    ^                     ^                          |   |
 *    |                     +------- start_io ---------+   |
 *    +---------------- callback_returned -----------------+
 *
 *   transition         from                to
 *   start_io           IDLE                IN_FLIGHT  (FltPerformAsynchronousIo)
 *                      CALLBACK_RUNNING    IN_FLIGHT  (the same, from its callback)
 *   call_back          IN_FLIGHT           CALLBACK_RUNNING
 *   callback_returned  CALLBACK_RUNNING    IDLE       (the outermost callback returned)
 *                      IN_FLIGHT           IN_FLIGHT  (it performed I/O again)
 */
enum uwdf_flt_data_state {
    UWDF_FLT_DATA_IDLE = 0,
    UWDF_FLT_DATA_IN_FLIGHT,        /* performed asynchronously, not called back yet */
    UWDF_FLT_DATA_CALLBACK_RUNNING, /* its completion callback runs */
};
extern const struct uwdf_state_machine uwdf_flt_data_machine;
#define UWDF_FLT_DATA(s) UWDF_STATE_BIT(UWDF_FLT_DATA_##s)

/* state: the block's state word; data: the block, for the report. */
static inline void uwdf_flt_data_change(atomic_int *state, uint32_t from, unsigned to, const char *transition,
                                        const void *data)
{
    unsigned old = (unsigned)atomic_exchange(state, (int)to);
    if (UWDF_UNLIKELY(!uwdf_state_in(from, old)))
        uwdf_state_illegal(&uwdf_flt_data_machine, transition, data, old, to);
}
static inline void uwdf_flt_data_start_io(atomic_int *state, const void *data)
{
    uwdf_flt_data_change(state, UWDF_FLT_DATA(IDLE) | UWDF_FLT_DATA(CALLBACK_RUNNING), UWDF_FLT_DATA_IN_FLIGHT,
                         "start_io", data);
}
static inline void uwdf_flt_data_call_back(atomic_int *state, const void *data)
{
    uwdf_flt_data_change(state, UWDF_FLT_DATA(IN_FLIGHT), UWDF_FLT_DATA_CALLBACK_RUNNING, "call_back", data);
}
static inline void uwdf_flt_data_callback_returned(atomic_int *state, const void *data)
{
    int old = UWDF_FLT_DATA_CALLBACK_RUNNING;
    if (!atomic_compare_exchange_strong(state, &old, UWDF_FLT_DATA_IDLE) &&
        UWDF_UNLIKELY(!uwdf_state_in(UWDF_FLT_DATA(IN_FLIGHT), (unsigned)old)))
        uwdf_state_illegal(&uwdf_flt_data_machine, "callback_returned", data, (unsigned)old, UWDF_FLT_DATA_IDLE);
}

#endif
