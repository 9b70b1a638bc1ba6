/* Rtl counted strings: initialization, copy and append, comparison, case
 * mapping, UTF-16-less Unicode (WCHAR is a UTF-32 wchar_t) <-> UTF-8
 * ("ANSI") conversion, integers and GUIDs as text, and RtlCompareMemory.
 * Strings the routines allocate come from the pool with RTL_STRING_TAG and
 * go back with RtlFreeUnicodeString / RtlFreeAnsiString. */
#include "ntrt.h"

#include <stdio.h>

#define RTL_STRING_TAG 'grtS'
#define REPLACEMENT_CHAR 0xFFFD

/* ---- UTF-8 ---- */

size_t uwdf_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = REPLACEMENT_CHAR;
        return 1;
    }
    if (len > n) {
        *cp = REPLACEMENT_CHAR;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = REPLACEMENT_CHAR;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms and surrogates are not characters. */
    *cp = v >= min && uwdf_unicode_valid(v) ? v : REPLACEMENT_CHAR;
    return *cp == REPLACEMENT_CHAR && v != REPLACEMENT_CHAR ? 1 : len;
}

size_t uwdf_utf8_encode(uint32_t cp, char *out)
{
    if (!uwdf_unicode_valid(cp))
        cp = REPLACEMENT_CHAR;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static size_t utf8_size_of_wide(const WCHAR *s, size_t chars)
{
    size_t n = 0;
    char tmp[4];
    for (size_t i = 0; i < chars; i++)
        n += uwdf_utf8_encode((uint32_t)s[i], tmp);
    return n;
}

static size_t wide_count_of_utf8(const char *s, size_t bytes)
{
    size_t n = 0;
    uint32_t cp;
    for (size_t i = 0; i < bytes; n++)
        i += uwdf_utf8_decode((const unsigned char *)s + i, bytes - i, &cp);
    return n;
}

/* ---- initialization ---- */

/* The longest whole-character length a counted string of max bytes can
 * describe with room for a terminator of unit bytes. */
static size_t counted_max(size_t unit)
{
    return (0xFFFF - unit) / unit * unit;
}

VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    if (!SourceString) {
        DestinationString->Length = DestinationString->MaximumLength = 0;
        DestinationString->Buffer = NULL;
        return;
    }
    size_t bytes = wcslen(SourceString) * sizeof(WCHAR);
    /* UNICODE_STRING lengths are USHORT; clamp like the kernel does, to whole
     * characters that leave room for the terminator (wchar_t is 4 bytes). */
    if (bytes > counted_max(sizeof(WCHAR)))
        bytes = counted_max(sizeof(WCHAR));
    DestinationString->Length = (USHORT)bytes;
    DestinationString->MaximumLength = (USHORT)(bytes + sizeof(WCHAR));
    DestinationString->Buffer = (PWCH)SourceString;
}

NTSTATUS RtlInitUnicodeStringEx(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    if (SourceString && wcslen(SourceString) * sizeof(WCHAR) > counted_max(sizeof(WCHAR)))
        return STATUS_NAME_TOO_LONG;
    RtlInitUnicodeString(DestinationString, SourceString);
    return STATUS_SUCCESS;
}

NTSTATUS WdmlibRtlInitUnicodeStringEx(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    return RtlInitUnicodeStringEx(DestinationString, SourceString);
}

VOID RtlInitString(PSTRING DestinationString, PCSZ SourceString)
{
    if (!SourceString) {
        DestinationString->Length = DestinationString->MaximumLength = 0;
        DestinationString->Buffer = NULL;
        return;
    }
    size_t len = strlen(SourceString);
    if (len > counted_max(1))
        len = counted_max(1);
    DestinationString->Length = (USHORT)len;
    DestinationString->MaximumLength = (USHORT)(len + 1);
    DestinationString->Buffer = (PCHAR)SourceString;
}

VOID RtlInitAnsiString(PANSI_STRING DestinationString, PCSZ SourceString)
{
    RtlInitString(DestinationString, SourceString);
}

