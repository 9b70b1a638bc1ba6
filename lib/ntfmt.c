/* The Windows printf engine, shared by DbgPrint and the ntstrsafe printf
 * forms. Windows drivers are written for Microsoft's conversions, which
 * differ from C99's where it matters on a 64-bit Linux: %ld is 32 bits
 * (LONG), %I64d / %I32d / %Id size an integer, %S and %ws are wide strings
 * in a narrow format (and %S a narrow one in a wide format), %wZ / %Z print
 * a UNICODE_STRING / ANSI_STRING, and %p is sixteen upper-case digits.
 * Narrow output is UTF-8; wide output is WCHAR (UTF-32). */
#include "ntrt.h"

#include <stdio.h>
#include <stdlib.h>

enum fmt_size {
    SIZE_NONE = 0,
    SIZE_HH,  /* char */
    SIZE_H,   /* short; narrow string or character */
    SIZE_L,   /* 32 bits (Windows long); wide string or character */
    SIZE_LL,  /* 64 bits */
    SIZE_PTR, /* pointer-sized: I, z, t, j */
    SIZE_W,   /* wide string or character */
    SIZE_LD,  /* long double */
};

struct fmt_spec {
    bool left, plus, space, alt, zero;
    int width; /* -1: none */
    int prec;  /* -1: none */
    enum fmt_size size;
};

/* ---- output ---- */

static void put_byte(struct uwdf_fmt_out *o, unsigned char b)
{
    if (o->truncated)
        return;
    if (o->len >= o->cap) {
        o->truncated = true;
        return;
    }
    ((char *)o->buf)[o->len++] = (char)b;
}

/* One character: a WCHAR in wide output, its UTF-8 bytes (all or none) in
 * narrow output. */
static void put_cp(struct uwdf_fmt_out *o, uint32_t cp)
{
    if (o->truncated)
        return;
    if (o->wide) {
        if (o->len >= o->cap) {
            o->truncated = true;
            return;
        }
        ((WCHAR *)o->buf)[o->len++] = (WCHAR)cp;
        return;
    }
    char tmp[4];
    size_t n = uwdf_utf8_encode(cp, tmp);
    if (o->len + n > o->cap) {
        o->truncated = true;
        return;
    }
    memcpy((char *)o->buf + o->len, tmp, n);
    o->len += n;
}

static void put_repeat(struct uwdf_fmt_out *o, char c, int n)
{
    for (int i = 0; i < n; i++)
        put_cp(o, (unsigned char)c);
}

/* n bytes of a narrow string: as they are into narrow output (they need
 * not be valid UTF-8), decoded into wide output. */
static void put_narrow(struct uwdf_fmt_out *o, const char *s, size_t n)
{
    if (!o->wide) {
        for (size_t i = 0; i < n; i++)
            put_byte(o, (unsigned char)s[i]);
        return;
    }
    uint32_t cp;
    for (size_t i = 0; i < n;)
        i += uwdf_utf8_decode((const unsigned char *)s + i, n - i, &cp), put_cp(o, cp);
}

static void put_wide(struct uwdf_fmt_out *o, const WCHAR *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_cp(o, (uint32_t)s[i]);
}

/* ---- conversions ---- */

/* A field of count characters, padded to the width. */
static void pad_before(struct uwdf_fmt_out *o, const struct fmt_spec *sp, size_t count)
{
    if (!sp->left && sp->width > 0 && (size_t)sp->width > count)
        put_repeat(o, ' ', sp->width - (int)count);
}

static void pad_after(struct uwdf_fmt_out *o, const struct fmt_spec *sp, size_t count)
{
    if (sp->left && sp->width > 0 && (size_t)sp->width > count)
        put_repeat(o, ' ', sp->width - (int)count);
}

static void emit_narrow_string(struct uwdf_fmt_out *o, const struct fmt_spec *sp, const char *s, size_t n)
{
    if (sp->prec >= 0 && (size_t)sp->prec < n)
        n = (size_t)sp->prec;
    pad_before(o, sp, n);
    put_narrow(o, s, n);
    pad_after(o, sp, n);
}

static void emit_wide_string(struct uwdf_fmt_out *o, const struct fmt_spec *sp, const WCHAR *s, size_t n)
{
    if (sp->prec >= 0 && (size_t)sp->prec < n)
        n = (size_t)sp->prec;
    pad_before(o, sp, n);
    put_wide(o, s, n);
    pad_after(o, sp, n);
}

