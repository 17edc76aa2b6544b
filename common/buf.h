/* A growable byte buffer with a hard maximum (curl's dynbuf): appending past max fails
 * with PX_ERR_TOO_LARGE instead of growing without bound.
 *
 * Invariants: len <= cap <= max; data is NULL iff cap == 0; when cap > len the byte at
 * data[len] is NUL (so text output can be printed), which is not counted in len. */
#ifndef PX_COMMON_BUF_H
#define PX_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/error.h"
#include "common/str.h"

typedef struct px_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} px_buf;

/* An empty buffer that may grow to max bytes (no allocation yet). */
void px_buf_init(px_buf *b, size_t max);

/* Frees the storage and leaves an empty buffer with the same max. */
void px_buf_free(px_buf *b);

/* Forgets the content, keeping the storage. */
void px_buf_reset(px_buf *b);

/* Makes room for `extra` more bytes (plus a NUL). PX_ERR_TOO_LARGE past max,
 * PX_ERR_NOMEM when allocation fails; the buffer is unchanged on failure. */
px_err px_buf_reserve(px_buf *b, size_t extra);

px_err px_buf_append(px_buf *b, const void *ptr, size_t len);
px_err px_buf_append_str(px_buf *b, px_str s);
px_err px_buf_append_cstr(px_buf *b, const char *s);
px_err px_buf_append_byte(px_buf *b, char c);
px_err px_buf_appendf(px_buf *b, const char *fmt, ...) PX_PRINTF(2, 3);
px_err px_buf_vappendf(px_buf *b, const char *fmt, va_list ap) PX_PRINTF(2, 0);

/* Removes the first n bytes (clamped to len), moving the rest to the front. */
void px_buf_consume(px_buf *b, size_t n);

/* A view of the content, valid until the buffer next changes. */
static inline px_str px_buf_view(const px_buf *b)
{
    return px_str_make(b->data, b->len);
}

/* Takes the storage out of the buffer (owned by the caller, free with px_free); the
 * buffer is left empty. May return NULL when the buffer never allocated. */
char *px_buf_steal(px_buf *b, size_t *len);

#endif