NTSTATUS RtlInitAnsiStringEx(PANSI_STRING DestinationString, PCSZ SourceString)
{
    if (SourceString && strlen(SourceString) > counted_max(1))
        return STATUS_NAME_TOO_LONG;
    RtlInitString(DestinationString, SourceString);
    return STATUS_SUCCESS;
}

/* ---- copy and append ---- */

VOID RtlCopyUnicodeString(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString)
{
    if (!SourceString) {
        DestinationString->Length = 0;
        return;
    }
    USHORT n = SourceString->Length < DestinationString->MaximumLength ? SourceString->Length
                                                                       : DestinationString->MaximumLength;
    n -= n % sizeof(WCHAR);
    memmove(DestinationString->Buffer, SourceString->Buffer, n);
    DestinationString->Length = n;
    if (n + sizeof(WCHAR) <= DestinationString->MaximumLength)
        DestinationString->Buffer[n / sizeof(WCHAR)] = UNICODE_NULL;
}

VOID RtlCopyString(PSTRING DestinationString, const STRING *SourceString)
{
    if (!SourceString) {
        DestinationString->Length = 0;
        return;
    }
    USHORT n = SourceString->Length < DestinationString->MaximumLength ? SourceString->Length
                                                                       : DestinationString->MaximumLength;
    memmove(DestinationString->Buffer, SourceString->Buffer, n);
    DestinationString->Length = n;
    if (n < DestinationString->MaximumLength)
        DestinationString->Buffer[n] = ANSI_NULL;
}

static NTSTATUS unicode_append(PUNICODE_STRING dst, const WCHAR *src, size_t bytes)
{
    if (bytes == 0)
        return STATUS_SUCCESS;
    if ((size_t)dst->Length + bytes > dst->MaximumLength)
        return STATUS_BUFFER_TOO_SMALL;
    memmove((char *)dst->Buffer + dst->Length, src, bytes);
    dst->Length = (USHORT)(dst->Length + bytes);
    if ((size_t)dst->Length + sizeof(WCHAR) <= dst->MaximumLength)
        dst->Buffer[dst->Length / sizeof(WCHAR)] = UNICODE_NULL;
    return STATUS_SUCCESS;
}

NTSTATUS RtlAppendUnicodeToString(PUNICODE_STRING Destination, PCWSTR Source)
{
    if (!Source)
        return STATUS_SUCCESS;
    return unicode_append(Destination, Source, wcslen(Source) * sizeof(WCHAR));
}

NTSTATUS RtlAppendUnicodeStringToString(PUNICODE_STRING Destination, PCUNICODE_STRING Source)
{
    return unicode_append(Destination, Source->Buffer, Source->Length);
}

/* ---- case mapping: Unicode simple mappings for the common scripts ---- */

WCHAR RtlUpcaseUnicodeChar(WCHAR c)
{
    uint32_t u = (uint32_t)c;
    if (u >= 'a' && u <= 'z')
        return (WCHAR)(u - 0x20);
    if (u < 0x80)
        return c;
    if ((u >= 0xE0 && u <= 0xFE && u != 0xF7) || (u >= 0x3B1 && u <= 0x3CB && u != 0x3C2) ||
        (u >= 0x430 && u <= 0x44F) || (u >= 0xFF41 && u <= 0xFF5A))
        return (WCHAR)(u - 0x20);
    if (u == 0xFF)
        return (WCHAR)0x178;
    if (u == 0x3C2) /* final sigma */
        return (WCHAR)0x3A3;
    if (u == 0x131) /* dotless i */
        return (WCHAR)'I';
    if (u >= 0x450 && u <= 0x45F)
        return (WCHAR)(u - 0x50);
    /* Latin Extended-A pairs: upper case even, lower case odd, except the
     * runs 0x139-0x148 and 0x179-0x17E where the pairs start on odd. */
    if ((u >= 0x100 && u <= 0x12F) || (u >= 0x132 && u <= 0x137) || (u >= 0x14A && u <= 0x177))
        return (WCHAR)(u & 1 ? u - 1 : u);
    if ((u >= 0x139 && u <= 0x148) || (u >= 0x179 && u <= 0x17E))
        return (WCHAR)(u & 1 ? u : u - 1);
    return c;
}

