/* The library's release, as configure set it (include/uwdfversion.h). */
#include "runtime.h"

VOID UwdfGetVersion(PULONG Major, PULONG Minor, PULONG Patch)
{
    if (Major)
        *Major = UWDF_VERSION_MAJOR;
    if (Minor)
        *Minor = UWDF_VERSION_MINOR;
    if (Patch)
        *Patch = UWDF_VERSION_PATCH;
}

PCSTR UwdfGetVersionString(void)
{
    return UWDF_VERSION_STRING;
}
