/* The proxy's private structures, shared by server.c (life cycle, ledger glue, signals,
 * reload), listener.c (accept and sender connections), txn.c (one message's life: routing,
 * retransmission, legs and the ACK policy) and admin.c (HTTP figures).
 *
 * Everything here lives on the loop thread. */
#ifndef PX_PROXY_INTERNAL_H
#define PX_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/msg.h"
#include "hl7/ack.h"
#include "hl7/hl7.h"
#include "hl7/mllp.h"
#include "ledger/ledger.h"
#include "proxy/lanes.h"
#include "proxy/peers.h"
#include "proxy/proxy.h"
#include "proxy/retransmit.h"
#include "proxy/upstream.h"
#include "routing/config.h"
#include "routing/route.h"

typedef struct proxy_feed proxy_feed;
typedef struct proxy_conn proxy_conn;
typedef struct proxy_txn proxy_txn;
typedef struct proxy_admin proxy_admin;

/* Per-feed counters for /metrics. */
typedef struct proxy_feed_stats {
    uint64_t received;
    uint64_t acked[6]; /* by hl7_ack_code of the ACK sent */
    uint64_t refused;
    uint64_t held;
    uint64_t retransmits;
    uint64_t duplicates;
    uint64_t ledger_failures;
    uint64_t connections;
} proxy_feed_stats;

/* A store-and-forward queue of messages the legacy leg still owes the EHR (commit policy,
 * or queue while the EHR is down). Delivered in order, one at a time, retried with
 * backoff until the EHR answers. */
typedef struct proxy_sf_queue {
    proxy_txn *head, *tail;
    size_t count;
    proxy_txn *later_head, *later_tail; /* arrived during recovery: queued after it */
    uv_timer_t retry;
    uint64_t backoff_ms;
    bool sending;
    /* Deliveries the EHR answered whose outcome (outbox delete) is not yet durable: a crash
     * now would deliver them again, so the queue waits while too many pile up. */
    size_t unsettled;
} proxy_sf_queue;

struct proxy_feed {
    proxy_t *px;
    const route_feed *cfg; /* from px->cfg; replaced on reload */
    size_t index;
    uv_tcp_t listener;
    bool listening;
    proxy_rtx_t *rtx;
    proxy_upstream_t *upstream; /* borrowed from px */
    proxy_up_lane *feed_lane;   /* ordering: feed */
    proxy_lanes_t *key_lanes;   /* ordering: key */
    proxy_sf_queue sf;
    /* After a ledger failure every route of the feed runs ledger-first (nothing more is
     * forwarded unledgered) until a commit succeeds again. */
    bool ledger_first;
    proxy_feed_stats stats;
};

/* A sender connection. Lives until its handles are closed and no transaction refers to it. */
struct proxy_conn {
    proxy_t *px;
    proxy_feed *feed;
    uv_tcp_t tcp;
    uv_timer_t timer;        /* frame deadline, idle timeout or the hold bound */
    proxy_conn *prev, *next; /* px->conns */
    char peer[64];           /* "address:port" */
    char peer_ip[48];
    px_buf rbuf;
    hl7_mllp_decoder dec;
    proxy_txn *head, *tail;  /* transactions in arrival order (ACKs go out in this order) */
    unsigned inflight;       /* transactions not yet answered */
    proxy_up_lane *lane;     /* ordering: connection */
    uint64_t frame_start_ms; /* when the pending partial frame began (0: none) */
    uint64_t last_activity_ms;
    uint64_t write_since_ms; /* when unsent ACK bytes began to queue (0: none queued) */
    unsigned refs;           /* the handles (1 while open) + transactions attached */
    unsigned pending_closes;
    bool reading; /* uv_read_start is active */
    bool paused;  /* reading stopped for back-pressure */
    bool held;    /* the upstream is down under `hold`: read nothing more */
    bool closing;
    bool eof;          /* the sender half-closed: close once everything is answered */
    bool counted_peer; /* holds a slot in px->peers */
};

typedef enum txn_ledger_state {
    TXN_LEDGER_NONE,
    TXN_LEDGER_PENDING,
    TXN_LEDGER_OK,
    TXN_LEDGER_FAILED,
} txn_ledger_state;