WCHAR RtlDowncaseUnicodeChar(WCHAR c)
{
    uint32_t u = (uint32_t)c;
    if (u >= 'A' && u <= 'Z')
        return (WCHAR)(u + 0x20);
    if (u < 0x80)
        return c;
    if ((u >= 0xC0 && u <= 0xDE && u != 0xD7) || (u >= 0x391 && u <= 0x3AB && u != 0x3A2) ||
        (u >= 0x410 && u <= 0x42F) || (u >= 0xFF21 && u <= 0xFF3A))
        return (WCHAR)(u + 0x20);
    if (u == 0x178)
        return (WCHAR)0xFF;
    if (u == 0x130) /* capital I with dot */
        return (WCHAR)'i';
    if (u >= 0x400 && u <= 0x40F)
        return (WCHAR)(u + 0x50);
    if ((u >= 0x100 && u <= 0x12F) || (u >= 0x132 && u <= 0x137) || (u >= 0x14A && u <= 0x177))
        return (WCHAR)(u & 1 ? u : u + 1);
    if ((u >= 0x139 && u <= 0x148) || (u >= 0x179 && u <= 0x17E))
        return (WCHAR)(u & 1 ? u + 1 : u);
    return c;
}

CHAR RtlUpperChar(CHAR Character)
{
    return Character >= 'a' && Character <= 'z' ? (CHAR)(Character - 0x20) : Character;
}

static NTSTATUS unicode_map(PUNICODE_STRING dst, PCUNICODE_STRING src, BOOLEAN allocate, WCHAR (*map)(WCHAR))
{
    size_t chars = src->Length / sizeof(WCHAR);
    if (allocate) {
        dst->Buffer = ExAllocatePoolWithTag(PagedPool, src->Length + sizeof(WCHAR), RTL_STRING_TAG);
        if (!dst->Buffer)
            return STATUS_NO_MEMORY;
        dst->MaximumLength = (USHORT)(src->Length + sizeof(WCHAR));
    } else if (dst->MaximumLength < src->Length) {
        return STATUS_BUFFER_OVERFLOW;
    }
    for (size_t i = 0; i < chars; i++)
        dst->Buffer[i] = map(src->Buffer[i]);
    dst->Length = (USHORT)(chars * sizeof(WCHAR));
    if (dst->Length + sizeof(WCHAR) <= dst->MaximumLength)
        dst->Buffer[chars] = UNICODE_NULL;
    return STATUS_SUCCESS;
}

NTSTATUS RtlUpcaseUnicodeString(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                BOOLEAN AllocateDestinationString)
{
    return unicode_map(DestinationString, SourceString, AllocateDestinationString, RtlUpcaseUnicodeChar);
}

NTSTATUS RtlDowncaseUnicodeString(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                  BOOLEAN AllocateDestinationString)
{
    return unicode_map(DestinationString, SourceString, AllocateDestinationString, RtlDowncaseUnicodeChar);
}

/* ---- comparison ---- */

LONG RtlCompareUnicodeStrings(PCWCH String1, SIZE_T String1Length, PCWCH String2, SIZE_T String2Length,
                              BOOLEAN CaseInSensitive)
{
    SIZE_T n = String1Length < String2Length ? String1Length : String2Length;
    for (SIZE_T i = 0; i < n; i++) {
        WCHAR a = String1[i], b = String2[i];
        if (CaseInSensitive) {
            a = RtlUpcaseUnicodeChar(a);
            b = RtlUpcaseUnicodeChar(b);
        }
        if (a != b)
            return (LONG)a - (LONG)b;
    }
    return String1Length == String2Length ? 0 : String1Length < String2Length ? -1 : 1;
}

