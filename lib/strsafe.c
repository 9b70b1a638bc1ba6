/* ntstrsafe.h: bounded copy, concatenation, formatting and length of
 * NUL-terminated strings (W: WCHAR, A: char) and UNICODE_STRINGs. One core
 * per operation works on either character width; the exported functions
 * only convert sizes (Cb forms count bytes) and map their parameters. */
#include "ntrt.h"

/* ---- characters of either width ---- */

static size_t unit(bool wide)
{
    return wide ? sizeof(WCHAR) : sizeof(char);
}

static uint32_t ch_get(const void *s, bool wide, size_t i)
{
    return wide ? (uint32_t)((const WCHAR *)s)[i] : ((const unsigned char *)s)[i];
}

static void ch_set(void *s, bool wide, size_t i, uint32_t c)
{
    if (wide)
        ((WCHAR *)s)[i] = (WCHAR)c;
    else
        ((char *)s)[i] = (char)c;
}

static void *ch_ptr(void *s, bool wide, size_t i)
{
    return (char *)s + i * unit(wide);
}

/* Characters before the first NUL, looking at no more than max. */
static size_t str_len_max(const void *s, bool wide, size_t max)
{
    size_t n = 0;
    while (n < max && ch_get(s, wide, n))
        n++;
    return n;
}

/* ---- NUL-terminated destinations ---- */

struct dest {
    void *buf;
    size_t cch;
    bool wide;
    DWORD flags;
    void **end;        /* Ex: the terminator */
    size_t *remaining; /* Ex: unused characters, terminator included */
};

static void fill_bytes(struct dest *d, size_t from_char)
{
    size_t from = from_char * unit(d->wide), to = d->cch * unit(d->wide);
    if (from < to)
        memset((char *)d->buf + from, STRSAFE_GET_FILL_PATTERN(d->flags), to - from);
}

static void report_end(struct dest *d, size_t len)
{
    if (d->end)
        *d->end = d->buf ? ch_ptr(d->buf, d->wide, len) : NULL;
    if (d->remaining)
        *d->remaining = d->cch - len;
}

/* The Ex flags once the operation is over: len is the terminated string's
 * length, orig_len what the destination held before (Cat). An invalid
 * parameter leaves the destination as it was, unless a failure flag says
 * otherwise. */
static NTSTATUS finish(struct dest *d, NTSTATUS status, size_t len, size_t orig_len)
{
    if (!d->buf || d->cch == 0) {
        report_end(d, 0);
        return status;
    }
    if (NT_SUCCESS(status) && status != STATUS_BUFFER_OVERFLOW) {
        if (d->flags & STRSAFE_FILL_BEHIND_NULL)
            fill_bytes(d, len + 1);
        report_end(d, len);
        return status;
    }
    if (d->flags & STRSAFE_FILL_ON_FAILURE) {
        fill_bytes(d, 0);
        len = d->cch - 1;
    } else if (d->flags & STRSAFE_NULL_ON_FAILURE) {
        len = 0;
    } else if (status == STATUS_BUFFER_OVERFLOW) {
        if (d->flags & STRSAFE_NO_TRUNCATION)
            len = orig_len; /* nothing copied or appended */
    } else {
        len = str_len_max(d->buf, d->wide, d->cch);
        report_end(d, len < d->cch ? len : 0);
        return status;
    }
    ch_set(d->buf, d->wide, len, 0);
    report_end(d, len);
    return status;
}

/* The checks every destination gets. Without STRSAFE_IGNORE_NULLS a NULL
 * buffer or a size of 0 is invalid; with it a NULL buffer needs size 0. */
static bool dest_valid(const struct dest *d, DWORD valid_flags)
{
    if (d->flags & ~valid_flags)
        return false;
    if (d->cch > NTSTRSAFE_MAX_CCH)
        return false;
    if (d->flags & STRSAFE_IGNORE_NULLS)
        return d->buf || d->cch == 0;
    return d->buf && d->cch > 0;
}

/* Append up to max characters of src at position at (what is there before
 * stays); the terminated result's status and length. */
