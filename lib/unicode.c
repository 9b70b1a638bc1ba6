/* Text conversion the framework needs itself: names arrive as
 * UNICODE_STRINGs (WCHAR is a UTF-32 wchar_t) and the kernel takes bytes. */
#include "runtime.h"

char *uwdf_unicode_to_utf8(PCUNICODE_STRING name)
{
    size_t n = name->Length / sizeof(WCHAR);
    char *out = uwdf_alloc(n * 4 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)name->Buffer[i];
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xE0 | (c >> 12));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (c >> 18));
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = '\0';
    return out;
}
