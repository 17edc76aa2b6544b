#include "proxy/upstream.h"

#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "hl7/batch.h"
#include "hl7/hl7.h"
#include "hl7/mllp.h"

typedef enum conn_state {
    CONN_DOWN,       /* no socket; the timer may be counting down to a reconnect */
    CONN_RESOLVING,  /* waiting for uv_getaddrinfo */
    CONN_CONNECTING, /* socket connecting; the timer is the connect deadline */
    CONN_READY,      /* connected and idle */
    CONN_BUSY,       /* a message is outstanding; the timer is the ACK deadline */
    CONN_CLOSING,    /* socket closing; reconnect scheduled from the close callback */
} conn_state;

typedef struct up_conn {
    proxy_upstream_t *u;
    unsigned index;
    conn_state state;
    bool tcp_open; /* tcp initialised and not yet closed */
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_getaddrinfo_t resolve_req;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_buf_t write_bufs[3];
    px_buf rbuf;
    hl7_mllp_decoder dec;
    hl7_msg_t *parser;
    proxy_up_req *inflight;
    uint64_t sent_at_us;
    uint64_t backoff_ms;
    bool connect_failed; /* the last attempt to connect failed (cleared on success) */
} up_conn;

struct proxy_up_lane {
    proxy_upstream_t *u;
    proxy_up_req *head, *tail;
    proxy_up_lane *next_ready;
    bool busy;     /* its head request is outstanding */
    bool released; /* the owner no longer needs it */
    bool in_ready;
};

struct proxy_upstream {
    uv_loop_t *loop;
    proxy_upstream_opts opts;
    proxy_up_unsolicited_cb on_unsolicited;
    void *unsolicited_arg;
    struct sockaddr_storage addr;
    bool addr_numeric;
    up_conn *conns;
    proxy_up_lane *ready_head, *ready_tail;
    proxy_up_req *failed_head, *failed_tail; /* requests to end DOWN/CANCELLED on the next kick */
    uv_timer_t kick;
    unsigned consecutive_failures;
    uint64_t breaker_until_ms;
    bool closing;
    unsigned pending_closes;
    void (*close_cb)(void *arg);
    void *close_arg;
    proxy_upstream_stats stats;
};

static const char mllp_sb[1] = {HL7_MLLP_SB};
static const char mllp_eb[2] = {HL7_MLLP_EB, HL7_MLLP_CR};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static void conn_connect(up_conn *c);
static void conn_reset(up_conn *c, const char *why);
static void dispatch(proxy_upstream_t *u);
static void schedule_kick(proxy_upstream_t *u);
static void maybe_done(proxy_upstream_t *u);

static void log_upstream(px_log_level level, const char *event, const proxy_upstream_t *u,
                         const up_conn *c, const char *reason)
{
    px_log_line l;
    px_log_begin(&l, level, event);
    px_log_cstr(&l, "upstream", u->opts.name);
    if (c != NULL)
        px_log_uint(&l, "conn", c->index);
    if (reason != NULL)
        px_log_cstr(&l, "reason", reason);
    px_log_end(&l);
}

/* ---- lanes ---- */

static void lane_mark_ready(proxy_upstream_t *u, proxy_up_lane *lane)
{
    if (lane->in_ready || lane->busy || lane->head == NULL)
        return;
    lane->in_ready = true;
    lane->next_ready = NULL;
    if (u->ready_tail != NULL)
        u->ready_tail->next_ready = lane;
    else
        u->ready_head = lane;
    u->ready_tail = lane;
}

static proxy_up_lane *lane_pop_ready(proxy_upstream_t *u)
{
    proxy_up_lane *lane = u->ready_head;
    if (lane == NULL)
        return NULL;
    u->ready_head = lane->next_ready;
    if (u->ready_head == NULL)
        u->ready_tail = NULL;
    lane->in_ready = false;
    lane->next_ready = NULL;
    return lane;
}

static void lane_maybe_free(proxy_up_lane *lane)
{
    if (lane->released && lane->head == NULL && !lane->busy && !lane->in_ready)
        px_free(lane);
}

