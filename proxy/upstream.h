/* The legacy leg's upstream: a pool of MLLP connections to one EHR port.
 *
 * One message is outstanding per connection (many EHR ports accept only one connection and
 * answer strictly in turn). Requests are grouped in lanes: a lane delivers its requests one
 * at a time, in order — a lane per sender connection gives exactly the order a direct
 * connection gives the EHR — while different lanes share the pool in parallel.
 *
 * After an ACK timeout the connection is reset, so a late ACK can never be matched to the
 * next message; the request ends PROXY_UP_UNKNOWN (the EHR may have filed it). Connection
 * failures feed a circuit breaker; while it is open, requests end PROXY_UP_DOWN at once.
 *
 * Loop thread only. */
#ifndef PX_PROXY_UPSTREAM_H
#define PX_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/error.h"
#include "common/msg.h"
#include "common/str.h"
#include "hl7/ack.h"

typedef struct proxy_upstream proxy_upstream_t;
typedef struct proxy_up_lane proxy_up_lane;

typedef struct proxy_upstream_opts {
    const char *name; /* borrowed for the upstream's life */
    const char *host; /* numeric IPv4/IPv6 address or a name resolved with uv_getaddrinfo */
    int port;
    unsigned pool; /* connections, >= 1 */
    uint64_t connect_timeout_ms;
    uint64_t ack_timeout_ms;
    bool require_msa2_echo; /* an ACK whose MSA-2 differs is refused as an anomaly */
    uint64_t reconnect_min_ms;
    uint64_t reconnect_max_ms;
    unsigned breaker_failures; /* consecutive failures that open the breaker */
    uint64_t breaker_open_ms;
    size_t max_message_bytes; /* largest ACK / message accepted from the EHR */
} proxy_upstream_opts;

typedef enum proxy_up_outcome {
    PROXY_UP_ACKED,     /* an ACK echoing the control id arrived (ack, code set) */
    PROXY_UP_ANOMALY,   /* the answer was not a usable ACK (garbage, no MSA, wrong MSA-2) */
    PROXY_UP_UNKNOWN,   /* sent, but no answer: ACK timeout or the EHR closed mid-ACK */
    PROXY_UP_DOWN,      /* never sent: no connection (refused, breaker open) */
    PROXY_UP_CANCELLED, /* never sent: the upstream is shutting down */
} proxy_up_outcome;

typedef struct proxy_up_result {
    proxy_up_outcome outcome;
    px_str ack; /* the EHR's answer frame (borrowed for the callback), may be empty */
    bool code_valid;
    hl7_ack_code code;   /* MSA-1, when code_valid */
    bool msa2_mismatch;  /* MSA-2 did not echo MSH-10 (relayed anyway when not required) */
    uint64_t latency_us; /* write start to ACK */
    unsigned attempt;    /* 1 for the first send */
    const char *reason;  /* static text for logs and the ledger; never PHI */
} proxy_up_result;

typedef struct proxy_up_req proxy_up_req;
typedef void (*proxy_up_done_cb)(proxy_up_req *req, const proxy_up_result *res);

/* A delivery request, embedded in its owner. The owner keeps it alive until done runs. */
struct proxy_up_req {
    px_msg_t *msg;     /* the message bytes (unframed); a reference is held while queued */
    px_str control_id; /* MSH-10, a view into msg, for the MSA-2 check */
    bool enhanced;     /* the message asked for enhanced-mode ACKs (an app ACK may follow) */
    bool batch;        /* a whole batch: its answer (a batch of ACKs, or one ACK) is relayed
                          as it is; MSA-1 is read from its first MSA when there is one */
    proxy_up_done_cb done;
    void *data; /* owner's pointer */
    /* Private. */
    proxy_up_req *next;
    proxy_up_lane *lane;
    uint64_t queued_at_us;
};

/* Answers the EHR sends that are not the ACK awaited (an enhanced-mode application ACK,
 * which arrives later as a message of its own). Returns true when the owner took it, false
 * to treat it as an anomaly. */
typedef bool (*proxy_up_unsolicited_cb)(proxy_upstream_t *u, px_str frame, void *arg);

/* Creates the pool and starts connecting. opts is copied (strings borrowed).
 * PX_ERR_NOMEM / PX_ERR_INVAL. */
px_err proxy_upstream_create(uv_loop_t *loop, const proxy_upstream_opts *opts,
                             proxy_up_unsolicited_cb on_unsolicited, void *arg,
                             proxy_upstream_t **out, px_error *err);

/* Ends every queued request PROXY_UP_CANCELLED, waits for in-flight ones to end (they end
 * PROXY_UP_UNKNOWN when their connection closes), closes all handles and frees the pool;
 * then calls cb (may be NULL). */
void proxy_upstream_close(proxy_upstream_t *u, void (*cb)(void *arg), void *arg);

/* A new lane. Owned by the caller: release it with proxy_upstream_lane_release when done;
 * it is freed once released and empty. NULL on PX_ERR_NOMEM. */
proxy_up_lane *proxy_upstream_lane_create(proxy_upstream_t *u);
void proxy_upstream_lane_release(proxy_up_lane *lane);

/* Queues req on lane. req->done always runs later (never inside this call). */
void proxy_upstream_submit(proxy_upstream_t *u, proxy_up_lane *lane, proxy_up_req *req);

/* Sends a frame on any connected connection without waiting for an answer (a commit ACK
 * back to the EHR for its application ACK). Returns PX_ERR_CLOSED when none is connected. */
px_err proxy_upstream_send_unsolicited(proxy_upstream_t *u, px_str frame);

/* Figures for /metrics and /readyz. */
typedef struct proxy_upstream_stats {
    unsigned connected; /* connections up */
    unsigned busy;      /* connections with a message outstanding */
    bool breaker_open;
    uint64_t queued; /* requests waiting */
    uint64_t sent, acked, anomalies, timeouts, down, connect_failures;
} proxy_upstream_stats;

void proxy_upstream_stats_get(const proxy_upstream_t *u, proxy_upstream_stats *out);
const char *proxy_upstream_name(const proxy_upstream_t *u);

#endif
