/* String objects (wdfstring.h). Default parent: the driver. */
#ifndef UWDF_WDFSTRING_H
#define UWDF_WDFSTRING_H

#include "wdfobject.h"

UWDF_BEGIN_DECLS

/* PASSIVE_LEVEL (else STATUS_INVALID_DEVICE_REQUEST). Copies UnicodeString
 * (NULL: an empty string). STATUS_INVALID_PARAMETER for a malformed
 * UNICODE_STRING (odd lengths, Length > MaximumLength, NULL Buffer with a
 * length), STATUS_INSUFFICIENT_RESOURCES, attribute errors as for
 * WdfCollectionCreate. */
NTSTATUS WdfStringCreate(PCUNICODE_STRING UnicodeString, PWDF_OBJECT_ATTRIBUTES StringAttributes,
                         WDFSTRING *String);
/* PASSIVE_LEVEL. Describes the object's own buffer (not a copy), valid
 * until the string changes or is deleted; the buffer is NUL-terminated. */
VOID WdfStringGetUnicodeString(WDFSTRING String, PUNICODE_STRING UnicodeString);

UWDF_END_DECLS
#endif