typedef enum txn_legacy_state {
    TXN_LEGACY_NONE,    /* not for the legacy leg, or not yet sent */
    TXN_LEGACY_WAITING, /* waiting for the ledger (ledger-first) */
    TXN_LEGACY_SENT,
    TXN_LEGACY_DONE,
} txn_legacy_state;

/* One inbound message from arrival until it is answered and both its legs are recorded. */
struct proxy_txn {
    proxy_t *px;
    proxy_feed *feed;
    proxy_conn *conn;    /* NULL once the sender connection is gone */
    proxy_txn *next;     /* in conn's list */
    proxy_txn *sf_next;  /* in the feed's store-and-forward queue */
    route_config_t *cfg; /* the generation it runs under (a reference) */
    px_msg_t *msg;
    hl7_msh msh; /* views into msg */
    route_decision route;
    hl7_ack_mode ack_mode;
    int64_t id;
    int64_t received_at_ms;
    unsigned char hash[LEDGER_HASH_LEN];
    proxy_rtx_entry *rtx;   /* our retransmission entry, while in flight */
    proxy_txn *waiting_for; /* a resend waits for this original */
    proxy_txn *waiters;     /* resends waiting for this one (linked by waiter_next) */
    proxy_txn *waiter_next;
    txn_ledger_state ledger;
    txn_legacy_state legacy;
    proxy_up_req up;
    proxy_lane_ref *key_lane; /* ordering: key (one use held) */
    size_t batch_count;       /* messages in a batch frame (0: not a batch) */
    int64_t *batch_ids;       /* their ledger ids */
    px_str *batch_parts;      /* their bytes, views into msg */
    proxy_up_result up_res;   /* copy of the outcome (ack points into up_ack) */
    px_buf up_ack;
    unsigned attempts;
    px_buf ack;     /* the ACK to send the sender (unframed) */
    bool answered;  /* ack is final (may be empty: no answer under hold) */
    bool no_answer; /* answered with silence (hold) */
    bool ack_sent;  /* written to the socket (or the socket is gone) */
    bool ack_recorded;
    bool store_forward; /* legacy leg delivered from the queue after the sender's ACK */
    bool in_sf;
    bool settled;           /* legacy leg final and recorded */
    int pending;            /* outstanding callbacks (ledger ops, upstream, writes) */
    ledger_op_t *sf_record; /* the op recording a store-and-forward delivery, until durable */
    bool refused;           /* answered with a refusal: its record is the rejected row */
    bool retransmit;        /* a resend answered from the window, never forwarded */
    char refusal[160];      /* why refused or not forwarded (no PHI), for a retried record */
    proxy_txn *retry_next;  /* in px->record_retries */
    unsigned record_attempts;
};

/* Where an enhanced-mode application ACK from the EHR must go: the sender connection that
 * sent the original, and then the sender's commit ACK for it back to the EHR. */
typedef struct proxy_app_route {
    int state; /* 0 free, 1 waiting for the EHR's application ACK, 2 delivered to the sender */
    proxy_conn *conn;
    int64_t message;
    char control_id[64]; /* the original MSH-10 */
    char app_ack_id[64]; /* the application ACK's MSH-10, once delivered */
} proxy_app_route;

#define PROXY_APP_ROUTES 4096

struct proxy {
    uv_loop_t *loop;
    proxy_app_route *app_routes; /* PROXY_APP_ROUTES entries, reused round robin */
    size_t app_route_next;
    route_config_t *cfg;
    char *config_path;
    ledger_t *ledger;
    uv_async_t ledger_async;
    proxy_feed *feeds;
    size_t nfeeds;
    proxy_upstream_t **upstreams;
    size_t nupstreams;
    proxy_conn *conns; /* every open sender connection */
    size_t nconns;
    proxy_peers_t *peers;
    bool budget_paused; /* some connection stopped reading for the in-flight budget */
    uint64_t inflight_bytes;
    uint64_t txns_open;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    /* Records (rejected rows, leg outcomes, ACK bytes) whose write failed, e.g. while the
     * disk was full: written again every second until they are durable. */
    uv_timer_t record_retry;
    proxy_txn *record_retries;
    proxy_admin *admin;
    bool stopping;
    bool finishing; /* the final close has begun */
    bool freed;
    bool start_failed;
    bool started_handles;
    bool ledger_closed;
    int exit_status;
    unsigned pending_closes;
    uint64_t reloads, reload_failures;
    uint64_t refused_by_reason[8];
    uint64_t ack_seq; /* for the control ids of ACKs parallax builds */
};