static NTSTATUS append_chars(struct dest *d, size_t at, const void *src, bool src_wide, size_t max, size_t *len)
{
    size_t n = str_len_max(src, src_wide, max);
    size_t room = d->cch - at - 1;
    size_t k = n < room ? n : room;
    memmove(ch_ptr(d->buf, d->wide, at), src, k * unit(d->wide));
    ch_set(d->buf, d->wide, at + k, 0);
    *len = at + k;
    return k < n ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

static NTSTATUS copy_core(struct dest *d, const void *src, size_t max)
{
    size_t len = 0;
    if (!dest_valid(d, STRSAFE_VALID_FLAGS))
        return STATUS_INVALID_PARAMETER;
    if (max > NTSTRSAFE_MAX_CCH && max != SIZE_MAX)
        return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
    if (!src) {
        if (!(d->flags & STRSAFE_IGNORE_NULLS))
            return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
        src = d->wide ? (const void *)L"" : (const void *)"";
    }
    if (d->cch == 0) /* allowed with STRSAFE_IGNORE_NULLS only */
        return finish(d, str_len_max(src, d->wide, max) ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS, 0, 0);
    NTSTATUS status = append_chars(d, 0, src, d->wide, max, &len);
    return finish(d, status, len, 0);
}

static NTSTATUS cat_core(struct dest *d, const void *src, size_t max)
{
    size_t len = 0;
    if (!dest_valid(d, STRSAFE_VALID_FLAGS))
        return STATUS_INVALID_PARAMETER;
    if (max > NTSTRSAFE_MAX_CCH && max != SIZE_MAX)
        return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
    if (!src) {
        if (!(d->flags & STRSAFE_IGNORE_NULLS))
            return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
        src = d->wide ? (const void *)L"" : (const void *)"";
    }
    if (d->cch == 0)
        return finish(d, str_len_max(src, d->wide, max) ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS, 0, 0);
    size_t have = str_len_max(d->buf, d->wide, d->cch);
    if (have == d->cch) /* no terminator: not a string this size */
        return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
    NTSTATUS status = append_chars(d, have, src, d->wide, max, &len);
    return finish(d, status, len, have);
}

static NTSTATUS printf_core(struct dest *d, const void *fmt, va_list ap)
{
    if (!dest_valid(d, STRSAFE_VALID_FLAGS))
        return STATUS_INVALID_PARAMETER;
    if (!fmt) {
        if (!(d->flags & STRSAFE_IGNORE_NULLS))
            return finish(d, STATUS_INVALID_PARAMETER, 0, 0);
        fmt = d->wide ? (const void *)L"" : (const void *)"";
    }
    if (d->cch == 0)
        return finish(d, ch_get(fmt, d->wide, 0) ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS, 0, 0);
    struct uwdf_fmt_out o = { .buf = d->buf, .cap = d->cch - 1, .wide = d->wide };
    bool ok = uwdf_fmt_v(&o, fmt, ap);
    ch_set(d->buf, d->wide, o.len, 0);
    NTSTATUS status = !ok ? STATUS_INVALID_PARAMETER : o.truncated ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
    return finish(d, status, o.len, 0);
}

/* Cb sizes: whole characters, and the Ex byte count includes the odd bytes
 * a character does not fill, as Windows reports it. */
static bool cb_to_cch(size_t cb, bool wide, size_t *cch)
{
    *cch = cb / unit(wide);
    return *cch <= NTSTRSAFE_MAX_CCH;
}

static size_t cb_to_cch_n(size_t cb, bool wide)
{
    size_t n = cb / unit(wide);
    return n > NTSTRSAFE_MAX_CCH ? (size_t)NTSTRSAFE_MAX_CCH + 1 : n;
}

/* ---- the exported forms ---- */

#define DEST(b, n, w, f, e, r) \
    { .buf = (void *)(b), .cch = (n), .wide = (w), .flags = (f), .end = (void **)(e), .remaining = (r) }

static NTSTATUS cb_finish_remaining(NTSTATUS status, size_t cb, bool wide, size_t *pcb)
{
    if (pcb)
        *pcb = *pcb * unit(wide) + cb % unit(wide);
    return status;
}

#define CB_DEST_OR_FAIL(cb, wide, cch)              \
    size_t cch;                                     \
    if (!cb_to_cch((cb), (wide), &cch))             \
        return STATUS_INVALID_PARAMETER

NTSTATUS RtlStringCchCopyW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc)
{
    struct dest d = DEST(pszDest, cchDest, true, 0, NULL, NULL);
    return copy_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCchCopyA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszSrc)
{
    struct dest d = DEST(pszDest, cchDest, false, 0, NULL, NULL);
    return copy_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCbCopyW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return RtlStringCchCopyW(pszDest, cch, pszSrc);
}

NTSTATUS RtlStringCbCopyA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszSrc)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCopyA(pszDest, cch, pszSrc);
}