LONG RtlCompareUnicodeString(PCUNICODE_STRING String1, PCUNICODE_STRING String2, BOOLEAN CaseInSensitive)
{
    return RtlCompareUnicodeStrings(String1->Buffer, String1->Length / sizeof(WCHAR), String2->Buffer,
                                    String2->Length / sizeof(WCHAR), CaseInSensitive);
}

BOOLEAN RtlEqualUnicodeString(PCUNICODE_STRING String1, PCUNICODE_STRING String2, BOOLEAN CaseInSensitive)
{
    return String1->Length == String2->Length && RtlCompareUnicodeString(String1, String2, CaseInSensitive) == 0;
}

BOOLEAN RtlPrefixUnicodeString(PCUNICODE_STRING String1, PCUNICODE_STRING String2, BOOLEAN CaseInSensitive)
{
    if (String1->Length > String2->Length)
        return FALSE;
    return RtlCompareUnicodeStrings(String1->Buffer, String1->Length / sizeof(WCHAR), String2->Buffer,
                                    String1->Length / sizeof(WCHAR), CaseInSensitive) == 0;
}

LONG RtlCompareString(const STRING *String1, const STRING *String2, BOOLEAN CaseInSensitive)
{
    USHORT n = String1->Length < String2->Length ? String1->Length : String2->Length;
    for (USHORT i = 0; i < n; i++) {
        CHAR a = String1->Buffer[i], b = String2->Buffer[i];
        if (CaseInSensitive) {
            a = RtlUpperChar(a);
            b = RtlUpperChar(b);
        }
        if (a != b)
            return (LONG)(UCHAR)a - (LONG)(UCHAR)b;
    }
    return (LONG)String1->Length - (LONG)String2->Length;
}

BOOLEAN RtlEqualString(const STRING *String1, const STRING *String2, BOOLEAN CaseInSensitive)
{
    return String1->Length == String2->Length && RtlCompareString(String1, String2, CaseInSensitive) == 0;
}

SIZE_T RtlCompareMemory(const VOID *Source1, const VOID *Source2, SIZE_T Length)
{
    const unsigned char *a = Source1, *b = Source2;
    SIZE_T i = 0;
    while (i < Length && a[i] == b[i])
        i++;
    return i;
}

/* ---- Unicode <-> "ANSI" (UTF-8) ---- */

ULONG RtlUnicodeStringToAnsiSize(PCUNICODE_STRING UnicodeString)
{
    return (ULONG)utf8_size_of_wide(UnicodeString->Buffer, UnicodeString->Length / sizeof(WCHAR)) + 1;
}

ULONG RtlAnsiStringToUnicodeSize(PCANSI_STRING AnsiString)
{
    return (ULONG)((wide_count_of_utf8(AnsiString->Buffer, AnsiString->Length) + 1) * sizeof(WCHAR));
}

NTSTATUS RtlUnicodeStringToAnsiString(PANSI_STRING DestinationString, PCUNICODE_STRING SourceString,
                                      BOOLEAN AllocateDestinationString)
{
    ULONG size = RtlUnicodeStringToAnsiSize(SourceString); /* NUL included */
    NTSTATUS status = STATUS_SUCCESS;
    size_t room;
    if (size > MAXUSHORT)
        return STATUS_INVALID_PARAMETER_2;
    if (AllocateDestinationString) {
        DestinationString->Buffer = ExAllocatePoolWithTag(PagedPool, size, RTL_STRING_TAG);
        if (!DestinationString->Buffer)
            return STATUS_NO_MEMORY;
        DestinationString->MaximumLength = (USHORT)size;
        room = size - 1;
    } else {
        if (DestinationString->MaximumLength == 0)
            return STATUS_BUFFER_OVERFLOW;
        room = DestinationString->MaximumLength - 1u;
        if (size - 1 > room)
            status = STATUS_BUFFER_OVERFLOW;
    }
    size_t n = 0;
    char tmp[4];
    for (size_t i = 0; i < SourceString->Length / sizeof(WCHAR); i++) {
        size_t k = uwdf_utf8_encode((uint32_t)SourceString->Buffer[i], tmp);
        if (n + k > room)
            break; /* never half a character */
        memcpy(DestinationString->Buffer + n, tmp, k);
        n += k;
    }
    DestinationString->Buffer[n] = ANSI_NULL;
    DestinationString->Length = (USHORT)n;
    return status;
}

