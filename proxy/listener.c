/* Listeners and sender connections: accept under the connection caps, read and frame MLLP
 * under the size cap and the whole-frame deadline, apply back-pressure, and write the ACKs
 * back in arrival order. What a frame means is txn.c's business. */
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "proxy/internal.h"

/* Most messages one connection may have in flight before reading pauses (pipelining). */
#define CONN_MAX_INFLIGHT 256
/* A sender that does not read its ACKs is cut off past this much unsent ACK data. */
#define CONN_MAX_WRITE_QUEUE (4u * 1024u * 1024u)
#define READ_CHUNK           (64u * 1024u)

static const char mllp_sb[1] = {HL7_MLLP_SB};
static const char mllp_eb[2] = {HL7_MLLP_EB, HL7_MLLP_CR};

static void conn_arm_timer(proxy_conn *c);
static void conn_timer_cb(uv_timer_t *t);

static void log_conn(px_log_level level, const char *event, const proxy_conn *c, const char *why)
{
    px_log_line l;
    px_log_begin(&l, level, event);
    px_log_cstr(&l, "feed", c->feed->cfg->name);
    px_log_cstr(&l, "peer", c->peer);
    if (why != NULL)
        px_log_cstr(&l, "reason", why);
    px_log_end(&l);
}

/* ---- closing ---- */

static void conn_free(proxy_conn *c)
{
    proxy_t *px = c->px;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    px->nconns--;
    if (c->counted_peer)
        proxy_peers_release(px->peers, c->peer_ip);
    proxy_app_routes_forget(px, c);
    proxy_upstream_lane_release(c->lane);
    px_buf_free(&c->rbuf);
    px_free(c);
    proxy_maybe_finish_stop(px);
}

