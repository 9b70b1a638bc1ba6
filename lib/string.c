/* WDFSTRING: a counted Unicode string owned by a framework object, and the
 * framework's version string (WdfDriverRetrieveVersionString). */
#include "ntrt.h"

#include <stdio.h>

struct uwdf_string {
    struct uwdf_object obj;
    pthread_mutex_t lock;
    UNICODE_STRING us; /* Buffer owned, NUL-terminated */
};

static struct uwdf_string *string_lookup(WDFSTRING handle, const char *ddi)
{
    return (struct uwdf_string *)uwdf_object_lookup(handle, UWDF_OBJ_STRING, ddi);
}

static void string_destroy(struct uwdf_object *obj)
{
    struct uwdf_string *s = (struct uwdf_string *)obj;
    uwdf_free(s->us.Buffer);
    pthread_mutex_destroy(&s->lock);
}

static const struct uwdf_object_ops string_ops = { .destroy = string_destroy };

NTSTATUS uwdf_string_assign(WDFSTRING string, const WCHAR *text, size_t len, const char *ddi)
{
    struct uwdf_string *s = string_lookup(string, ddi);
    if (!s)
        return STATUS_INVALID_HANDLE;
    if ((len + 1) * sizeof(WCHAR) > MAXUSHORT)
        return STATUS_INVALID_PARAMETER;
    WCHAR *copy = uwdf_alloc((len + 1) * sizeof(WCHAR));
    if (!copy)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (len)
        memcpy(copy, text, len * sizeof(WCHAR));
    copy[len] = UNICODE_NULL;
    pthread_mutex_lock(&s->lock);
    WCHAR *old = s->us.Buffer;
    s->us.Buffer = copy;
    s->us.Length = (USHORT)(len * sizeof(WCHAR));
    s->us.MaximumLength = (USHORT)((len + 1) * sizeof(WCHAR));
    pthread_mutex_unlock(&s->lock);
    uwdf_free(old);
    return STATUS_SUCCESS;
}

NTSTATUS WdfStringCreate(PCUNICODE_STRING UnicodeString, PWDF_OBJECT_ATTRIBUTES StringAttributes,
                         WDFSTRING *String)
{
    struct uwdf_object *obj;
    UWDF_REQUIRE_PARAM(String, "WdfStringCreate", STATUS_INVALID_PARAMETER);
    *String = NULL;
    if (!uwdf_irql_check_passive("WdfStringCreate"))
        return STATUS_INVALID_DEVICE_REQUEST;
    if (UnicodeString && !NT_SUCCESS(RtlUnicodeStringValidate(UnicodeString)))
        return STATUS_INVALID_PARAMETER;
    NTSTATUS status = uwdf_attributes_validate_plain(StringAttributes, false);
    if (!NT_SUCCESS(status))
        return status;
    status = uwdf_object_create(sizeof(struct uwdf_string), UWDF_OBJ_STRING, &string_ops, StringAttributes,
                                uwdf_driver_default_parent(), 0, &obj);
    if (!NT_SUCCESS(status))
        return status;
    pthread_mutex_init(&((struct uwdf_string *)obj)->lock, NULL);
    if (UnicodeString) {
        status = uwdf_string_assign((WDFSTRING)obj->handle, UnicodeString->Buffer,
                                    UnicodeString->Length / sizeof(WCHAR), "WdfStringCreate");
        if (!NT_SUCCESS(status)) {
            uwdf_object_delete_failed_create(obj);
            return status;
        }
    }
    *String = (WDFSTRING)obj->handle;
    return STATUS_SUCCESS;
}

VOID WdfStringGetUnicodeString(WDFSTRING String, PUNICODE_STRING UnicodeString)
{
    struct uwdf_string *s = string_lookup(String, "WdfStringGetUnicodeString");
    UWDF_REQUIRE_PARAM(UnicodeString, "WdfStringGetUnicodeString", );
    if (!s)
        return;
    uwdf_irql_check_passive("WdfStringGetUnicodeString");
    pthread_mutex_lock(&s->lock);
    *UnicodeString = s->us;
    pthread_mutex_unlock(&s->lock);
}

/* ---- the framework's version ---- */

NTSTATUS WdfDriverRetrieveVersionString(WDFDRIVER Driver, WDFSTRING String)
{
    if (!uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "WdfDriverRetrieveVersionString"))
        return STATUS_INVALID_HANDLE;
    if (!string_lookup(String, "WdfDriverRetrieveVersionString"))
        return STATUS_INVALID_HANDLE;
    if (!uwdf_irql_check_passive("WdfDriverRetrieveVersionString"))
        return STATUS_INVALID_DEVICE_REQUEST;
    char text[128];
    WCHAR wide[128];
    int n = snprintf(text, sizeof(text), "Kernel Mode Driver Framework version %d.%d.0 (uwdf %s)%s",
                     UWDF_KMDF_MAJOR_VERSION, UWDF_KMDF_MINOR_VERSION, PACKAGE_VERSION,
                     uwdf_verifier ? " (verifier on)" : "");
    for (int i = 0; i <= n; i++)
        wide[i] = (WCHAR)(unsigned char)text[i];
    return uwdf_string_assign(String, wide, (size_t)n, "WdfDriverRetrieveVersionString");
}

BOOLEAN WdfDriverIsVersionAvailable(WDFDRIVER Driver, PWDF_DRIVER_VERSION_AVAILABLE_PARAMS VersionAvailableParams)
{
    if (!uwdf_object_lookup(Driver, UWDF_OBJ_DRIVER, "WdfDriverIsVersionAvailable"))
        return FALSE;
    UWDF_REQUIRE_PARAM(VersionAvailableParams, "WdfDriverIsVersionAvailable", FALSE);
    if (!uwdf_irql_check_passive("WdfDriverIsVersionAvailable"))
        return FALSE;
    if (VersionAvailableParams->Size != sizeof(WDF_DRIVER_VERSION_AVAILABLE_PARAMS))
        return FALSE;
    return VersionAvailableParams->MajorVersion == UWDF_KMDF_MAJOR_VERSION &&
           VersionAvailableParams->MinorVersion <= UWDF_KMDF_MINOR_VERSION;
}
