#include "common/msg.h"

#include <stdatomic.h>
#include <string.h>

#include "common/alloc.h"

struct px_msg {
    atomic_uint refs;
    size_t len;
    char data[]; /* len bytes, then a NUL */
};

px_err px_msg_create(const char *ptr, size_t len, px_msg_t **out, px_error *err)
{
    *out = NULL;
    if (len > SIZE_MAX - sizeof(px_msg_t) - 1)
        return px_error_set(err, PX_ERR_TOO_LARGE, "message of %zu bytes", len);
    px_msg_t *m = px_malloc(sizeof(*m) + len + 1);
    if (m == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for a %zu-byte message", len);
    atomic_init(&m->refs, 1);
    m->len = len;
    if (len > 0)
        memcpy(m->data, ptr, len);
    m->data[len] = '\0';
    *out = m;
    return PX_OK;
}

px_msg_t *px_msg_ref(px_msg_t *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void px_msg_unref(px_msg_t *m)
{
    if (m == NULL)
        return;
    /* Release on the decrement, acquire before freeing: the freeing thread must see every
     * other thread's last use (the usual refcount pattern). */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        px_free(m);
    }
}

px_str px_msg_bytes(const px_msg_t *m)
{
    return px_str_make(m->data, m->len);
}

unsigned px_msg_refcount(const px_msg_t *m)
{
    return atomic_load_explicit(&((px_msg_t *)m)->refs, memory_order_relaxed);
}