void proxy_conn_release(proxy_conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void conn_handle_closed(uv_handle_t *h)
{
    proxy_conn *c = h->data;
    if (--c->pending_closes == 0)
        proxy_conn_release(c);
}

void proxy_conn_close(proxy_conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    log_conn(PX_LOG_INFO, "conn_close", c, why);
    /* Transactions go on without the connection: their legs still settle and are
     * recorded; only the ACK has nowhere to go. */
    proxy_txn *t = c->head;
    while (t != NULL) {
        proxy_txn *next = t->next;
        proxy_txn_detach(t);
        t = next;
    }
    c->head = c->tail = NULL;
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* ---- back-pressure ---- */

static bool conn_should_read(const proxy_conn *c)
{
    const proxy_t *px = c->px;
    return !c->closing && !c->held && !c->eof && !px->stopping && c->inflight < CONN_MAX_INFLIGHT &&
           px->inflight_bytes < route_config_limits(px->cfg)->inflight_bytes;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void proxy_conn_update_reading(proxy_conn *c)
{
    if (c->closing)
        return;
    bool want = conn_should_read(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
        c->paused = false;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        c->paused = true;
        if (c->px->inflight_bytes >= route_config_limits(c->px->cfg)->inflight_bytes)
            c->px->budget_paused = true;
    }
}

/* ---- writing ACKs ---- */

typedef struct ack_write {
    uv_write_t req;
    proxy_conn *conn;
    size_t len;
    char bytes[];
} ack_write;

static void ack_write_cb(uv_write_t *w, int status)
{
    ack_write *aw = w->data;
    proxy_conn *c = aw->conn;
    px_free(aw);
    if (status < 0 && !c->closing)
        proxy_conn_close(c, uv_strerror(status));
    if (!c->closing && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
        c->write_since_ms = 0;
        conn_arm_timer(c);
    }
    proxy_conn_release(c);
}

static void conn_write_ack(proxy_conn *c, px_str ack)
{
    if (ack.len == 0)
        return;
    ack_write *aw = px_malloc(sizeof(*aw) + ack.len + 3);
    if (aw == NULL) {
        proxy_conn_close(c, "no memory for an ACK");
        return;
    }
    memcpy(aw->bytes, mllp_sb, 1);
    memcpy(aw->bytes + 1, ack.ptr, ack.len);
    memcpy(aw->bytes + 1 + ack.len, mllp_eb, 2);
    aw->len = ack.len + 3;
    aw->conn = c;
    aw->req.data = aw;
    uv_buf_t buf = uv_buf_init(aw->bytes, (unsigned)aw->len);
    c->refs++;
    int rc = uv_write(&aw->req, (uv_stream_t *)&c->tcp, &buf, 1, ack_write_cb);
    if (rc < 0) {
        px_free(aw);
        proxy_conn_release(c);
        proxy_conn_close(c, uv_strerror(rc));
        return;
    }
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (queued > CONN_MAX_WRITE_QUEUE) {
        proxy_conn_close(c, "sender does not read its ACKs");
        return;
    }
    if (queued > 0 && c->write_since_ms == 0) {
        c->write_since_ms = proxy_now_ms(c->px);
        conn_arm_timer(c);
    }
}

/* Counts an ACK by its MSA-1 for /metrics: every answer a sender gets passes here, whether
 * relayed from the EHR, built by parallax or replayed from the retransmission window. */
static void count_ack(proxy_feed *f, px_str ack)
{
    for (size_t i = 0; i + 6 <= ack.len; i++) {
        if ((i == 0 || ack.ptr[i - 1] == '\r' || ack.ptr[i - 1] == '\n') &&
            memcmp(ack.ptr + i, "MSA", 3) == 0) {
            hl7_ack_code code;
            if (hl7_ack_code_parse(px_str_make(ack.ptr + i + 4, 2), &code))
                f->stats.acked[code]++;
            return;
        }
    }
}

void proxy_conn_send(proxy_conn *c, px_str frame)
{
    if (!c->closing)
        conn_write_ack(c, frame);
}

void proxy_conn_flush(proxy_conn *c)
{
    while (!c->closing && c->head != NULL && c->head->answered) {
        proxy_txn *t = c->head;
        c->head = t->next;
        if (c->head == NULL)
            c->tail = NULL;
        t->next = NULL;
        c->inflight--;
        if (!t->no_answer) {
            count_ack(c->feed, px_buf_view(&t->ack));
            conn_write_ack(c, px_buf_view(&t->ack));
        }
        t->ack_sent = true;
        proxy_txn_detach(t);
    }
    if (c->closing)
        return;
    if (c->eof && c->head == NULL) {
        proxy_conn_close(c, "sender closed");
        return;
    }
    proxy_conn_update_reading(c);
    conn_arm_timer(c);
}

/* Under on_upstream_down = hold the sender gets no answer: read nothing more from it and
 * close after the feed's bound, as the EHR's own port would, so that its queue keeps the
 * message and resends it later. */
void proxy_conn_hold(proxy_conn *c)
{
    if (c->closing || c->held)
        return;
    c->held = true;
    log_conn(PX_LOG_WARN, "conn_held", c, "upstream down");
    proxy_conn_update_reading(c);
    /* The bound counts from the moment the hold began, whatever timer ran before. */
    uv_timer_start(&c->timer, conn_timer_cb, c->feed->cfg->hold_close_after_ms, 0);
}

/* ---- deadlines ---- */

static void conn_timer_cb(uv_timer_t *t)
{
    proxy_conn *c = t->data;
    proxy_t *px = c->px;
    const route_limits *lim = route_config_limits(px->cfg);
    uint64_t now = proxy_now_ms(px);
    if (c->held) {
        proxy_conn_close(c, "upstream down: held connection closed");
        return;
    }
    if (c->write_since_ms != 0 && now - c->write_since_ms >= lim->ack_write_timeout_ms) {
        proxy_conn_close(c, "sender does not read its ACKs");
        return;
    }
    if (c->frame_start_ms != 0 && now - c->frame_start_ms >= lim->frame_deadline_ms) {
        px->refused_by_reason[PROXY_REFUSE_DEADLINE]++;
        proxy_txn_refuse_unframed(c, PROXY_REFUSE_DEADLINE,
                                  c->rbuf.len > 0
                                      ? "frame not complete within the deadline"
                                      : "bytes outside an MLLP frame, no frame followed");
        proxy_conn_close(c, "frame deadline");
        return;
    }
    if (c->head == NULL && now - c->last_activity_ms >= lim->idle_timeout_ms) {
        proxy_conn_close(c, "idle timeout");
        return;
    }
    conn_arm_timer(c);
}

static void conn_arm_timer(proxy_conn *c)
{
    if (c->closing)
        return;
    const route_limits *lim = route_config_limits(c->px->cfg);
    uint64_t now = proxy_now_ms(c->px);
    uint64_t due;
    if (c->held)
        return; /* proxy_conn_hold set the bound */
    if (c->write_since_ms != 0) {
        /* An ACK the sender has not read: cut off a sender that stopped reading. */
        due = c->write_since_ms + lim->ack_write_timeout_ms;
    } else if (c->frame_start_ms != 0) {
        due = c->frame_start_ms + lim->frame_deadline_ms;
    } else if (c->head == NULL) {
        due = c->last_activity_ms + lim->idle_timeout_ms;
    } else {
        uv_timer_stop(&c->timer); /* waiting on us, not on the sender */
        return;
    }
    if (c->frame_start_ms != 0 && c->write_since_ms != 0 &&
        c->frame_start_ms + lim->frame_deadline_ms < due)
        due = c->frame_start_ms + lim->frame_deadline_ms;
    uv_timer_start(&c->timer, conn_timer_cb, due > now ? due - now : 0, 0);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    proxy_conn *c = h->data;
    (void)suggested;
    if (px_buf_reserve(&c->rbuf, READ_CHUNK) != PX_OK &&
        px_buf_reserve(&c->rbuf, c->rbuf.max - c->rbuf.len) != PX_OK) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    size_t room = c->rbuf.cap - c->rbuf.len - 1;
    *buf =
        uv_buf_init(c->rbuf.data + c->rbuf.len, (unsigned)(room < READ_CHUNK ? room : READ_CHUNK));
}

static void conn_refuse_and_close(proxy_conn *c, unsigned reason, const char *text)
{
    c->px->refused_by_reason[reason]++;
    c->feed->stats.refused++;
    proxy_txn_refuse_unframed(c, reason, text);
    proxy_conn_close(c, text);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    proxy_conn *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            conn_refuse_and_close(c, PROXY_REFUSE_OVERSIZE,
                                  "frame larger than the maximum message size");
            return;
        }
        if (nread == UV_EOF) {
            px_error err;
            if (hl7_mllp_finish(&c->dec, c->rbuf.len, &err) != PX_OK) {
                conn_refuse_and_close(c, PROXY_REFUSE_FRAMING, "connection closed inside a frame");
                return;
            }
            uv_read_stop(s);
            c->reading = false;
            c->eof = true;
            proxy_conn_flush(c);
            return;
        }
        proxy_conn_close(c, uv_strerror((int)nread));
        return;
    }
    proxy_t *px = c->px;
    c->rbuf.len += (size_t)nread;
    c->last_activity_ms = proxy_now_ms(px);
    size_t off = 0;
    /* Bytes outside any frame (HTTP, a TLS ClientHello, noise) are skipped as the MLLP spec
     * asks, but they do not make an idle connection: unless a frame follows, they run the
     * frame deadline, so a connection that sends only garbage is refused and recorded
     * (RELIABILITY (c), D4). Blank bytes between frames (a CR LF some senders append) are
     * tolerated. */
    bool junk = false;
    while (!c->closing) {
        px_str frame;
        size_t used = 0;
        px_error err;
        uint64_t skipped = c->dec.skipped;
        px_err rc =
            hl7_mllp_decode(&c->dec, c->rbuf.data + off, c->rbuf.len - off, &frame, &used, &err);
        for (uint64_t i = 0; i < c->dec.skipped - skipped && !junk; i++) {
            char ch = c->rbuf.data[off + i];
            junk = ch != '\r' && ch != '\n' && ch != ' ' && ch != '\t';
        }
        off += used;
        if (rc == PX_OK) {
            c->frame_start_ms = 0;
            junk = false;
            proxy_txn_frame(c, frame);
            continue;
        }
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc == PX_ERR_TOO_LARGE) {
            conn_refuse_and_close(c, PROXY_REFUSE_OVERSIZE,
                                  "frame larger than the maximum message size");
            return;
        }
        /* A frame that cannot be read has no control id to answer: refuse and close. */
        conn_refuse_and_close(c, PROXY_REFUSE_FRAMING,
                              hl7_mllp_fault_text((hl7_mllp_fault)err.detail));
        return;
    }
    if (c->closing)
        return;
    px_buf_consume(&c->rbuf, off);
    if ((c->rbuf.len > 0 || junk) && c->frame_start_ms == 0)
        c->frame_start_ms = proxy_now_ms(px);
    proxy_conn_update_reading(c);
    conn_arm_timer(c);
}