NTSTATUS RtlAnsiStringToUnicodeString(PUNICODE_STRING DestinationString, PCANSI_STRING SourceString,
                                      BOOLEAN AllocateDestinationString)
{
    ULONG size = RtlAnsiStringToUnicodeSize(SourceString); /* NUL included */
    if (size > MAXUSHORT)
        return STATUS_INVALID_PARAMETER_2;
    if (AllocateDestinationString) {
        DestinationString->Buffer = ExAllocatePoolWithTag(PagedPool, size, RTL_STRING_TAG);
        if (!DestinationString->Buffer)
            return STATUS_NO_MEMORY;
        DestinationString->MaximumLength = (USHORT)size;
    } else if (size > DestinationString->MaximumLength) {
        return STATUS_BUFFER_OVERFLOW;
    }
    size_t n = 0;
    uint32_t cp;
    for (size_t i = 0; i < SourceString->Length; n++) {
        i += uwdf_utf8_decode((const unsigned char *)SourceString->Buffer + i, SourceString->Length - i, &cp);
        DestinationString->Buffer[n] = (WCHAR)cp;
    }
    DestinationString->Buffer[n] = UNICODE_NULL;
    DestinationString->Length = (USHORT)(n * sizeof(WCHAR));
    return STATUS_SUCCESS;
}

VOID RtlFreeUnicodeString(PUNICODE_STRING UnicodeString)
{
    if (UnicodeString->Buffer)
        ExFreePoolWithTag(UnicodeString->Buffer, RTL_STRING_TAG);
    UnicodeString->Buffer = NULL;
    UnicodeString->Length = UnicodeString->MaximumLength = 0;
}

VOID RtlFreeAnsiString(PANSI_STRING AnsiString)
{
    if (AnsiString->Buffer)
        ExFreePoolWithTag(AnsiString->Buffer, RTL_STRING_TAG);
    AnsiString->Buffer = NULL;
    AnsiString->Length = AnsiString->MaximumLength = 0;
}

NTSTATUS RtlUnicodeToUTF8N(PCHAR UTF8StringDestination, ULONG UTF8StringMaxByteCount,
                           PULONG UTF8StringActualByteCount, PCWCH UnicodeStringSource,
                           ULONG UnicodeStringByteCount)
{
    if ((!UnicodeStringSource && UnicodeStringByteCount) || (!UTF8StringDestination && !UTF8StringActualByteCount))
        return STATUS_INVALID_PARAMETER;
    NTSTATUS status = STATUS_SUCCESS;
    size_t n = 0;
    char tmp[4];
    for (ULONG i = 0; i < UnicodeStringByteCount / sizeof(WCHAR); i++) {
        uint32_t cp = (uint32_t)UnicodeStringSource[i];
        if (!uwdf_unicode_valid(cp))
            status = STATUS_SOME_NOT_MAPPED;
        size_t k = uwdf_utf8_encode(cp, tmp);
        if (UTF8StringDestination) {
            if (n + k > UTF8StringMaxByteCount) {
                status = STATUS_BUFFER_TOO_SMALL;
                break;
            }
            memcpy(UTF8StringDestination + n, tmp, k);
        }
        n += k;
    }
    if (UTF8StringActualByteCount)
        *UTF8StringActualByteCount = (ULONG)n;
    return status;
}