static size_t bounded_strlen(const char *s, int prec)
{
    return prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
}

static size_t bounded_wcslen(const WCHAR *s, int prec)
{
    return prec >= 0 ? wcsnlen(s, (size_t)prec) : wcslen(s);
}

static void emit_integer(struct uwdf_fmt_out *o, const struct fmt_spec *sp, uint64_t mag, bool negative,
                         bool is_signed, unsigned base, bool upper)
{
    const char *digit_set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char digits[64];
    int nd = 0;
    if (!(sp->prec == 0 && mag == 0))
        do {
            digits[nd++] = digit_set[mag % base];
            mag /= base;
        } while (mag);
    int zeros = sp->prec > nd ? sp->prec - nd : 0;
    char sign = negative ? '-' : is_signed && sp->plus ? '+' : is_signed && sp->space ? ' ' : 0;
    const char *prefix = "";
    if (sp->alt && base == 16 && nd > 0 && !(nd == 1 && digits[0] == '0'))
        prefix = upper ? "0X" : "0x";
    else if (sp->alt && base == 8 && zeros == 0 && (nd == 0 || digits[nd - 1] != '0'))
        prefix = "0";
    int len = (sign ? 1 : 0) + (int)strlen(prefix) + zeros + nd;
    if (sp->zero && !sp->left && sp->prec < 0 && sp->width > len) {
        zeros += sp->width - len;
        len = sp->width;
    }
    pad_before(o, sp, (size_t)len);
    if (sign)
        put_cp(o, (unsigned char)sign);
    put_narrow(o, prefix, strlen(prefix));
    put_repeat(o, '0', zeros);
    while (nd > 0)
        put_cp(o, (unsigned char)digits[--nd]);
    pad_after(o, sp, (size_t)len);
}

/* snprintf of one floating-point value with the C format cfmt, which has a
 * '*' for the width and a ".*" for the precision when the spec has them. */
static int float_print(char *buf, size_t cap, const char *cfmt, const struct fmt_spec *sp, long double ld, double d)
{
    bool big = sp->size == SIZE_LD;
    if (sp->width >= 0 && sp->prec >= 0)
        return big ? snprintf(buf, cap, cfmt, sp->width, sp->prec, ld) : snprintf(buf, cap, cfmt, sp->width, sp->prec, d);
    if (sp->width >= 0)
        return big ? snprintf(buf, cap, cfmt, sp->width, ld) : snprintf(buf, cap, cfmt, sp->width, d);
    if (sp->prec >= 0)
        return big ? snprintf(buf, cap, cfmt, sp->prec, ld) : snprintf(buf, cap, cfmt, sp->prec, d);
    return big ? snprintf(buf, cap, cfmt, ld) : snprintf(buf, cap, cfmt, d);
}

static void emit_float(struct uwdf_fmt_out *o, const struct fmt_spec *sp, char conv, va_list *ap)
{
    char cfmt[16], *p = cfmt;
    *p++ = '%';
    if (sp->left)
        *p++ = '-';
    if (sp->plus)
        *p++ = '+';
    if (sp->space)
        *p++ = ' ';
    if (sp->alt)
        *p++ = '#';
    if (sp->zero)
        *p++ = '0';
    if (sp->width >= 0)
        *p++ = '*';
    if (sp->prec >= 0) {
        *p++ = '.';
        *p++ = '*';
    }
    if (sp->size == SIZE_LD)
        *p++ = 'L';
    *p++ = conv;
    *p = '\0';
    long double ld = 0;
    double d = 0;
    if (sp->size == SIZE_LD)
        ld = va_arg(*ap, long double);
    else
        d = va_arg(*ap, double);
    char small[256];
    char *text = small;
    int n = float_print(small, sizeof(small), cfmt, sp, ld, d);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        text = uwdf_alloc((size_t)n + 1);
        if (!text) {
            o->truncated = true;
            return;
        }
        float_print(text, (size_t)n + 1, cfmt, sp, ld, d);
    }
    put_narrow(o, text, (size_t)n);
    if (text != small)
        uwdf_free(text);
}