proxy_up_lane *proxy_upstream_lane_create(proxy_upstream_t *u)
{
    proxy_up_lane *lane = px_calloc(1, sizeof(*lane));
    if (lane != NULL)
        lane->u = u;
    return lane;
}

void proxy_upstream_lane_release(proxy_up_lane *lane)
{
    if (lane == NULL)
        return;
    lane->released = true;
    lane_maybe_free(lane);
}

/* ---- completing requests ---- */

static void req_complete(proxy_up_req *req, const proxy_up_result *res)
{
    px_msg_t *msg = req->msg;
    req->done(req, res);
    px_msg_unref(msg);
}

static void req_fail_later(proxy_upstream_t *u, proxy_up_req *req)
{
    req->next = NULL;
    if (u->failed_tail != NULL)
        u->failed_tail->next = req;
    else
        u->failed_head = req;
    u->failed_tail = req;
    schedule_kick(u);
}

/* Takes the head request off a lane that is about to send or fail it. */
static proxy_up_req *lane_take_head(proxy_up_lane *lane)
{
    proxy_up_req *req = lane->head;
    lane->head = req->next;
    if (lane->head == NULL)
        lane->tail = NULL;
    req->next = NULL;
    return req;
}

static bool breaker_open(const proxy_upstream_t *u)
{
    return u->breaker_until_ms > uv_now(u->loop);
}

static void note_failure(proxy_upstream_t *u)
{
    u->consecutive_failures++;
    if (u->opts.breaker_failures > 0 && u->consecutive_failures >= u->opts.breaker_failures &&
        !breaker_open(u)) {
        u->breaker_until_ms = uv_now(u->loop) + u->opts.breaker_open_ms;
        log_upstream(PX_LOG_WARN, "upstream_breaker_open", u, NULL, "consecutive failures");
    }
}

static bool any_conn_usable(const proxy_upstream_t *u)
{
    /* A connection that was reset after a good life will be back after its reconnect delay;
     * one whose last attempt failed will not. */
    for (unsigned i = 0; i < u->opts.pool; i++) {
        const up_conn *c = &u->conns[i];
        if (c->state == CONN_READY || c->state == CONN_BUSY || c->state == CONN_CONNECTING ||
            c->state == CONN_RESOLVING || !c->connect_failed)
            return true;
    }
    return false;
}

/* When nothing can carry a request soon, the waiting ones end DOWN so the feed's
 * on_upstream_down policy decides (hold, queue or nak) instead of a silent wait. */
static void fail_ready_lanes(proxy_upstream_t *u)
{
    proxy_up_lane *lane;
    while ((lane = lane_pop_ready(u)) != NULL) {
        while (lane->head != NULL)
            req_fail_later(u, lane_take_head(lane));
        lane_maybe_free(lane);
    }
}

static void kick_cb(uv_timer_t *t)
{
    proxy_upstream_t *u = t->data;
    proxy_up_req *req = u->failed_head;
    u->failed_head = u->failed_tail = NULL;
    while (req != NULL) {
        proxy_up_req *next = req->next;
        proxy_up_lane *lane = req->lane;
        proxy_up_result res = {0};
        res.outcome = u->closing ? PROXY_UP_CANCELLED : PROXY_UP_DOWN;
        res.reason = u->closing ? "upstream closing" : "upstream unavailable";
        u->stats.down++;
        req_complete(req, &res);
        lane_mark_ready(u, lane);
        lane_maybe_free(lane);
        req = next;
    }
    dispatch(u);
}

static void schedule_kick(proxy_upstream_t *u)
{
    if (!uv_is_active((uv_handle_t *)&u->kick) && !uv_is_closing((uv_handle_t *)&u->kick))
        uv_timer_start(&u->kick, kick_cb, 0, 0);
}

/* ---- sending ---- */

static void write_cb(uv_write_t *w, int status)
{
    up_conn *c = w->data;
    if (status < 0 && status != UV_ECANCELED && c->state == CONN_BUSY)
        conn_reset(c, uv_strerror(status));
}

static void ack_timeout_cb(uv_timer_t *t);

static void write_failed_cb(uv_timer_t *t)
{
    conn_reset(t->data, "write to the EHR failed");
}