NTSTATUS RtlStringCchCopyExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc,
                             NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    return copy_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCchCopyExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszSrc,
                             NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, false, dwFlags, ppszDestEnd, pcchRemaining);
    return copy_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCbCopyExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc,
                            NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(RtlStringCchCopyExW(pszDest, cch, pszSrc, ppszDestEnd, pcbRemaining, dwFlags),
                               cbDest, true, pcbRemaining);
}

NTSTATUS RtlStringCbCopyExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszSrc,
                            NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCopyExA(pszDest, cch, pszSrc, ppszDestEnd, pcbRemaining, dwFlags);
}

NTSTATUS RtlStringCchCopyNW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc, size_t cchToCopy)
{
    struct dest d = DEST(pszDest, cchDest, true, 0, NULL, NULL);
    return copy_core(&d, pszSrc, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy);
}

NTSTATUS RtlStringCchCopyNA(NTSTRSAFE_PSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc, size_t cchToCopy)
{
    struct dest d = DEST(pszDest, cchDest, false, 0, NULL, NULL);
    return copy_core(&d, pszSrc, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy);
}

NTSTATUS RtlStringCbCopyNW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, STRSAFE_PCNZWCH pszSrc, size_t cbToCopy)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return RtlStringCchCopyNW(pszDest, cch, pszSrc, cb_to_cch_n(cbToCopy, true));
}

NTSTATUS RtlStringCbCopyNA(NTSTRSAFE_PSTR pszDest, size_t cbDest, STRSAFE_PCNZCH pszSrc, size_t cbToCopy)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCopyNA(pszDest, cch, pszSrc, cb_to_cch_n(cbToCopy, false));
}

NTSTATUS RtlStringCchCopyNExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc, size_t cchToCopy,
                              NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    return copy_core(&d, pszSrc, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy);
}

NTSTATUS RtlStringCchCopyNExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc, size_t cchToCopy,
                              NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, false, dwFlags, ppszDestEnd, pcchRemaining);
    return copy_core(&d, pszSrc, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy);
}

NTSTATUS RtlStringCbCopyNExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, STRSAFE_PCNZWCH pszSrc, size_t cbToCopy,
                             NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(RtlStringCchCopyNExW(pszDest, cch, pszSrc, cb_to_cch_n(cbToCopy, true),
                                                    ppszDestEnd, pcbRemaining, dwFlags),
                               cbDest, true, pcbRemaining);
}

NTSTATUS RtlStringCbCopyNExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, STRSAFE_PCNZCH pszSrc, size_t cbToCopy,
                             NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCopyNExA(pszDest, cch, pszSrc, cb_to_cch_n(cbToCopy, false), ppszDestEnd, pcbRemaining,
                                dwFlags);
}

NTSTATUS RtlStringCchCatW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc)
{
    struct dest d = DEST(pszDest, cchDest, true, 0, NULL, NULL);
    return cat_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCchCatA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszSrc)
{
    struct dest d = DEST(pszDest, cchDest, false, 0, NULL, NULL);
    return cat_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCbCatW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return RtlStringCchCatW(pszDest, cch, pszSrc);
}

NTSTATUS RtlStringCbCatA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszSrc)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCatA(pszDest, cch, pszSrc);
}

NTSTATUS RtlStringCchCatExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc,
                            NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    return cat_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCchCatExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszSrc,
                            NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, false, dwFlags, ppszDestEnd, pcchRemaining);
    return cat_core(&d, pszSrc, SIZE_MAX);
}

NTSTATUS RtlStringCbCatExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc,
                           NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(RtlStringCchCatExW(pszDest, cch, pszSrc, ppszDestEnd, pcbRemaining, dwFlags),
                               cbDest, true, pcbRemaining);
}

NTSTATUS RtlStringCbCatExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszSrc,
                           NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCatExA(pszDest, cch, pszSrc, ppszDestEnd, pcbRemaining, dwFlags);
}

NTSTATUS RtlStringCchCatNW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc, size_t cchToAppend)
{
    struct dest d = DEST(pszDest, cchDest, true, 0, NULL, NULL);
    return cat_core(&d, pszSrc, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend);
}

NTSTATUS RtlStringCchCatNA(NTSTRSAFE_PSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc, size_t cchToAppend)
{
    struct dest d = DEST(pszDest, cchDest, false, 0, NULL, NULL);
    return cat_core(&d, pszSrc, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend);
}