static int64_t arg_signed(const struct fmt_spec *sp, va_list *ap)
{
    switch (sp->size) {
    case SIZE_HH:
        return (signed char)va_arg(*ap, int);
    case SIZE_H:
        return (short)va_arg(*ap, int);
    case SIZE_LL:
    case SIZE_LD:
        return va_arg(*ap, long long);
    case SIZE_PTR:
        return (int64_t)va_arg(*ap, intptr_t);
    default: /* none, l, I32: 32 bits, as Windows passes a LONG */
        return va_arg(*ap, int);
    }
}

static uint64_t arg_unsigned(const struct fmt_spec *sp, va_list *ap)
{
    switch (sp->size) {
    case SIZE_HH:
        return (unsigned char)va_arg(*ap, unsigned);
    case SIZE_H:
        return (unsigned short)va_arg(*ap, unsigned);
    case SIZE_LL:
    case SIZE_LD:
        return va_arg(*ap, unsigned long long);
    case SIZE_PTR:
        return (uint64_t)va_arg(*ap, uintptr_t);
    default:
        return va_arg(*ap, unsigned);
    }
}

/* Whether a string or character conversion is wide: the letter's own
 * meaning flips between narrow and wide formats (s/c/Z are the format's
 * width, S/C the other one), and h / l / w override it. */
static bool conversion_is_wide(bool fmt_wide, bool upper_letter, enum fmt_size size)
{
    if (size == SIZE_H || size == SIZE_HH)
        return false;
    if (size == SIZE_L || size == SIZE_W)
        return true;
    return fmt_wide != upper_letter;
}

static const char null_text[] = "(null)";

static void emit_counted(struct uwdf_fmt_out *o, const struct fmt_spec *sp, bool wide, va_list *ap)
{
    if (wide) {
        PCUNICODE_STRING us = va_arg(*ap, PCUNICODE_STRING);
        if (!us || !us->Buffer)
            emit_narrow_string(o, sp, null_text, sizeof(null_text) - 1);
        else
            emit_wide_string(o, sp, us->Buffer, us->Length / sizeof(WCHAR));
        return;
    }
    PCANSI_STRING as = va_arg(*ap, PCANSI_STRING);
    if (!as || !as->Buffer)
        emit_narrow_string(o, sp, null_text, sizeof(null_text) - 1);
    else
        emit_narrow_string(o, sp, as->Buffer, as->Length);
}

/* ---- the format ---- */

static uint32_t fmt_at(const void *fmt, bool wide, size_t i)
{
    return wide ? (uint32_t)((const WCHAR *)fmt)[i] : ((const unsigned char *)fmt)[i];
}

static int parse_number(const void *fmt, bool wide, size_t *i)
{
    int v = 0;
    uint32_t c;
    while ((c = fmt_at(fmt, wide, *i)) >= '0' && c <= '9') {
        if (v < 100000000)
            v = v * 10 + (int)(c - '0');
        (*i)++;
    }
    return v;
}

static enum fmt_size parse_size(const void *fmt, bool wide, size_t *i)
{
    uint32_t c = fmt_at(fmt, wide, *i);
    switch (c) {
    case 'h':
        (*i)++;
        if (fmt_at(fmt, wide, *i) == 'h') {
            (*i)++;
            return SIZE_HH;
        }
        return SIZE_H;
    case 'l':
        (*i)++;
        if (fmt_at(fmt, wide, *i) == 'l') {
            (*i)++;
            return SIZE_LL;
        }
        return SIZE_L;
    case 'w':
        (*i)++;
        return SIZE_W;
    case 'L':
        (*i)++;
        return SIZE_LD;
    case 'z':
    case 't':
    case 'j':
        (*i)++;
        return c == 'j' ? SIZE_LL : SIZE_PTR;
    case 'I':
        (*i)++;
        if (fmt_at(fmt, wide, *i) == '6' && fmt_at(fmt, wide, *i + 1) == '4') {
            *i += 2;
            return SIZE_LL;
        }
        if (fmt_at(fmt, wide, *i) == '3' && fmt_at(fmt, wide, *i + 1) == '2') {
            *i += 2;
            return SIZE_L;
        }
        return SIZE_PTR;
    default:
        return SIZE_NONE;
    }
}

/* Copy the units [from, to) of the format as they are. */
static void put_format_units(struct uwdf_fmt_out *o, const void *fmt, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++) {
        uint32_t c = fmt_at(fmt, o->wide, k);
        if (o->wide)
            put_cp(o, c);
        else
            put_byte(o, (unsigned char)c);
    }
}