static void conn_send(up_conn *c, proxy_up_req *req)
{
    proxy_upstream_t *u = c->u;
    px_str bytes = px_msg_bytes(req->msg);
    c->inflight = req;
    c->state = CONN_BUSY;
    c->sent_at_us = now_us();
    c->write_bufs[0] = uv_buf_init((char *)mllp_sb, 1);
    c->write_bufs[1] = uv_buf_init((char *)bytes.ptr, (unsigned)bytes.len);
    c->write_bufs[2] = uv_buf_init((char *)mllp_eb, 2);
    c->write_req.data = c;
    u->stats.sent++;
    uv_timer_start(&c->timer, ack_timeout_cb, u->opts.ack_timeout_ms, 0);
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, c->write_bufs, 3, write_cb);
    if (rc < 0) {
        /* Reset from the timer: conn_send runs inside proxy_upstream_submit, where the
         * request's done callback must not run yet. */
        uv_timer_start(&c->timer, write_failed_cb, 0, 0);
    }
}

static void dispatch(proxy_upstream_t *u)
{
    if (u->closing)
        return;
    if (u->ready_head != NULL && (breaker_open(u) || !any_conn_usable(u))) {
        fail_ready_lanes(u);
        return;
    }
    for (unsigned i = 0; i < u->opts.pool && u->ready_head != NULL; i++) {
        up_conn *c = &u->conns[i];
        if (c->state != CONN_READY)
            continue;
        proxy_up_lane *lane = lane_pop_ready(u);
        proxy_up_req *req = lane_take_head(lane);
        lane->busy = true;
        conn_send(c, req);
    }
}

void proxy_upstream_submit(proxy_upstream_t *u, proxy_up_lane *lane, proxy_up_req *req)
{
    px_msg_ref(req->msg);
    req->lane = lane;
    req->next = NULL;
    req->queued_at_us = now_us();
    if (u->closing) {
        req_fail_later(u, req); /* ended CANCELLED when the pool is freed */
        return;
    }
    if (lane->tail != NULL)
        lane->tail->next = req;
    else
        lane->head = req;
    lane->tail = req;
    lane_mark_ready(u, lane);
    /* Send at once when a connection is idle (the forward is on the sender's critical
     * path); failures still complete from the kick, so done never runs inside submit. */
    dispatch(u);
}

/* Ends the outstanding request of c and frees its lane for the next one. */
static void conn_finish(up_conn *c, proxy_up_result *res)
{
    proxy_upstream_t *u = c->u;
    proxy_up_req *req = c->inflight;
    c->inflight = NULL;
    uv_timer_stop(&c->timer);
    if (c->state == CONN_BUSY)
        c->state = CONN_READY;
    res->latency_us = now_us() - c->sent_at_us;
    res->attempt = 1;
    proxy_up_lane *lane = req->lane;
    lane->busy = false;
    req_complete(req, res);
    lane_mark_ready(u, lane);
    lane_maybe_free(lane);
}

/* ---- receiving ---- */

