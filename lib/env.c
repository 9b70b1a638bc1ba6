/* The environment switches (docs/porting.md "Environment variables"), read
 * here and nowhere else, through secure_getenv: in a process that runs with
 * more privilege than its caller (set-user-ID, set-group-ID, file
 * capabilities: AT_SECURE) every one of them is ignored, so whoever starts
 * such a program cannot fail its allocations, stall its I/O, pick its engine
 * or turn misuse into a bug check (an abort) from the environment. */
#define _GNU_SOURCE
#include "runtime.h"

#include <stdlib.h>
#include <string.h>

static const char *const env_names[UWDF_ENV_COUNT] = {
    [UWDF_ENV_BACKEND] = "UWDF_BACKEND",
    [UWDF_ENV_VERIFIER] = "UWDF_VERIFIER",
    [UWDF_ENV_FAULT_ALLOC] = "UWDF_FAULT_ALLOC",
    [UWDF_ENV_FAULT_STALL] = "UWDF_FAULT_STALL",
    [UWDF_ENV_FP_FAIL] = "UWDF_FP_FAIL",
    [UWDF_ENV_BIASED_LOCKS] = "UWDF_BIASED_LOCKS",
    [UWDF_ENV_DEBUG_PRINT] = "UWDF_DEBUG_PRINT",
    [UWDF_ENV_ENGINES] = "UWDF_ENGINES",
    [UWDF_ENV_WINDOWS_ROOT] = "UWDF_WINDOWS_ROOT",
    [UWDF_ENV_NBD_CONNECT_TIMEOUT] = "UWDF_NBD_CONNECT_TIMEOUT",
    [UWDF_ENV_NBD_RECONNECT] = "UWDF_NBD_RECONNECT",
    [UWDF_ENV_SUBMIT_BATCH] = "UWDF_SUBMIT_BATCH",
};

const char *uwdf_env_name(enum uwdf_env_switch which)
{
    return env_names[which];
}

const char *uwdf_env(enum uwdf_env_switch which)
{
    return secure_getenv(env_names[which]);
}

const char *uwdf_env_named(const char *name)
{
    for (int i = 0; i < UWDF_ENV_COUNT; i++)
        if (strcmp(env_names[i], name) == 0)
            return uwdf_env((enum uwdf_env_switch)i);
    return NULL;
}
