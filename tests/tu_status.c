/* Status names for the test library's assertions (ck_assert_status). */
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>

/* Every STATUS_ name in include/ntstatus.h (tu_status_names.h is made from
 * it at build time), for the codes the library's own table lacks. */
static const struct {
    NTSTATUS status;
    const char *name;
} header_names[] = {
#define TU_STATUS(s) { s, #s },
#include "tu_status_names.h"
#undef TU_STATUS
};

const char *tu_status_name(NTSTATUS status)
{
    /* The library's name first: its log lines say the same. */
    const char *name = UwdfNtStatusName(status);
    if (name)
        return name;
    for (size_t i = 0; i < sizeof(header_names) / sizeof(header_names[0]); i++)
        if (header_names[i].status == status)
            return header_names[i].name;
    return "(no name)";
}

const char *tu_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}
