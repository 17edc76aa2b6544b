#include "proxy/retransmit.h"

#include <string.h>

#include "common/alloc.h"

struct proxy_rtx {
    size_t capacity;
    size_t count;
    size_t answered;
    size_t nbuckets; /* a power of two */
    proxy_rtx_entry **buckets;
    proxy_rtx_entry *oldest, *newest;
};

#define KEY_SEP '\x1f'

/* Builds the joined key into dst (size cap); returns its length, or 0 when it does not fit. */
static size_t key_build(char *dst, size_t cap, uint32_t feed, px_str app, px_str facility,
                        px_str control_id)
{
    size_t need = sizeof(feed) + 3 + app.len + facility.len + control_id.len;
    if (need > cap)
        return 0;
    size_t o = 0;
    memcpy(dst, &feed, sizeof(feed));
    o += sizeof(feed);
    const px_str parts[3] = {app, facility, control_id};
    for (int i = 0; i < 3; i++) {
        dst[o++] = KEY_SEP;
        if (parts[i].len > 0)
            memcpy(dst + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
    }
    return o;
}

px_err proxy_rtx_create(size_t capacity, proxy_rtx_t **out, px_error *err)
{
    *out = NULL;
    proxy_rtx_t *w = px_calloc(1, sizeof(*w));
    if (w == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the retransmission window");
    w->capacity = capacity == 0 ? 1 : capacity;
    w->nbuckets = 64;
    while (w->nbuckets < w->capacity * 2 && w->nbuckets < ((size_t)1 << 24))
        w->nbuckets <<= 1;
    w->buckets = px_calloc(w->nbuckets, sizeof(*w->buckets));
    if (w->buckets == NULL) {
        px_free(w);
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the retransmission window");
    }
    *out = w;
    return PX_OK;
}

static void entry_free(proxy_rtx_entry *e)
{
    px_free((void *)e->ack.ptr);
    px_free(e);
}

void proxy_rtx_destroy(proxy_rtx_t *w)
{
    if (w == NULL)
        return;
    proxy_rtx_entry *e = w->oldest;
    while (e != NULL) {
        proxy_rtx_entry *next = e->newer;
        entry_free(e);
        e = next;
    }
    px_free(w->buckets);
    px_free(w);
}

static proxy_rtx_entry *lookup(proxy_rtx_t *w, const char *key, size_t len, uint64_t h)
{
    for (proxy_rtx_entry *e = w->buckets[h & (w->nbuckets - 1)]; e != NULL; e = e->next_in_bucket)
        if (e->key_hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

proxy_rtx_entry *proxy_rtx_find(proxy_rtx_t *w, uint32_t feed, px_str app, px_str facility,
                                px_str control_id)
{
    char key[1024];
    size_t len = key_build(key, sizeof(key), feed, app, facility, control_id);
    if (len == 0)
        return NULL; /* keys this long are never stored either */
    return lookup(w, key, len, px_fnv1a64(key, len));
}

static void unlink_entry(proxy_rtx_t *w, proxy_rtx_entry *e)
{
    proxy_rtx_entry **pp = &w->buckets[e->key_hash & (w->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next_in_bucket;
    *pp = e->next_in_bucket;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        w->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        w->newest = e->older;
    w->count--;
    if (e->state == PROXY_RTX_ANSWERED)
        w->answered--;
}

void proxy_rtx_remove(proxy_rtx_t *w, proxy_rtx_entry *e)
{
    unlink_entry(w, e);
    entry_free(e);
}

/* Drops the oldest answered entries while more than capacity are answered. */
static void evict(proxy_rtx_t *w)
{
    proxy_rtx_entry *e = w->oldest;
    while (w->answered > w->capacity && e != NULL) {
        proxy_rtx_entry *next = e->newer;
        if (e->state == PROXY_RTX_ANSWERED)
            proxy_rtx_remove(w, e);
        e = next;
    }
}

proxy_rtx_entry *proxy_rtx_insert(proxy_rtx_t *w, uint32_t feed, px_str app, px_str facility,
                                  px_str control_id, const uint8_t hash[PROXY_HASH_LEN],
                                  int64_t message_id)
{
    char key[1024];
    size_t len = key_build(key, sizeof(key), feed, app, facility, control_id);
    if (len == 0)
        return NULL;
    uint64_t h = px_fnv1a64(key, len);
    proxy_rtx_entry *old = lookup(w, key, len, h);
    if (old != NULL)
        proxy_rtx_remove(w, old);
    proxy_rtx_entry *e = px_calloc(1, sizeof(*e) + len);
    if (e == NULL)
        return NULL;
    memcpy(e->key, key, len);
    e->key_len = len;
    e->key_hash = h;
    e->message_id = message_id;
    memcpy(e->hash, hash, PROXY_HASH_LEN);
    e->state = PROXY_RTX_IN_FLIGHT;
    proxy_rtx_entry **bucket = &w->buckets[h & (w->nbuckets - 1)];
    e->next_in_bucket = *bucket;
    *bucket = e;
    e->older = w->newest;
    if (w->newest != NULL)
        w->newest->newer = e;
    else
        w->oldest = e;
    w->newest = e;
    w->count++;
    return e;
}

px_err proxy_rtx_answer(proxy_rtx_t *w, proxy_rtx_entry *e, px_str ack)
{
    char *copy = px_malloc(ack.len + 1);
    if (copy == NULL)
        return PX_ERR_NOMEM;
    if (ack.len > 0)
        memcpy(copy, ack.ptr, ack.len);
    px_free((void *)e->ack.ptr);
    e->ack = px_str_make(copy, ack.len);
    if (e->state != PROXY_RTX_ANSWERED) {
        e->state = PROXY_RTX_ANSWERED;
        w->answered++;
    }
    evict(w);
    return PX_OK;
}

size_t proxy_rtx_count(const proxy_rtx_t *w)
{
    return w->count;
}
