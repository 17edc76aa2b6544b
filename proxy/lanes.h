/* Upstream lanes per ordering key value (ordering: {"key": "PID-3.1"}): messages with the
 * same key reach the EHR one at a time in arrival order, different keys in parallel.
 * An entry lives while messages use it. Loop thread only. */
#ifndef PX_PROXY_LANES_H
#define PX_PROXY_LANES_H

#include <stddef.h>

#include "common/str.h"
#include "proxy/upstream.h"

typedef struct proxy_lanes proxy_lanes_t;
typedef struct proxy_lane_ref proxy_lane_ref;

proxy_lanes_t *proxy_lanes_create(proxy_upstream_t *u);
/* Frees the table; entries still in use are released (their lanes free themselves once
 * empty). */
void proxy_lanes_destroy(proxy_lanes_t *l);

/* The lane for key, holding one use of it (NULL on allocation failure). */
proxy_lane_ref *proxy_lanes_acquire(proxy_lanes_t *l, px_str key);
proxy_up_lane *proxy_lane_ref_lane(const proxy_lane_ref *r);
/* Drops one use; the last one releases the lane. */
void proxy_lanes_release(proxy_lanes_t *l, proxy_lane_ref *r);
size_t proxy_lanes_count(const proxy_lanes_t *l);

#endif