/* Refusal reasons counted for /metrics (index into refused_by_reason). */
enum {
    PROXY_REFUSE_FRAMING,
    PROXY_REFUSE_OVERSIZE,
    PROXY_REFUSE_NO_MSH,
    PROXY_REFUSE_NO_CONTROL_ID,
    PROXY_REFUSE_FILTER,
    PROXY_REFUSE_DEADLINE,
    PROXY_REFUSE_LIMIT,
    PROXY_REFUSE_COUNT,
};

/* server.c */
uint64_t proxy_now_ms(const proxy_t *px);
int64_t proxy_wall_ms(void);
/* Submits op, created with txn as its user (NULL: fire and forget, failures logged), and
 * counts txn->pending. Returns the id of the op's first message (0 when none). */
int64_t proxy_ledger_submit(proxy_t *px, ledger_op_t *op, proxy_txn *txn);
void proxy_maybe_finish_stop(proxy_t *px);
void proxy_free_all(proxy_t *px);
/* True while queued rows of an earlier run are still being read back from the outbox. */
bool proxy_recovering(const proxy_t *px);
/* Asks for the next page of recovered rows when the queues run short. */
void proxy_recovery_poke(proxy_t *px);

/* listener.c */
px_err proxy_feed_listen(proxy_feed *f, px_error *err);
void proxy_feed_close_listener(proxy_feed *f);
void proxy_conn_close(proxy_conn *c, const char *why);
void proxy_conn_release(proxy_conn *c);
/* Writes the ACKs that are ready, in arrival order, and resumes reading when allowed. */
void proxy_conn_flush(proxy_conn *c);
void proxy_conn_hold(proxy_conn *c);
void proxy_conn_update_reading(proxy_conn *c);
/* Writes a frame to the sender outside the ACK order (an application ACK). */
void proxy_conn_send(proxy_conn *c, px_str frame);

/* txn.c */
/* Takes one whole frame (bytes borrowed for the call) received on c. */
void proxy_txn_frame(proxy_conn *c, px_str frame);
/* Refuses a frame that could not be decoded: a ledger row, no body, then the caller closes. */
void proxy_txn_refuse_unframed(proxy_conn *c, unsigned reason, const char *text);
void proxy_txn_ledger_done(proxy_txn *t, ledger_op_t *op);
void proxy_txn_detach(proxy_txn *t);
void proxy_txn_free(proxy_txn *t);
bool proxy_txn_on_unsolicited(proxy_upstream_t *u, px_str frame, void *arg);
void proxy_sf_init(proxy_feed *f);
void proxy_sf_close(proxy_feed *f);
/* Queues a store-and-forward row recovered from the outbox (its sender was answered by an
 * earlier run). */
px_err proxy_txn_recovered(proxy_feed *f, const ledger_outbox_row *row);
/* Recovery is over: queue what arrived meanwhile behind the recovered rows. */
void proxy_sf_release_later(proxy_feed *f);
/* Writes the records waiting in px->record_retries again (the retry timer, and the stop). */
void proxy_txn_retry_records(proxy_t *px);
/* Forgets the application-ACK routes of a connection that is going away. */
void proxy_app_routes_forget(proxy_t *px, proxy_conn *c);
/* Frees the loop-thread scratch (parser, digest context). */
void proxy_txn_cleanup(void);

/* admin.c */
px_err proxy_admin_start(proxy_t *px, const route_admin *cfg, proxy_admin **out, px_error *err);
void proxy_admin_close(proxy_admin *a);
bool proxy_ready(const proxy_t *px, char *why, size_t why_size);

#endif
