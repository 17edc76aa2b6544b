#include "common/buf.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

void px_buf_init(px_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void px_buf_free(px_buf *b)
{
    px_free(b->data);
    px_buf_init(b, b->max);
}

void px_buf_reset(px_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

px_err px_buf_reserve(px_buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return PX_ERR_TOO_LARGE;
    size_t need = b->len + extra + 1; /* +1 keeps room for the trailing NUL */
    if (need <= b->cap)
        return PX_OK;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = px_realloc(b->data, cap);
    if (p == NULL)
        return PX_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return PX_OK;
}

px_err px_buf_append(px_buf *b, const void *ptr, size_t len)
{
    px_err rc = px_buf_reserve(b, len);
    if (rc != PX_OK)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, ptr, len);
    b->len += len;
    b->data[b->len] = '\0';
    return PX_OK;
}

px_err px_buf_append_str(px_buf *b, px_str s)
{
    return px_buf_append(b, s.ptr, s.len);
}

px_err px_buf_append_cstr(px_buf *b, const char *s)
{
    return px_buf_append(b, s, strlen(s));
}

px_err px_buf_append_byte(px_buf *b, char c)
{
    return px_buf_append(b, &c, 1);
}

px_err px_buf_vappendf(px_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        va_end(again);
        return PX_ERR_INVAL;
    }
    px_err rc = px_buf_reserve(b, (size_t)n);
    if (rc == PX_OK) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return rc;
}

px_err px_buf_appendf(px_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_err rc = px_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void px_buf_consume(px_buf *b, size_t n)
{
    if (n >= b->len) {
        px_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *px_buf_steal(px_buf *b, size_t *len)
{
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    px_buf_init(b, b->max);
    return p;
}