static void handle_frame(up_conn *c, px_str frame)
{
    proxy_upstream_t *u = c->u;
    if (c->inflight == NULL) {
        if (u->on_unsolicited == NULL || !u->on_unsolicited(u, frame, u->unsolicited_arg)) {
            u->stats.anomalies++;
            log_upstream(PX_LOG_WARN, "upstream_unsolicited", u, c,
                         "frame with nothing outstanding");
        }
        return;
    }
    proxy_up_result res = {0};
    res.ack = frame;
    hl7_ack_info info;
    if (c->inflight->batch) {
        /* A batch is answered by a batch of ACKs or by one ACK; relay whatever it is. */
        res.outcome = PROXY_UP_ACKED;
        res.reason = "batch answered";
        hl7_batch_iter it;
        px_str first;
        hl7_batch_iter_init(&it, frame);
        if (hl7_batch_next(&it, &first, NULL) == PX_OK &&
            hl7_parse(c->parser, first.ptr, first.len, 0, NULL) == PX_OK &&
            hl7_ack_read(c->parser, &info, NULL) == PX_OK) {
            res.code_valid = true;
            res.code = info.code;
        }
        u->stats.acked++;
        u->consecutive_failures = 0;
        u->breaker_until_ms = 0;
        conn_finish(c, &res);
        dispatch(u);
        return;
    }
    if (hl7_parse(c->parser, frame.ptr, frame.len, 0, NULL) != PX_OK ||
        hl7_ack_read(c->parser, &info, NULL) != PX_OK) {
        res.outcome = PROXY_UP_ANOMALY;
        res.reason = "answer is not an ACK with MSA";
        u->stats.anomalies++;
        conn_finish(c, &res);
        conn_reset(c, "unusable ACK");
        return;
    }
    res.code_valid = true;
    res.code = info.code;
    if (!px_str_eq(info.acked_control_id, c->inflight->control_id)) {
        /* An application ACK for an earlier message may arrive while the next one is
         * outstanding (enhanced mode); the owner recognises those. */
        if (u->on_unsolicited != NULL && u->on_unsolicited(u, frame, u->unsolicited_arg))
            return;
        res.msa2_mismatch = true;
        u->stats.anomalies++;
        if (u->opts.require_msa2_echo) {
            res.outcome = PROXY_UP_ANOMALY;
            res.reason = "ACK MSA-2 does not echo MSH-10";
            conn_finish(c, &res);
            /* The real ACK may still come: reset so it can never match the next message. */
            conn_reset(c, "MSA-2 mismatch");
            return;
        }
    }
    res.outcome = PROXY_UP_ACKED;
    res.reason = res.msa2_mismatch ? "ACK MSA-2 does not echo MSH-10 (accepted)" : "acked";
    u->stats.acked++;
    u->consecutive_failures = 0;
    u->breaker_until_ms = 0;
    conn_finish(c, &res);
    dispatch(u);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    up_conn *c = h->data;
    (void)suggested;
    size_t want = 64 * 1024;
    if (px_buf_reserve(&c->rbuf, want) != PX_OK &&
        px_buf_reserve(&c->rbuf, c->rbuf.max - c->rbuf.len) != PX_OK) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    size_t room = c->rbuf.cap - c->rbuf.len - 1;
    *buf = uv_buf_init(c->rbuf.data + c->rbuf.len, (unsigned)(room > want ? want : room));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    up_conn *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_reset(c, nread == UV_EOF ? "EHR closed the connection" : uv_strerror((int)nread));
        return;
    }
    c->rbuf.len += (size_t)nread;
    size_t off = 0;
    for (;;) {
        px_str frame;
        size_t used = 0;
        px_error err;
        px_err rc =
            hl7_mllp_decode(&c->dec, c->rbuf.data + off, c->rbuf.len - off, &frame, &used, &err);
        off += used;
        if (rc == PX_OK) {
            handle_frame(c, frame);
            if (c->state == CONN_CLOSING || c->state == CONN_DOWN)
                return; /* reset while handling: the buffer is gone */
            continue;
        }
        if (rc == PX_ERR_AGAIN)
            break;
        conn_reset(c, "bad MLLP framing from the EHR");
        return;
    }
    px_buf_consume(&c->rbuf, off);
    if (c->rbuf.len >= c->rbuf.max)
        conn_reset(c, "ACK larger than the maximum message size");
}

/* ---- connecting ---- */

static void reconnect_cb(uv_timer_t *t)
{
    up_conn *c = t->data;
    if (c->state == CONN_DOWN && !c->u->closing)
        conn_connect(c);
}

static void schedule_reconnect(up_conn *c)
{
    proxy_upstream_t *u = c->u;
    uint64_t delay = c->backoff_ms;
    uint64_t now = uv_now(u->loop);
    if (breaker_open(u) && u->breaker_until_ms - now > delay)
        delay = u->breaker_until_ms - now;
    c->backoff_ms = c->backoff_ms == 0 ? u->opts.reconnect_min_ms : c->backoff_ms * 2;
    if (c->backoff_ms > u->opts.reconnect_max_ms)
        c->backoff_ms = u->opts.reconnect_max_ms;
    uv_timer_start(&c->timer, reconnect_cb, delay, 0);
}

