/* Byte-string views: a pointer and a length, never NUL-terminated, never freed. */
#ifndef PX_COMMON_STR_H
#define PX_COMMON_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct px_str {
    const char *ptr;
    size_t len;
} px_str;

/* A view of a string literal: PX_LIT("MSH"). */
#define PX_LIT(s)   ((px_str){(s), sizeof(s) - 1})
#define PX_STR_NULL ((px_str){NULL, 0})

/* A view of a NUL-terminated C string (NULL gives the empty view). */
px_str px_str_from_cstr(const char *s);

static inline px_str px_str_make(const char *ptr, size_t len)
{
    return (px_str){ptr, len};
}

static inline bool px_str_empty(px_str s)
{
    return s.len == 0;
}

/* Byte-wise equality. */
bool px_str_eq(px_str a, px_str b);

/* ASCII case-insensitive equality. */
bool px_str_eq_nocase(px_str a, px_str b);

/* Equality with a NUL-terminated C string. */
bool px_str_eq_cstr(px_str a, const char *b);

bool px_str_starts_with(px_str s, px_str prefix);

/* The sub-view [start, start + len), clamped to s. */
px_str px_str_sub(px_str s, size_t start, size_t len);

/* s without leading and trailing ASCII blanks (space, tab). */
px_str px_str_trim(px_str s);

/* Index of the first byte c in s, or -1. */
ptrdiff_t px_str_find_byte(px_str s, char c);

/* Glob match where `*` matches any run and `?` one byte; other bytes match themselves. */
bool px_str_glob(px_str pattern, px_str s);

/* Parses all of s as a decimal unsigned integer no larger than max.
 * Returns PX_ERR_PARSE on an empty view, a non-digit or overflow. */
px_err px_str_to_u64(px_str s, uint64_t max, uint64_t *out);

/* The 64-bit FNV-1a hash of len bytes (hash tables and config versions; not for security). */
uint64_t px_fnv1a64(const void *ptr, size_t len);

/* Copies s into dst (size dst_size) as a C string, truncating; returns dst. */
char *px_str_to_cbuf(px_str s, char *dst, size_t dst_size);

#endif
