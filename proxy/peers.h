/* Connection counts per peer address, for the per-peer cap. Loop thread only. */
#ifndef PX_PROXY_PEERS_H
#define PX_PROXY_PEERS_H

#include <stddef.h>

typedef struct proxy_peers proxy_peers_t;

proxy_peers_t *proxy_peers_create(void);
void proxy_peers_destroy(proxy_peers_t *p);

/* Adds one connection for ip unless it already has max; returns 0 when counted, -1 when
 * the cap is reached or memory ran out. */
int proxy_peers_acquire(proxy_peers_t *p, const char *ip, unsigned max);
void proxy_peers_release(proxy_peers_t *p, const char *ip);
unsigned proxy_peers_count(const proxy_peers_t *p, const char *ip);

#endif