static void tcp_close_cb(uv_handle_t *h)
{
    up_conn *c = h->data;
    proxy_upstream_t *u = c->u;
    c->tcp_open = false;
    c->state = CONN_DOWN;
    px_buf_reset(&c->rbuf);
    hl7_mllp_decoder_init(&c->dec, u->opts.max_message_bytes);
    if (u->closing) {
        u->pending_closes--;
        maybe_done(u);
        return;
    }
    schedule_reconnect(c);
    dispatch(u);
}

static void conn_reset(up_conn *c, const char *why)
{
    proxy_upstream_t *u = c->u;
    if (c->state == CONN_CLOSING)
        return;
    uv_timer_stop(&c->timer);
    if (c->inflight != NULL) {
        proxy_up_result res = {0};
        res.outcome = PROXY_UP_UNKNOWN;
        res.reason = why;
        conn_finish(c, &res);
    }
    log_upstream(PX_LOG_WARN, "upstream_reset", u, c, why);
    if (c->tcp_open) {
        c->state = CONN_CLOSING;
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
    } else {
        c->state = CONN_DOWN;
        if (!u->closing)
            schedule_reconnect(c);
    }
    dispatch(u);
}

static void connect_timeout_cb(uv_timer_t *t)
{
    up_conn *c = t->data;
    c->connect_failed = true;
    c->u->stats.connect_failures++;
    note_failure(c->u);
    conn_reset(c, "connect timeout");
}

static void connect_cb(uv_connect_t *req, int status)
{
    up_conn *c = req->data;
    proxy_upstream_t *u = c->u;
    if (status == UV_ECANCELED)
        return;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        c->connect_failed = true;
        u->stats.connect_failures++;
        note_failure(u);
        log_upstream(PX_LOG_WARN, "upstream_connect_failed", u, c, uv_strerror(status));
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
        dispatch(u);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = CONN_READY;
    c->backoff_ms = 0;
    c->connect_failed = false;
    log_upstream(PX_LOG_INFO, "upstream_connected", u, c, NULL);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc < 0) {
        conn_reset(c, uv_strerror(rc));
        return;
    }
    dispatch(u);
}

static void conn_connect_addr(up_conn *c, const struct sockaddr *addr)
{
    proxy_upstream_t *u = c->u;
    int rc = uv_tcp_init(u->loop, &c->tcp);
    if (rc < 0) {
        c->connect_failed = true;
        c->state = CONN_DOWN;
        schedule_reconnect(c);
        return;
    }
    c->tcp.data = c;
    c->tcp_open = true;
    c->state = CONN_CONNECTING;
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, connect_cb);
    if (rc < 0) {
        c->connect_failed = true;
        u->stats.connect_failures++;
        note_failure(u);
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
        return;
    }
    uv_timer_start(&c->timer, connect_timeout_cb, u->opts.connect_timeout_ms, 0);
}

static void resolve_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    up_conn *c = req->data;
    proxy_upstream_t *u = c->u;
    if (status < 0 || res == NULL || u->closing) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        c->state = CONN_DOWN;
        if (u->closing) {
            u->pending_closes--;
            maybe_done(u);
            return;
        }
        c->connect_failed = true;
        u->stats.connect_failures++;
        note_failure(u);
        log_upstream(PX_LOG_WARN, "upstream_resolve_failed", u, c,
                     status < 0 ? uv_strerror(status) : "no address");
        schedule_reconnect(c);
        dispatch(u);
        return;
    }
    struct sockaddr_storage addr;
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)u->opts.port);
    uv_freeaddrinfo(res);
    conn_connect_addr(c, (const struct sockaddr *)&addr);
}