bool uwdf_fmt_v(struct uwdf_fmt_out *out, const void *fmt, va_list ap_in)
{
    va_list ap;
    va_copy(ap, ap_in);
    bool wide = out->wide;
    bool ok = true;
    size_t i = 0;
    uint32_t c;
    while ((c = fmt_at(fmt, wide, i)) != 0 && !out->truncated) {
        if (c != '%') {
            put_format_units(out, fmt, i, i + 1);
            i++;
            continue;
        }
        size_t start = i++;
        struct fmt_spec sp = { .width = -1, .prec = -1 };
        for (;; i++) {
            c = fmt_at(fmt, wide, i);
            if (c == '-')
                sp.left = true;
            else if (c == '+')
                sp.plus = true;
            else if (c == ' ')
                sp.space = true;
            else if (c == '#')
                sp.alt = true;
            else if (c == '0')
                sp.zero = true;
            else
                break;
        }
        if (fmt_at(fmt, wide, i) == '*') {
            i++;
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = true;
                sp.width = -sp.width;
            }
        } else if (fmt_at(fmt, wide, i) >= '0' && fmt_at(fmt, wide, i) <= '9') {
            sp.width = parse_number(fmt, wide, &i);
        }
        if (fmt_at(fmt, wide, i) == '.') {
            i++;
            if (fmt_at(fmt, wide, i) == '*') {
                i++;
                sp.prec = va_arg(ap, int);
                if (sp.prec < 0)
                    sp.prec = -1;
            } else {
                sp.prec = parse_number(fmt, wide, &i);
            }
        }
        sp.size = parse_size(fmt, wide, &i);
        c = fmt_at(fmt, wide, i);
        if (c == 0) { /* a lone '%' at the end */
            put_format_units(out, fmt, start, i);
            break;
        }
        i++;
        switch (c) {
        case '%':
            put_cp(out, '%');
            break;
        case 'd':
        case 'i': {
            int64_t v = arg_signed(&sp, &ap);
            emit_integer(out, &sp, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0, true, 10, false);
            break;
        }
        case 'u':
            emit_integer(out, &sp, arg_unsigned(&sp, &ap), false, false, 10, false);
            break;
        case 'o':
            emit_integer(out, &sp, arg_unsigned(&sp, &ap), false, false, 8, false);
            break;
        case 'x':
        case 'X':
            emit_integer(out, &sp, arg_unsigned(&sp, &ap), false, false, 16, c == 'X');
            break;
        case 'p': {
            uint64_t v = (uint64_t)(uintptr_t)va_arg(ap, void *);
            sp.prec = (int)(2 * sizeof(void *));
            emit_integer(out, &sp, v, false, false, 16, true);
            break;
        }
        case 'c':
        case 'C': {
            int ch = va_arg(ap, int);
            if (conversion_is_wide(wide, c == 'C', sp.size)) {
                WCHAR w = (WCHAR)ch;
                sp.prec = -1;
                emit_wide_string(out, &sp, &w, 1);
            } else {
                char n = (char)ch;
                sp.prec = -1;
                emit_narrow_string(out, &sp, &n, 1);
            }
            break;
        }
        case 's':
        case 'S':
            if (conversion_is_wide(wide, c == 'S', sp.size)) {
                const WCHAR *s = va_arg(ap, const WCHAR *);
                if (!s)
                    emit_narrow_string(out, &sp, null_text, sizeof(null_text) - 1);
                else
                    emit_wide_string(out, &sp, s, bounded_wcslen(s, sp.prec));
            } else {
                const char *s = va_arg(ap, const char *);
                if (!s)
                    s = null_text;
                emit_narrow_string(out, &sp, s, bounded_strlen(s, sp.prec));
            }
            break;
        case 'Z':
            emit_counted(out, &sp, conversion_is_wide(wide, false, sp.size), &ap);
            break;
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 'a':
        case 'A':
            emit_float(out, &sp, (char)c, &ap);
            break;
        case 'n':
            /* Writing through an argument is refused, as Microsoft's C
             * library refuses it by default. */
            (void)va_arg(ap, void *);
            ok = false;
            goto done;
        default: /* not a conversion: print it as written */
            put_format_units(out, fmt, start, i);
            break;
        }
    }
done:
    va_end(ap);
    return ok;
}
