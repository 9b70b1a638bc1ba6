/* The nbdkit plugin's in-process device stack (nbdkit/stack.c): the
 * driver= ... stack= parameters, the drivers loaded and the device made
 * to arrive over path=, and its orderly removal at unload. */
#ifndef UWDF_NBDKIT_STACK_H
#define UWDF_NBDKIT_STACK_H

#include <stdbool.h>

#include <uwdf.h>

/* A stack parameter taken: 1; not one: 0; a bad value: -1 (said). */
int plugin_stack_config(const char *key, const char *value);
/* The parameters agree (-1, said, when not). */
int plugin_stack_config_complete(void);
/* driver= was given: the plugin serves the stack, not path= itself. */
bool plugin_stack_wanted(void);
/* Loads the drivers and makes the device arrive over hardware (NULL:
 * none); *name (free it) is what the plugin opens: stack= as given, or
 * the arrived device's interface link. A failure is said and unwound. */
NTSTATUS plugin_stack_arrive(const char *hardware, char **name);
/* The engine of the hardware's target at the bottom of the stack, or NULL. */
const char *plugin_stack_engine(void);
/* Orderly removal (surprise removal if vetoed), then the drivers unloaded
 * in the reverse order of their loading. Nothing arrived: nothing done. */
void plugin_stack_remove(void);
/* Frees the parameters. */
void plugin_stack_free(void);

#endif
