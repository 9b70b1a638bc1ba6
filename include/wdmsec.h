/* Device-object security (wdmsec.h). The port keeps no security
 * descriptors: the strings are accepted where WDF takes one
 * (WdfControlDeviceInitAllocate, WdfDeviceInitAssignSDDLString) and not
 * enforced. Their text is Windows'. */
#ifndef UWDF_WDMSEC_H
#define UWDF_WDMSEC_H

#include "wdm.h"

UWDF_BEGIN_DECLS

/* "D:P": kernel only */
extern const UNICODE_STRING SDDL_DEVOBJ_KERNEL_ONLY;
#define SDDL_DEVOBJ_INF_SUPPLIED SDDL_DEVOBJ_KERNEL_ONLY
/* "D:P(A;;GA;;;SY)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL;
/* "D:P(A;;GA;;;SY)(A;;GA;;;BA)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_ALL;
/* "D:P(A;;GA;;;SY)(A;;GRGX;;;BA)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RX;
/* "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GR;;;WD)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_R;
/* "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GR;;;WD)(A;;GR;;;RC)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_R_RES_R;
/* "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGW;;;WD)(A;;GR;;;RC)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RW_RES_R;
/* "D:P(A;;GA;;;SY)(A;;GRGWGX;;;BA)(A;;GRGWGX;;;WD)(A;;GRGWGX;;;RC)" */
extern const UNICODE_STRING SDDL_DEVOBJ_SYS_ALL_ADM_RWX_WORLD_RWX_RES_RWX;

/* wdmsec.lib's RtlInitUnicodeStringEx: the same as the wdm.h routine. */
NTSTATUS WdmlibRtlInitUnicodeStringEx(PUNICODE_STRING DestinationString, PCWSTR SourceString);

UWDF_END_DECLS
#endif