NTSTATUS RtlStringCbCatNW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, STRSAFE_PCNZWCH pszSrc, size_t cbToAppend)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return RtlStringCchCatNW(pszDest, cch, pszSrc, cb_to_cch_n(cbToAppend, true));
}

NTSTATUS RtlStringCbCatNA(NTSTRSAFE_PSTR pszDest, size_t cbDest, STRSAFE_PCNZCH pszSrc, size_t cbToAppend)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCatNA(pszDest, cch, pszSrc, cb_to_cch_n(cbToAppend, false));
}

NTSTATUS RtlStringCchCatNExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, STRSAFE_PCNZWCH pszSrc, size_t cchToAppend,
                             NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    return cat_core(&d, pszSrc, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend);
}

NTSTATUS RtlStringCchCatNExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, STRSAFE_PCNZCH pszSrc, size_t cchToAppend,
                             NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, false, dwFlags, ppszDestEnd, pcchRemaining);
    return cat_core(&d, pszSrc, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend);
}

NTSTATUS RtlStringCbCatNExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, STRSAFE_PCNZWCH pszSrc, size_t cbToAppend,
                            NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(RtlStringCchCatNExW(pszDest, cch, pszSrc, cb_to_cch_n(cbToAppend, true),
                                                   ppszDestEnd, pcbRemaining, dwFlags),
                               cbDest, true, pcbRemaining);
}

NTSTATUS RtlStringCbCatNExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, STRSAFE_PCNZCH pszSrc, size_t cbToAppend,
                            NTSTRSAFE_PSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchCatNExA(pszDest, cch, pszSrc, cb_to_cch_n(cbToAppend, false), ppszDestEnd, pcbRemaining,
                               dwFlags);
}

NTSTATUS RtlStringCchVPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    struct dest d = DEST(pszDest, cchDest, true, 0, NULL, NULL);
    return printf_core(&d, pszFormat, argList);
}

NTSTATUS RtlStringCchVPrintfA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszFormat, va_list argList)
{
    struct dest d = DEST(pszDest, cchDest, false, 0, NULL, NULL);
    return printf_core(&d, pszFormat, argList);
}

NTSTATUS RtlStringCbVPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return RtlStringCchVPrintfW(pszDest, cch, pszFormat, argList);
}

NTSTATUS RtlStringCbVPrintfA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszFormat, va_list argList)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchVPrintfA(pszDest, cch, pszFormat, argList);
}

NTSTATUS RtlStringCchVPrintfExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PWSTR *ppszDestEnd,
                                size_t *pcchRemaining, DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    return printf_core(&d, pszFormat, argList);
}

NTSTATUS RtlStringCchVPrintfExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PSTR *ppszDestEnd,
                                size_t *pcchRemaining, DWORD dwFlags, NTSTRSAFE_PCSTR pszFormat, va_list argList)
{
    struct dest d = DEST(pszDest, cchDest, false, dwFlags, ppszDestEnd, pcchRemaining);
    return printf_core(&d, pszFormat, argList);
}

NTSTATUS RtlStringCbVPrintfExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PWSTR *ppszDestEnd,
                               size_t *pcbRemaining, DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(
        RtlStringCchVPrintfExW(pszDest, cch, ppszDestEnd, pcbRemaining, dwFlags, pszFormat, argList), cbDest, true,
        pcbRemaining);
}

NTSTATUS RtlStringCbVPrintfExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PSTR *ppszDestEnd,
                               size_t *pcbRemaining, DWORD dwFlags, NTSTRSAFE_PCSTR pszFormat, va_list argList)
{
    CB_DEST_OR_FAIL(cbDest, false, cch);
    return RtlStringCchVPrintfExA(pszDest, cch, ppszDestEnd, pcbRemaining, dwFlags, pszFormat, argList);
}

#define VARIADIC(call, last)            \
    va_list ap;                         \
    va_start(ap, last);                 \
    NTSTATUS status_ = (call);          \
    va_end(ap);                         \
    return status_

