/* GUIDs (guiddef.h). The GUID type is defined once; DEFINE_GUID is defined
 * again at every inclusion, as on Windows, so that it declares the GUID
 * unless INITGUID is defined (directly, or by including initguid.h) at that
 * point, and then defines it.
 *
 * The defining form is a weak definition, GCC's counterpart of MSVC's
 * __declspec(selectany): any number of translation units may define the
 * same GUID and the linker keeps one, so &GUID_X is one address in a
 * program (and in a shared object). Two copies can exist only across a
 * shared-library boundary that binds its own symbols locally (libuwdf keeps
 * its own copies of the wdmguid.h GUIDs), so compare GUIDs with IsEqualGUID,
 * as Windows code does, not by address. */
#ifndef UWDF_GUIDDEF_H
#define UWDF_GUIDDEF_H

#include <stdint.h>
#include <string.h>

#include "uwdfapi.h"

UWDF_BEGIN_DECLS

#ifndef GUID_DEFINED
#define GUID_DEFINED
typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;
#endif
typedef GUID *LPGUID;
typedef const GUID *LPCGUID;
typedef GUID IID, CLSID;
typedef IID *LPIID;
typedef CLSID *LPCLSID;
#ifdef __cplusplus
#define REFGUID const GUID &
#define REFIID const IID &
#else
#define REFGUID const GUID *
#define REFIID const IID *
#endif

#ifdef __cplusplus
inline int IsEqualGUID(REFGUID a, REFGUID b)
{
    return memcmp(&a, &b, sizeof(GUID)) == 0;
}
#define InlineIsEqualGUID(a, b) IsEqualGUID(a, b)
#else
#define IsEqualGUID(a, b) (memcmp((a), (b), sizeof(GUID)) == 0)
#define InlineIsEqualGUID(a, b) IsEqualGUID(a, b)
#endif
#define IsEqualIID(a, b) IsEqualGUID(a, b)

UWDF_END_DECLS
#endif /* UWDF_GUIDDEF_H */

/* Outside the include guard: re-evaluated at each inclusion. */
#ifdef DEFINE_GUID
#undef DEFINE_GUID
#endif
#ifdef __cplusplus
#define UWDF_GUID_DECL extern "C"
#define UWDF_GUID_DEF extern "C"
#else
#define UWDF_GUID_DECL extern
#define UWDF_GUID_DEF
#endif
#ifdef INITGUID
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    UWDF_GUID_DEF __attribute__((weak)) const GUID name = { l, w1, w2, { b1, b2, b3, b4, b5, b6, b7, b8 } }
#else
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) UWDF_GUID_DECL const GUID name
#endif
