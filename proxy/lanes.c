#include "proxy/lanes.h"

#include <string.h>

#include "common/alloc.h"

#define NBUCKETS 4096

struct proxy_lane_ref {
    proxy_lane_ref *next;
    proxy_up_lane *lane;
    unsigned uses;
    size_t key_len;
    char key[];
};

struct proxy_lanes {
    proxy_upstream_t *u;
    size_t count;
    proxy_lane_ref *buckets[NBUCKETS];
};

static size_t bucket_of(px_str key)
{
    return (size_t)(px_fnv1a64(key.ptr, key.len) % NBUCKETS);
}

proxy_lanes_t *proxy_lanes_create(proxy_upstream_t *u)
{
    proxy_lanes_t *l = px_calloc(1, sizeof(*l));
    if (l != NULL)
        l->u = u;
    return l;
}

void proxy_lanes_destroy(proxy_lanes_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        proxy_lane_ref *r = l->buckets[i];
        while (r != NULL) {
            proxy_lane_ref *next = r->next;
            proxy_upstream_lane_release(r->lane);
            px_free(r);
            r = next;
        }
    }
    px_free(l);
}

proxy_lane_ref *proxy_lanes_acquire(proxy_lanes_t *l, px_str key)
{
    size_t b = bucket_of(key);
    for (proxy_lane_ref *r = l->buckets[b]; r != NULL; r = r->next) {
        if (r->key_len == key.len && memcmp(r->key, key.ptr, key.len) == 0) {
            r->uses++;
            return r;
        }
    }
    proxy_lane_ref *r = px_malloc(sizeof(*r) + key.len);
    if (r == NULL)
        return NULL;
    r->lane = proxy_upstream_lane_create(l->u);
    if (r->lane == NULL) {
        px_free(r);
        return NULL;
    }
    if (key.len > 0)
        memcpy(r->key, key.ptr, key.len);
    r->key_len = key.len;
    r->uses = 1;
    r->next = l->buckets[b];
    l->buckets[b] = r;
    l->count++;
    return r;
}

proxy_up_lane *proxy_lane_ref_lane(const proxy_lane_ref *r)
{
    return r->lane;
}

void proxy_lanes_release(proxy_lanes_t *l, proxy_lane_ref *r)
{
    if (--r->uses > 0)
        return;
    proxy_lane_ref **pp = &l->buckets[bucket_of(px_str_make(r->key, r->key_len))];
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    l->count--;
    proxy_upstream_lane_release(r->lane);
    px_free(r);
}

size_t proxy_lanes_count(const proxy_lanes_t *l)
{
    return l->count;
}
