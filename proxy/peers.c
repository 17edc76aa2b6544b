#include "proxy/peers.h"

#include <string.h>

#include "common/alloc.h"
#include "common/str.h"

#define NBUCKETS 1024

typedef struct peer {
    struct peer *next;
    unsigned count;
    char ip[48];
} peer;

struct proxy_peers {
    peer *buckets[NBUCKETS];
};

static unsigned bucket_of(const char *ip)
{
    return (unsigned)(px_fnv1a64(ip, strlen(ip)) % NBUCKETS);
}

proxy_peers_t *proxy_peers_create(void)
{
    return px_calloc(1, sizeof(proxy_peers_t));
}

void proxy_peers_destroy(proxy_peers_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        peer *e = p->buckets[i];
        while (e != NULL) {
            peer *next = e->next;
            px_free(e);
            e = next;
        }
    }
    px_free(p);
}

static peer *find(const proxy_peers_t *p, const char *ip, unsigned b)
{
    for (peer *e = p->buckets[b]; e != NULL; e = e->next)
        if (strcmp(e->ip, ip) == 0)
            return e;
    return NULL;
}

int proxy_peers_acquire(proxy_peers_t *p, const char *ip, unsigned max)
{
    unsigned b = bucket_of(ip);
    peer *e = find(p, ip, b);
    if (e == NULL) {
        if (max == 0 || strlen(ip) >= sizeof(e->ip))
            return -1;
        e = px_calloc(1, sizeof(*e));
        if (e == NULL)
            return -1;
        memcpy(e->ip, ip, strlen(ip) + 1);
        e->next = p->buckets[b];
        p->buckets[b] = e;
    }
    if (e->count >= max)
        return -1;
    e->count++;
    return 0;
}

void proxy_peers_release(proxy_peers_t *p, const char *ip)
{
    unsigned b = bucket_of(ip);
    peer **pp = &p->buckets[b];
    while (*pp != NULL && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    peer *e = *pp;
    if (e == NULL)
        return;
    if (--e->count == 0) {
        *pp = e->next;
        px_free(e);
    }
}

unsigned proxy_peers_count(const proxy_peers_t *p, const char *ip)
{
    const peer *e = find(p, ip, bucket_of(ip));
    return e == NULL ? 0 : e->count;
}