NTSTATUS RtlUTF8ToUnicodeN(PWSTR UnicodeStringDestination, ULONG UnicodeStringMaxByteCount,
                           PULONG UnicodeStringActualByteCount, PCCH UTF8StringSource, ULONG UTF8StringByteCount)
{
    if ((!UTF8StringSource && UTF8StringByteCount) || (!UnicodeStringDestination && !UnicodeStringActualByteCount))
        return STATUS_INVALID_PARAMETER;
    NTSTATUS status = STATUS_SUCCESS;
    size_t n = 0;
    uint32_t cp;
    for (ULONG i = 0; i < UTF8StringByteCount;) {
        size_t k = uwdf_utf8_decode((const unsigned char *)UTF8StringSource + i, UTF8StringByteCount - i, &cp);
        if (cp == REPLACEMENT_CHAR && !(k == 3 && (unsigned char)UTF8StringSource[i] == 0xEF))
            status = STATUS_SOME_NOT_MAPPED;
        if (UnicodeStringDestination) {
            if ((n + 1) * sizeof(WCHAR) > UnicodeStringMaxByteCount) {
                status = STATUS_BUFFER_TOO_SMALL;
                break;
            }
            UnicodeStringDestination[n] = (WCHAR)cp;
        }
        n++;
        i += (ULONG)k;
    }
    if (UnicodeStringActualByteCount)
        *UnicodeStringActualByteCount = (ULONG)(n * sizeof(WCHAR));
    return status;
}

/* ---- integers ---- */

static bool base_valid(ULONG *base)
{
    if (*base == 0)
        *base = 10;
    return *base == 2 || *base == 8 || *base == 10 || *base == 16;
}

