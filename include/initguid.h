/* initguid.h: from here on, DEFINE_GUID in this translation unit defines
 * the GUID (a weak, one-per-program definition; see guiddef.h) instead of
 * declaring it. */
#ifndef INITGUID
#define INITGUID
#endif
#include "guiddef.h"