NTSTATUS RtlStringCchPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlStringCchVPrintfW(pszDest, cchDest, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCchPrintfA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszFormat, ...)
{
    VARIADIC(RtlStringCchVPrintfA(pszDest, cchDest, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCbPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlStringCbVPrintfW(pszDest, cbDest, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCbPrintfA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszFormat, ...)
{
    VARIADIC(RtlStringCbVPrintfA(pszDest, cbDest, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCchPrintfExW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PWSTR *ppszDestEnd,
                               size_t *pcchRemaining, DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlStringCchVPrintfExW(pszDest, cchDest, ppszDestEnd, pcchRemaining, dwFlags, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCchPrintfExA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PSTR *ppszDestEnd,
                               size_t *pcchRemaining, DWORD dwFlags, NTSTRSAFE_PCSTR pszFormat, ...)
{
    VARIADIC(RtlStringCchVPrintfExA(pszDest, cchDest, ppszDestEnd, pcchRemaining, dwFlags, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCbPrintfExW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PWSTR *ppszDestEnd,
                              size_t *pcbRemaining, DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlStringCbVPrintfExW(pszDest, cbDest, ppszDestEnd, pcbRemaining, dwFlags, pszFormat, ap), pszFormat);
}

NTSTATUS RtlStringCbPrintfExA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PSTR *ppszDestEnd,
                              size_t *pcbRemaining, DWORD dwFlags, NTSTRSAFE_PCSTR pszFormat, ...)
{
    VARIADIC(RtlStringCbVPrintfExA(pszDest, cbDest, ppszDestEnd, pcbRemaining, dwFlags, pszFormat, ap), pszFormat);
}

/* ---- length ---- */

static NTSTATUS length_core(const void *psz, bool wide, size_t max, size_t *len)
{
    size_t n = 0;
    NTSTATUS status = STATUS_INVALID_PARAMETER;
    if (psz && max <= NTSTRSAFE_MAX_CCH) {
        n = str_len_max(psz, wide, max);
        if (n < max)
            status = STATUS_SUCCESS;
        else
            n = 0;
    }
    if (len)
        *len = n;
    return status;
}

NTSTATUS RtlStringCchLengthW(NTSTRSAFE_PCWSTR psz, size_t cchMax, size_t *pcchLength)
{
    return length_core(psz, true, cchMax, pcchLength);
}

NTSTATUS RtlStringCchLengthA(NTSTRSAFE_PCSTR psz, size_t cchMax, size_t *pcchLength)
{
    return length_core(psz, false, cchMax, pcchLength);
}

NTSTATUS RtlStringCbLengthW(NTSTRSAFE_PCWSTR psz, size_t cbMax, size_t *pcbLength)
{
    NTSTATUS status = length_core(psz, true, cb_to_cch_n(cbMax, true), pcbLength);
    if (pcbLength)
        *pcbLength *= sizeof(WCHAR);
    return status;
}

NTSTATUS RtlStringCbLengthA(NTSTRSAFE_PCSTR psz, size_t cbMax, size_t *pcbLength)
{
    return length_core(psz, false, cbMax, pcbLength);
}

/* ---- a UNICODE_STRING into a NUL-terminated buffer ---- */

NTSTATUS RtlStringCchCopyUnicodeStringEx(NTSTRSAFE_PWSTR pszDest, size_t cchDest, PCUNICODE_STRING SourceString,
                                         NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcchRemaining, DWORD dwFlags)
{
    struct dest d = DEST(pszDest, cchDest, true, dwFlags, ppszDestEnd, pcchRemaining);
    size_t len = 0;
    if (!dest_valid(&d, STRSAFE_VALID_FLAGS))
        return STATUS_INVALID_PARAMETER;
    if (!SourceString && !(dwFlags & STRSAFE_IGNORE_NULLS))
        return finish(&d, STATUS_INVALID_PARAMETER, 0, 0);
    if (SourceString && !NT_SUCCESS(RtlUnicodeStringValidate(SourceString)))
        return finish(&d, STATUS_INVALID_PARAMETER, 0, 0);
    size_t n = SourceString ? SourceString->Length / sizeof(WCHAR) : 0;
    if (cchDest == 0)
        return finish(&d, n ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS, 0, 0);
    size_t k = n < cchDest - 1 ? n : cchDest - 1;
    if (k)
        memmove(pszDest, SourceString->Buffer, k * sizeof(WCHAR));
    pszDest[k] = UNICODE_NULL;
    len = k;
    return finish(&d, k < n ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS, len, 0);
}

NTSTATUS RtlStringCchCopyUnicodeString(NTSTRSAFE_PWSTR pszDest, size_t cchDest, PCUNICODE_STRING SourceString)
{
    return RtlStringCchCopyUnicodeStringEx(pszDest, cchDest, SourceString, NULL, NULL, 0);
}

NTSTATUS RtlStringCbCopyUnicodeStringEx(NTSTRSAFE_PWSTR pszDest, size_t cbDest, PCUNICODE_STRING SourceString,
                                        NTSTRSAFE_PWSTR *ppszDestEnd, size_t *pcbRemaining, DWORD dwFlags)
{
    CB_DEST_OR_FAIL(cbDest, true, cch);
    return cb_finish_remaining(
        RtlStringCchCopyUnicodeStringEx(pszDest, cch, SourceString, ppszDestEnd, pcbRemaining, dwFlags), cbDest,
        true, pcbRemaining);
}

NTSTATUS RtlStringCbCopyUnicodeString(NTSTRSAFE_PWSTR pszDest, size_t cbDest, PCUNICODE_STRING SourceString)
{
    return RtlStringCbCopyUnicodeStringEx(pszDest, cbDest, SourceString, NULL, NULL, 0);
}

/* ---- UNICODE_STRING destinations: lengths in bytes, never a NUL ---- */

#define US_MAX_BYTES (NTSTRSAFE_UNICODE_STRING_MAX_CCH * sizeof(WCHAR))

NTSTATUS RtlUnicodeStringValidateEx(PCUNICODE_STRING SourceString, DWORD dwFlags)
{
    if (dwFlags & ~STRSAFE_IGNORE_NULLS)
        return STATUS_INVALID_PARAMETER;
    if (!SourceString)
        return dwFlags & STRSAFE_IGNORE_NULLS ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
    const UNICODE_STRING *s = SourceString;
    if (s->Length % sizeof(WCHAR) || s->MaximumLength % sizeof(WCHAR) || s->Length > s->MaximumLength ||
        s->MaximumLength > US_MAX_BYTES || (!s->Buffer && (s->Length || s->MaximumLength)))
        return STATUS_INVALID_PARAMETER;
    return STATUS_SUCCESS;
}

NTSTATUS RtlUnicodeStringValidate(PCUNICODE_STRING SourceString)
{
    return RtlUnicodeStringValidateEx(SourceString, 0);
}

NTSTATUS RtlUnicodeStringInitEx(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc, DWORD dwFlags)
{
    if (dwFlags & ~STRSAFE_IGNORE_NULLS)
        return STATUS_INVALID_PARAMETER;
    if (!DestinationString)
        return pszSrc || !(dwFlags & STRSAFE_IGNORE_NULLS) ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS;
    DestinationString->Length = DestinationString->MaximumLength = 0;
    DestinationString->Buffer = (PWCH)pszSrc;
    if (!pszSrc)
        return STATUS_SUCCESS;
    /* Room for the terminator too, in a USHORT. */
    size_t n = wcsnlen(pszSrc, NTSTRSAFE_UNICODE_STRING_MAX_CCH);
    if (n >= NTSTRSAFE_UNICODE_STRING_MAX_CCH) {
        DestinationString->Buffer = NULL;
        return STATUS_INVALID_PARAMETER;
    }
    DestinationString->Length = (USHORT)(n * sizeof(WCHAR));
    DestinationString->MaximumLength = (USHORT)(DestinationString->Length + sizeof(WCHAR));
    return STATUS_SUCCESS;
}

NTSTATUS RtlUnicodeStringInit(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc)
{
    return RtlUnicodeStringInitEx(DestinationString, pszSrc, 0);
}

/* Where the result goes: the destination, the characters it already has
 * that stay (Cat), and the Ex flags. */
struct us_dest {
    PUNICODE_STRING us;
    size_t keep; /* characters kept in front */
    DWORD flags;
    PUNICODE_STRING remaining;
};

static NTSTATUS us_finish(struct us_dest *d, NTSTATUS status, size_t chars)
{
    PUNICODE_STRING us = d->us;
    if (!us) {
        if (d->remaining)
            d->remaining->Buffer = NULL, d->remaining->Length = d->remaining->MaximumLength = 0;
        return status;
    }
    if (NT_SUCCESS(status) && status != STATUS_BUFFER_OVERFLOW) {
        us->Length = (USHORT)(chars * sizeof(WCHAR));
        if (d->flags & STRSAFE_FILL_BEHIND)
            memset((char *)us->Buffer + us->Length, STRSAFE_GET_FILL_PATTERN(d->flags), us->MaximumLength - us->Length);
    } else if (d->flags & STRSAFE_FILL_ON_FAILURE) {
        if (us->Buffer)
            memset(us->Buffer, STRSAFE_GET_FILL_PATTERN(d->flags), us->MaximumLength);
        us->Length = 0;
    } else if (d->flags & STRSAFE_ZERO_LENGTH_ON_FAILURE) {
        us->Length = 0;
    } else if ((d->flags & STRSAFE_NO_TRUNCATION) && status == STATUS_BUFFER_OVERFLOW) {
        us->Length = (USHORT)(d->keep * sizeof(WCHAR)); /* nothing copied or appended */
    } else if (status == STATUS_BUFFER_OVERFLOW) {
        us->Length = (USHORT)(chars * sizeof(WCHAR));
    }
    if (d->remaining) {
        d->remaining->Buffer = us->Buffer ? (PWCH)((char *)us->Buffer + us->Length) : NULL;
        d->remaining->Length = 0;
        d->remaining->MaximumLength = (USHORT)(us->MaximumLength - us->Length);
    }
    return status;
}

/* Put n characters of src after the kept ones: what fits. */
static NTSTATUS us_put(struct us_dest *d, const WCHAR *src, size_t n)
{
    PUNICODE_STRING us = d->us;
    size_t cap = us ? us->MaximumLength / sizeof(WCHAR) : 0;
    if (cap == 0 && n > 0)
        return us_finish(d, STATUS_INVALID_PARAMETER, 0);
    size_t room = cap - d->keep;
    size_t k = n < room ? n : room;
    if (k)
        memmove(us->Buffer + d->keep, src, k * sizeof(WCHAR));
    return us_finish(d, k < n ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS, d->keep + k);
}

static bool us_flags_ok(DWORD flags, PCUNICODE_STRING dest, const void *src)
{
    if (flags & ~STRSAFE_UNICODE_STRING_VALID_FLAGS)
        return false;
    if (!(flags & STRSAFE_IGNORE_NULLS) && (!dest || !src))
        return false;
    return NT_SUCCESS(RtlUnicodeStringValidateEx(dest, flags & STRSAFE_IGNORE_NULLS));
}

/* Copy (cat false) or append (cat true) at most max characters of a
 * UNICODE_STRING or (src_us NULL) a NUL-terminated string. */
static NTSTATUS us_op(PUNICODE_STRING dest, PCUNICODE_STRING src_us, PCWSTR src_sz, size_t max, bool cat,
                      PUNICODE_STRING remaining, DWORD flags)
{
    const void *src = src_us ? (const void *)src_us : (const void *)src_sz;
    struct us_dest d = { .us = dest, .flags = flags, .remaining = remaining };
    if (!us_flags_ok(flags, dest, src) || (max != SIZE_MAX && max > NTSTRSAFE_UNICODE_STRING_MAX_CCH))
        return STATUS_INVALID_PARAMETER;
    const WCHAR *text = L"";
    size_t n = 0;
    if (src_us) {
        if (!NT_SUCCESS(RtlUnicodeStringValidate(src_us)))
            return us_finish(&d, STATUS_INVALID_PARAMETER, 0);
        text = src_us->Buffer;
        n = src_us->Length / sizeof(WCHAR);
    } else if (src_sz) {
        text = src_sz;
        n = wcsnlen(src_sz, max == SIZE_MAX ? (size_t)NTSTRSAFE_MAX_CCH : max);
    }
    if (n > max)
        n = max;
    d.keep = cat && dest ? dest->Length / sizeof(WCHAR) : 0;
    return us_put(&d, text, n);
}

NTSTATUS RtlUnicodeStringCopyEx(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                PUNICODE_STRING RemainingString, DWORD dwFlags)
{
    return us_op(DestinationString, SourceString, NULL, SIZE_MAX, false, RemainingString, dwFlags);
}

NTSTATUS RtlUnicodeStringCopy(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString)
{
    return us_op(DestinationString, SourceString, NULL, SIZE_MAX, false, NULL, 0);
}

NTSTATUS RtlUnicodeStringCopyStringEx(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                      PUNICODE_STRING RemainingString, DWORD dwFlags)
{
    return us_op(DestinationString, NULL, pszSrc, SIZE_MAX, false, RemainingString, dwFlags);
}

NTSTATUS RtlUnicodeStringCopyString(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc)
{
    return us_op(DestinationString, NULL, pszSrc, SIZE_MAX, false, NULL, 0);
}

NTSTATUS RtlUnicodeStringCchCopyN(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                  size_t cchToCopy)
{
    return us_op(DestinationString, SourceString, NULL, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy, false,
                 NULL, 0);
}

NTSTATUS RtlUnicodeStringCbCopyN(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                 size_t cbToCopy)
{
    return RtlUnicodeStringCchCopyN(DestinationString, SourceString, cbToCopy / sizeof(WCHAR));
}

NTSTATUS RtlUnicodeStringCchCopyStringN(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                        size_t cchToCopy)
{
    return us_op(DestinationString, NULL, pszSrc, cchToCopy == SIZE_MAX ? SIZE_MAX - 1 : cchToCopy, false, NULL,
                 0);
}

NTSTATUS RtlUnicodeStringCbCopyStringN(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                       size_t cbToCopy)
{
    return RtlUnicodeStringCchCopyStringN(DestinationString, pszSrc, cbToCopy / sizeof(WCHAR));
}

NTSTATUS RtlUnicodeStringCatEx(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                               PUNICODE_STRING RemainingString, DWORD dwFlags)
{
    return us_op(DestinationString, SourceString, NULL, SIZE_MAX, true, RemainingString, dwFlags);
}

NTSTATUS RtlUnicodeStringCat(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString)
{
    return us_op(DestinationString, SourceString, NULL, SIZE_MAX, true, NULL, 0);
}

NTSTATUS RtlUnicodeStringCatStringEx(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                     PUNICODE_STRING RemainingString, DWORD dwFlags)
{
    return us_op(DestinationString, NULL, pszSrc, SIZE_MAX, true, RemainingString, dwFlags);
}

NTSTATUS RtlUnicodeStringCatString(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc)
{
    return us_op(DestinationString, NULL, pszSrc, SIZE_MAX, true, NULL, 0);
}

NTSTATUS RtlUnicodeStringCchCatN(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                 size_t cchToAppend)
{
    return us_op(DestinationString, SourceString, NULL, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend,
                 true, NULL, 0);
}

NTSTATUS RtlUnicodeStringCbCatN(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString,
                                size_t cbToAppend)
{
    return RtlUnicodeStringCchCatN(DestinationString, SourceString, cbToAppend / sizeof(WCHAR));
}

NTSTATUS RtlUnicodeStringCchCatStringN(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                       size_t cchToAppend)
{
    return us_op(DestinationString, NULL, pszSrc, cchToAppend == SIZE_MAX ? SIZE_MAX - 1 : cchToAppend, true,
                 NULL, 0);
}

NTSTATUS RtlUnicodeStringCbCatStringN(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszSrc,
                                      size_t cbToAppend)
{
    return RtlUnicodeStringCchCatStringN(DestinationString, pszSrc, cbToAppend / sizeof(WCHAR));
}

NTSTATUS RtlUnicodeStringVPrintfEx(PUNICODE_STRING DestinationString, PUNICODE_STRING RemainingString,
                                   DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    struct us_dest d = { .us = DestinationString, .flags = dwFlags, .remaining = RemainingString };
    if (!us_flags_ok(dwFlags, DestinationString, pszFormat))
        return STATUS_INVALID_PARAMETER;
    if (!pszFormat)
        pszFormat = L"";
    size_t cap = DestinationString ? DestinationString->MaximumLength / sizeof(WCHAR) : 0;
    if (cap == 0)
        return us_finish(&d, pszFormat[0] ? STATUS_INVALID_PARAMETER : STATUS_SUCCESS, 0);
    struct uwdf_fmt_out o = { .buf = DestinationString->Buffer, .cap = cap, .wide = true };
    bool ok = uwdf_fmt_v(&o, pszFormat, argList);
    return us_finish(&d, !ok ? STATUS_INVALID_PARAMETER : o.truncated ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS,
                     o.len);
}

NTSTATUS RtlUnicodeStringVPrintf(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszFormat, va_list argList)
{
    return RtlUnicodeStringVPrintfEx(DestinationString, NULL, 0, pszFormat, argList);
}

NTSTATUS RtlUnicodeStringPrintf(PUNICODE_STRING DestinationString, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlUnicodeStringVPrintfEx(DestinationString, NULL, 0, pszFormat, ap), pszFormat);
}

NTSTATUS RtlUnicodeStringPrintfEx(PUNICODE_STRING DestinationString, PUNICODE_STRING RemainingString,
                                  DWORD dwFlags, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    VARIADIC(RtlUnicodeStringVPrintfEx(DestinationString, RemainingString, dwFlags, pszFormat, ap), pszFormat);
}