/* Digits of v in base (upper case), as a NUL-terminated narrow string. */
static size_t integer_digits(ULONGLONG v, ULONG base, char out[66])
{
    char rev[65];
    size_t n = 0;
    do {
        rev[n++] = "0123456789ABCDEF"[v % base];
        v /= base;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    out[n] = '\0';
    return n;
}

static NTSTATUS integer_to_unicode(ULONGLONG value, ULONG base, PUNICODE_STRING s)
{
    char digits[66];
    if (!base_valid(&base))
        return STATUS_INVALID_PARAMETER;
    size_t n = integer_digits(value, base, digits);
    /* As the ANSI conversion it is on Windows: the digits and a NUL. */
    if ((n + 1) * sizeof(WCHAR) > s->MaximumLength)
        return STATUS_BUFFER_OVERFLOW;
    for (size_t i = 0; i <= n; i++)
        s->Buffer[i] = (WCHAR)digits[i];
    s->Length = (USHORT)(n * sizeof(WCHAR));
    return STATUS_SUCCESS;
}

NTSTATUS RtlIntegerToUnicodeString(ULONG Value, ULONG Base, PUNICODE_STRING String)
{
    return integer_to_unicode(Value, Base, String);
}

NTSTATUS RtlInt64ToUnicodeString(ULONGLONG Value, ULONG Base, PUNICODE_STRING String)
{
    return integer_to_unicode(Value, Base, String);
}

static int digit_value(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return 99;
}

/* Shared by the wide and narrow forms: at(i) is character i, n their count. */
static NTSTATUS text_to_integer(uint32_t (*at)(const void *, size_t), const void *s, size_t n, ULONG base,
                                PULONG value)
{
    size_t i = 0;
    bool minus = false;
    while (i < n && at(s, i) <= ' ')
        i++;
    if (i < n && (at(s, i) == '+' || at(s, i) == '-'))
        minus = at(s, i++) == '-';
    if (base == 0) {
        base = 10;
        if (i + 1 < n && at(s, i) == '0') {
            uint32_t p = at(s, i + 1);
            base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 10;
            if (base != 10)
                i += 2;
        }
    } else if (base != 2 && base != 8 && base != 10 && base != 16) {
        return STATUS_INVALID_PARAMETER;
    }
    ULONG total = 0;
    for (; i < n; i++) {
        int d = digit_value(at(s, i));
        if (d >= (int)base)
            break;
        total = total * base + (ULONG)d;
    }
    *value = minus ? 0u - total : total;
    return STATUS_SUCCESS;
}

static uint32_t wide_at(const void *s, size_t i)
{
    return (uint32_t)((const WCHAR *)s)[i];
}

static uint32_t narrow_at(const void *s, size_t i)
{
    return ((const unsigned char *)s)[i];
}

NTSTATUS RtlUnicodeStringToInteger(PCUNICODE_STRING String, ULONG Base, PULONG Value)
{
    UWDF_REQUIRE_PARAM(Value, "RtlUnicodeStringToInteger", STATUS_ACCESS_VIOLATION);
    return text_to_integer(wide_at, String->Buffer, String->Length / sizeof(WCHAR), Base, Value);
}

NTSTATUS RtlCharToInteger(PCSZ String, ULONG Base, PULONG Value)
{
    UWDF_REQUIRE_PARAM(Value, "RtlCharToInteger", STATUS_ACCESS_VIOLATION);
    return text_to_integer(narrow_at, String, strlen(String), Base, Value);
}

/* ---- GUIDs ---- */

#define GUID_TEXT_CHARS 38 /* {8-4-4-4-12} */

NTSTATUS RtlStringFromGUID(const GUID *Guid, PUNICODE_STRING GuidString)
{
    char text[GUID_TEXT_CHARS + 1];
    snprintf(text, sizeof(text), "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", (unsigned)Guid->Data1,
             Guid->Data2, Guid->Data3, Guid->Data4[0], Guid->Data4[1], Guid->Data4[2], Guid->Data4[3],
             Guid->Data4[4], Guid->Data4[5], Guid->Data4[6], Guid->Data4[7]);
    GuidString->Buffer = ExAllocatePoolWithTag(PagedPool, (GUID_TEXT_CHARS + 1) * sizeof(WCHAR), RTL_STRING_TAG);
    if (!GuidString->Buffer)
        return STATUS_NO_MEMORY;
    for (size_t i = 0; i <= GUID_TEXT_CHARS; i++)
        GuidString->Buffer[i] = (WCHAR)text[i];
    GuidString->Length = GUID_TEXT_CHARS * sizeof(WCHAR);
    GuidString->MaximumLength = (GUID_TEXT_CHARS + 1) * sizeof(WCHAR);
    return STATUS_SUCCESS;
}

/* n hex digits at s[*i], advancing *i. */
static bool parse_hex(const WCHAR *s, size_t *i, unsigned n, uint32_t *out)
{
    uint32_t v = 0;
    for (unsigned k = 0; k < n; k++) {
        int d = digit_value((uint32_t)s[*i + k]);
        if (d > 15)
            return false;
        v = v << 4 | (uint32_t)d;
    }
    *i += n;
    *out = v;
    return true;
}

NTSTATUS RtlGUIDFromString(PCUNICODE_STRING GuidString, GUID *Guid)
{
    static const unsigned groups[] = { 8, 4, 4, 4, 12 };
    const WCHAR *s = GuidString->Buffer;
    size_t i = 1;
    uint32_t v[4 + 8];
    unsigned nv = 0;
    if (GuidString->Length != GUID_TEXT_CHARS * sizeof(WCHAR) || s[0] != L'{' || s[GUID_TEXT_CHARS - 1] != L'}')
        return STATUS_INVALID_PARAMETER;
    for (unsigned g = 0; g < 5; g++) {
        if (g > 0 && s[i++] != L'-')
            return STATUS_INVALID_PARAMETER;
        if (g < 3) {
            if (!parse_hex(s, &i, groups[g], &v[nv++]))
                return STATUS_INVALID_PARAMETER;
            continue;
        }
        for (unsigned b = 0; b < groups[g] / 2; b++)
            if (!parse_hex(s, &i, 2, &v[nv++]))
                return STATUS_INVALID_PARAMETER;
    }
    Guid->Data1 = v[0];
    Guid->Data2 = (uint16_t)v[1];
    Guid->Data3 = (uint16_t)v[2];
    for (unsigned b = 0; b < 8; b++)
        Guid->Data4[b] = (uint8_t)v[3 + b];
    return STATUS_SUCCESS;
}

BOOLEAN RtlIsNtDdiVersionAvailable(ULONG Version)
{
    return Version <= NTDDI_WIN10_FE;
}