static void conn_connect(up_conn *c)
{
    proxy_upstream_t *u = c->u;
    if (u->addr_numeric) {
        conn_connect_addr(c, (const struct sockaddr *)&u->addr);
        return;
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->resolve_req.data = c;
    c->state = CONN_RESOLVING;
    int rc = uv_getaddrinfo(u->loop, &c->resolve_req, resolve_cb, u->opts.host, NULL, &hints);
    if (rc < 0) {
        c->state = CONN_DOWN;
        schedule_reconnect(c);
    }
}

static void ack_timeout_cb(uv_timer_t *t)
{
    up_conn *c = t->data;
    proxy_upstream_t *u = c->u;
    u->stats.timeouts++;
    note_failure(u);
    conn_reset(c, "ACK timeout");
}

/* ---- life cycle ---- */

px_err proxy_upstream_create(uv_loop_t *loop, const proxy_upstream_opts *opts,
                             proxy_up_unsolicited_cb on_unsolicited, void *arg,
                             proxy_upstream_t **out, px_error *err)
{
    *out = NULL;
    if (opts->pool == 0 || opts->pool > 1024)
        return px_error_set(err, PX_ERR_INVAL, "upstream %s: pool must be 1..1024", opts->name);
    proxy_upstream_t *u = px_calloc(1, sizeof(*u));
    if (u == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for upstream %s", opts->name);
    u->loop = loop;
    u->opts = *opts;
    if (u->opts.reconnect_min_ms == 0)
        u->opts.reconnect_min_ms = 100;
    if (u->opts.reconnect_max_ms < u->opts.reconnect_min_ms)
        u->opts.reconnect_max_ms = u->opts.reconnect_min_ms;
    if (u->opts.max_message_bytes == 0)
        u->opts.max_message_bytes = HL7_MLLP_DEFAULT_MAX;
    u->on_unsolicited = on_unsolicited;
    u->unsolicited_arg = arg;
    if (uv_ip4_addr(opts->host, opts->port, (struct sockaddr_in *)&u->addr) == 0 ||
        uv_ip6_addr(opts->host, opts->port, (struct sockaddr_in6 *)&u->addr) == 0)
        u->addr_numeric = true;
    u->conns = px_calloc(opts->pool, sizeof(*u->conns));
    if (u->conns == NULL) {
        px_free(u);
        return px_error_set(err, PX_ERR_NOMEM, "no memory for upstream %s", opts->name);
    }
    for (unsigned i = 0; i < opts->pool; i++) {
        up_conn *c = &u->conns[i];
        c->u = u;
        c->index = i;
        px_buf_init(&c->rbuf, u->opts.max_message_bytes + 64);
        hl7_mllp_decoder_init(&c->dec, u->opts.max_message_bytes);
        if (hl7_msg_create(&c->parser, err) != PX_OK) {
            for (unsigned j = 0; j <= i; j++) {
                hl7_msg_destroy(u->conns[j].parser);
                px_buf_free(&u->conns[j].rbuf);
            }
            px_free(u->conns);
            px_free(u);
            return PX_ERR_NOMEM;
        }
    }
    uv_timer_init(loop, &u->kick);
    u->kick.data = u;
    for (unsigned i = 0; i < opts->pool; i++) {
        up_conn *c = &u->conns[i];
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        conn_connect(c);
    }
    *out = u;
    return PX_OK;
}

/* Ends every request still queued, CANCELLED: the owner decides what that means. */
static void cancel_queued(proxy_upstream_t *u)
{
    fail_ready_lanes(u);
    proxy_up_req *req = u->failed_head;
    u->failed_head = u->failed_tail = NULL;
    while (req != NULL) {
        proxy_up_req *next = req->next;
        proxy_up_result res = {0};
        res.outcome = PROXY_UP_CANCELLED;
        res.reason = "upstream closing";
        proxy_up_lane *lane = req->lane;
        req_complete(req, &res);
        lane_maybe_free(lane);
        req = next;
    }
}

static void maybe_done(proxy_upstream_t *u)
{
    if (u->pending_closes > 0)
        return;
    /* Owners may have submitted from their done callbacks while we closed. */
    cancel_queued(u);
    void (*cb)(void *) = u->close_cb;
    void *cb_arg = u->close_arg;
    for (unsigned i = 0; i < u->opts.pool; i++) {
        hl7_msg_destroy(u->conns[i].parser);
        px_buf_free(&u->conns[i].rbuf);
    }
    px_free(u->conns);
    px_free(u);
    if (cb != NULL)
        cb(cb_arg);
}

static void kick_close_cb(uv_handle_t *h)
{
    proxy_upstream_t *u = h->data;
    u->pending_closes--;
    maybe_done(u);
}

static void conn_timer_close_cb(uv_handle_t *h)
{
    up_conn *c = h->data;
    c->u->pending_closes--;
    maybe_done(c->u);
}

static void tcp_final_close_cb(uv_handle_t *h)
{
    up_conn *c = h->data;
    c->tcp_open = false;
    c->u->pending_closes--;
    maybe_done(c->u);
}

void proxy_upstream_close(proxy_upstream_t *u, void (*cb)(void *arg), void *arg)
{
    u->closing = true;
    u->close_cb = cb;
    u->close_arg = arg;
    /* Held while the handles are closed so that no callback frees u early. */
    u->pending_closes = 1;
    cancel_queued(u);
    u->pending_closes++;
    uv_close((uv_handle_t *)&u->kick, kick_close_cb);
    for (unsigned i = 0; i < u->opts.pool; i++) {
        up_conn *c = &u->conns[i];
        if (c->inflight != NULL) {
            proxy_up_result res = {0};
            res.outcome = PROXY_UP_UNKNOWN;
            res.reason = "upstream closing with an ACK outstanding";
            conn_finish(c, &res);
        }
        u->pending_closes++;
        uv_close((uv_handle_t *)&c->timer, conn_timer_close_cb);
        if (c->state == CONN_RESOLVING) {
            u->pending_closes++; /* resolve_cb counts itself down */
            uv_cancel((uv_req_t *)&c->resolve_req);
        }
        if (c->tcp_open) {
            u->pending_closes++;
            if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                uv_close((uv_handle_t *)&c->tcp, tcp_final_close_cb);
            } /* else tcp_close_cb, already pending, counts itself down */
        }
        c->state = CONN_CLOSING;
    }
    u->pending_closes--;
    maybe_done(u);
}

typedef struct unsolicited_write {
    uv_write_t req;
    size_t len;
    char bytes[];
} unsolicited_write;

static void unsolicited_write_cb(uv_write_t *w, int status)
{
    (void)status; /* a lost commit ACK makes the EHR resend its application ACK */
    px_free(w->data);
}

px_err proxy_upstream_send_unsolicited(proxy_upstream_t *u, px_str frame)
{
    for (unsigned i = 0; i < u->opts.pool; i++) {
        up_conn *c = &u->conns[i];
        if (c->state != CONN_READY && c->state != CONN_BUSY)
            continue;
        unsolicited_write *w = px_malloc(sizeof(*w) + frame.len + 3);
        if (w == NULL)
            return PX_ERR_NOMEM;
        w->bytes[0] = HL7_MLLP_SB;
        memcpy(w->bytes + 1, frame.ptr, frame.len);
        w->bytes[frame.len + 1] = HL7_MLLP_EB;
        w->bytes[frame.len + 2] = HL7_MLLP_CR;
        w->len = frame.len + 3;
        w->req.data = w;
        uv_buf_t buf = uv_buf_init(w->bytes, (unsigned)w->len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, unsolicited_write_cb) < 0) {
            px_free(w);
            continue;
        }
        return PX_OK;
    }
    return PX_ERR_CLOSED;
}

void proxy_upstream_stats_get(const proxy_upstream_t *u, proxy_upstream_stats *out)
{
    *out = u->stats;
    out->connected = 0;
    out->busy = 0;
    for (unsigned i = 0; i < u->opts.pool; i++) {
        if (u->conns[i].state == CONN_READY)
            out->connected++;
        if (u->conns[i].state == CONN_BUSY) {
            out->connected++;
            out->busy++;
        }
    }
    out->breaker_open = breaker_open(u);
    uint64_t queued = 0;
    for (const proxy_up_lane *l = u->ready_head; l != NULL; l = l->next_ready)
        for (const proxy_up_req *r = l->head; r != NULL; r = r->next)
            queued++;
    out->queued = queued;
}

const char *proxy_upstream_name(const proxy_upstream_t *u)
{
    return u->opts.name;
}