/* ---- accepting ---- */

static void peer_name(uv_tcp_t *tcp, char *peer, size_t peer_size, char *ip, size_t ip_size)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(peer, peer_size, "?");
    snprintf(ip, ip_size, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    int port = 0;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, ip_size);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, ip_size);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(peer, peer_size, "%s:%d", ip, port);
}

static void reject_close_cb(uv_handle_t *h)
{
    px_free(h);
}

static void accept_cb(uv_stream_t *server, int status)
{
    proxy_feed *f = server->data;
    proxy_t *px = f->px;
    if (status < 0)
        return;
    const route_limits *lim = route_config_limits(px->cfg);
    proxy_conn *c = px_calloc(1, sizeof(*c));
    if (c == NULL) {
        /* Accept and drop, or the pending connection would spin the loop. */
        uv_tcp_t *tmp = px_malloc(sizeof(*tmp));
        if (tmp != NULL && uv_tcp_init(px->loop, tmp) == 0) {
            if (uv_accept(server, (uv_stream_t *)tmp) == 0)
                uv_close((uv_handle_t *)tmp, reject_close_cb);
            else
                uv_close((uv_handle_t *)tmp, reject_close_cb);
        } else {
            px_free(tmp);
        }
        return;
    }
    c->px = px;
    c->feed = f;
    uv_tcp_init(px->loop, &c->tcp);
    uv_timer_init(px->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 1;
    c->next = px->conns;
    if (px->conns != NULL)
        px->conns->prev = c;
    px->conns = c;
    px->nconns++;
    px_buf_init(&c->rbuf, f->cfg->max_message_bytes + 64);
    hl7_mllp_decoder_init(&c->dec, f->cfg->max_message_bytes);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        proxy_conn_close(c, "accept failed");
        return;
    }
    peer_name(&c->tcp, c->peer, sizeof(c->peer), c->peer_ip, sizeof(c->peer_ip));
    c->last_activity_ms = proxy_now_ms(px);
    f->stats.connections++;
    if (px->stopping) {
        proxy_conn_close(c, "stopping");
        return;
    }
    if (px->nconns > lim->max_connections) {
        px->refused_by_reason[PROXY_REFUSE_LIMIT]++;
        proxy_conn_close(c, "too many connections");
        return;
    }
    if (proxy_peers_acquire(px->peers, c->peer_ip, lim->max_connections_per_peer) != 0) {
        px->refused_by_reason[PROXY_REFUSE_LIMIT]++;
        proxy_conn_close(c, "too many connections from this address");
        return;
    }
    c->counted_peer = true;
    c->lane = proxy_upstream_lane_create(f->upstream);
    if (c->lane == NULL) {
        proxy_conn_close(c, "no memory");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    log_conn(PX_LOG_INFO, "conn_open", c, NULL);
    proxy_conn_update_reading(c);
    conn_arm_timer(c);
}

px_err proxy_feed_listen(proxy_feed *f, px_error *err)
{
    proxy_t *px = f->px;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(f->cfg->listen, f->cfg->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(f->cfg->listen, f->cfg->port, (struct sockaddr_in6 *)&addr) != 0)
        return px_error_set(err, PX_ERR_INVAL, "feed %s: bad listen address", f->cfg->name);
    uv_tcp_init(px->loop, &f->listener);
    f->listener.data = f;
    f->listening = true;
    int rc = uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&f->listener, 1024, accept_cb);
    if (rc != 0)
        return px_error_setd(err, PX_ERR_IO, rc, "feed %s: cannot listen on %s:%u: %s",
                             f->cfg->name, f->cfg->listen, f->cfg->port, uv_strerror(rc));
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "listening");
    px_log_cstr(&l, "feed", f->cfg->name);
    px_log_cstr(&l, "address", f->cfg->listen);
    px_log_uint(&l, "port", f->cfg->port);
    px_log_end(&l);
    return PX_OK;
}

static void listener_closed(uv_handle_t *h)
{
    proxy_feed *f = h->data;
    f->px->pending_closes--;
    proxy_maybe_finish_stop(f->px);
}

void proxy_feed_close_listener(proxy_feed *f)
{
    if (!f->listening)
        return;
    f->listening = false;
    f->px->pending_closes++;
    uv_close((uv_handle_t *)&f->listener, listener_closed);
}
