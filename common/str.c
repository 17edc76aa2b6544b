#include "common/str.h"

#include <string.h>

px_str px_str_from_cstr(const char *s)
{
    return s == NULL ? PX_STR_NULL : px_str_make(s, strlen(s));
}

bool px_str_eq(px_str a, px_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool px_str_eq_nocase(px_str a, px_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower(a.ptr[i]) != ascii_lower(b.ptr[i]))
            return false;
    return true;
}

bool px_str_eq_cstr(px_str a, const char *b)
{
    return px_str_eq(a, px_str_from_cstr(b));
}

bool px_str_starts_with(px_str s, px_str prefix)
{
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

px_str px_str_sub(px_str s, size_t start, size_t len)
{
    if (start >= s.len)
        return px_str_make(s.ptr == NULL ? NULL : s.ptr + s.len, 0);
    if (len > s.len - start)
        len = s.len - start;
    return px_str_make(s.ptr + start, len);
}

px_str px_str_trim(px_str s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

ptrdiff_t px_str_find_byte(px_str s, char c)
{
    if (s.len == 0)
        return -1;
    const char *p = memchr(s.ptr, c, s.len);
    return p == NULL ? -1 : p - s.ptr;
}

bool px_str_glob(px_str pattern, px_str s)
{
    /* Iterative matcher with one backtrack point: linear in practice, no recursion. */
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < s.len) {
        if (p < pattern.len && (pattern.ptr[p] == '?' || pattern.ptr[p] == s.ptr[i])) {
            p++;
            i++;
        } else if (p < pattern.len && pattern.ptr[p] == '*') {
            star_p = p++;
            star_i = i;
        } else if (star_p != SIZE_MAX) {
            p = star_p + 1;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (p < pattern.len && pattern.ptr[p] == '*')
        p++;
    return p == pattern.len;
}

px_err px_str_to_u64(px_str s, uint64_t max, uint64_t *out)
{
    if (s.len == 0)
        return PX_ERR_PARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < '0' || c > '9')
            return PX_ERR_PARSE;
        unsigned d = c - '0';
        if (d > max || v > (max - d) / 10)
            return PX_ERR_PARSE;
        v = v * 10 + d;
    }
    *out = v;
    return PX_OK;
}

char *px_str_to_cbuf(px_str s, char *dst, size_t dst_size)
{
    if (dst_size == 0)
        return dst;
    size_t n = s.len < dst_size - 1 ? s.len : dst_size - 1;
    if (n > 0)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return dst;
}

uint64_t px_fnv1a64(const void *ptr, size_t len)
{
    const unsigned char *p = ptr;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
