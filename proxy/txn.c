/* One inbound message from its frame to its settled legs:
 *
 *   frame → parse + MSH → refuse? → route → retransmission window → ledger op (message,
 *   legs, outbox) ∥ legacy leg → ACK policy → answer (in arrival order) → record the
 *   outcome and the exact ACK bytes.
 *
 * Under `legacy` the ledger write and the forward to the EHR run in parallel and the
 * sender's answer waits for both (the fsync hides behind the EHR's round trip). Under
 * `commit` (and `queue` while the EHR is down) the sender is answered once the message is
 * durable and the legacy leg is delivered from the feed's store-and-forward queue. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "hl7/batch.h"
#include "proxy/internal.h"

static hl7_msg_t *shared_parser;
static EVP_MD_CTX *shared_md;

/* Store-and-forward deliveries answered by the EHR but not yet recorded durably. */
#define SF_MAX_UNSETTLED 8

static void txn_answer(proxy_txn *t);
static void txn_record_refusal(proxy_txn *t);
static void txn_record_retransmission(proxy_txn *t);
static void txn_record(proxy_txn *t);
static void txn_maybe_free(proxy_txn *t);
static void sf_push(proxy_feed *f, proxy_txn *t);
static void sf_kick(proxy_feed *f);
static void sf_retry_cb(uv_timer_t *timer);

/* ---- small helpers ---- */

static hl7_msg_t *parser(void)
{
    if (shared_parser == NULL && hl7_msg_create(&shared_parser, NULL) != PX_OK)
        return NULL;
    return shared_parser;
}

/* MSA-1 of an ACK ("AA" …), or an empty view when it has none. */
static px_str ack_code_of(px_str ack)
{
    hl7_msg_t *m = parser();
    hl7_ack_info info;
    if (m != NULL && hl7_parse(m, ack.ptr, ack.len, 0, NULL) == PX_OK &&
        hl7_ack_read(m, &info, NULL) == PX_OK)
        return px_str_from_cstr(hl7_ack_code_name(info.code));
    return PX_STR_NULL;
}

static void hash_message(const hl7_msg_t *m, px_str bytes, unsigned char out[LEDGER_HASH_LEN])
{
    /* The hash leaves out MSH-7: a sender that resends stamps a new time on the same message. */
    px_str ts = hl7_field(m, 0, 7, 0, 0, 0);
    size_t cut_from = bytes.len, cut_to = bytes.len;
    if (ts.len > 0 && ts.ptr >= bytes.ptr && ts.ptr + ts.len <= bytes.ptr + bytes.len) {
        cut_from = (size_t)(ts.ptr - bytes.ptr);
        cut_to = cut_from + ts.len;
    }
    if (shared_md == NULL)
        shared_md = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (shared_md == NULL || EVP_DigestInit_ex(shared_md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(shared_md, bytes.ptr, cut_from) != 1 ||
        EVP_DigestUpdate(shared_md, bytes.ptr + cut_to, bytes.len - cut_to) != 1 ||
        EVP_DigestFinal_ex(shared_md, out, &n) != 1)
        memset(out, 0, LEDGER_HASH_LEN);
}

static void ack_timestamp(char *dst, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(dst, size, "%04d%02d%02d%02d%02d%02d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Builds an ACK parallax itself answers with (kind 'A', 'E' or 'R') into t->ack. */
static void build_ack(proxy_txn *t, const hl7_msg_t *m, char kind, unsigned err_code,
                      const char *text)
{
    proxy_t *px = t->px;
    char ctl[64], ts[64];
    snprintf(ctl, sizeof(ctl), "PX%" PRIu64, ++px->ack_seq);
    ack_timestamp(ts, sizeof(ts));
    hl7_ack_spec spec = {0};
    spec.code = hl7_ack_code_for(t->ack_mode, kind);
    spec.control_id = px_str_from_cstr(ctl);
    spec.datetime = px_str_from_cstr(ts);
    spec.err_code = err_code;
    spec.err_text = px_str_from_cstr(text);
    px_buf_reset(&t->ack);
    px_err rc;
    if (m != NULL) {
        rc = hl7_ack_build(m, &spec, &t->ack, NULL);
    } else {
        rc = hl7_ack_build_bare(t->msh.control_id, t->msh.version, &spec, &t->ack, NULL);
    }
    if (rc != PX_OK)
        px_buf_reset(&t->ack); /* no answer is better than a broken one; the record says why */
}

/* Builds the ACK from the stored message (re-parsed: the shared parser has moved on). */
static void build_ack_later(proxy_txn *t, char kind, unsigned err_code, const char *text)
{
    hl7_msg_t *m = parser();
    px_str bytes = px_msg_bytes(t->msg);
    if (m != NULL && hl7_parse(m, bytes.ptr, bytes.len, 0, NULL) == PX_OK)
        build_ack(t, m, kind, err_code, text);
    else
        build_ack(t, NULL, kind, err_code, text);
}

static void log_txn(px_log_level level, const char *event, const proxy_txn *t, const char *why)
{
    px_log_line l;
    px_log_begin(&l, level, event);
    px_log_cstr(&l, "feed", t->feed->cfg->name);
    if (t->id != 0)
        px_log_int(&l, "message", t->id);
    px_log_str(&l, "control_id", px_str_sub(t->msh.control_id, 0, 64));
    if (why != NULL)
        px_log_cstr(&l, "reason", why);
    px_log_end(&l);
}

static ledger_message_rec message_rec(const proxy_txn *t, ledger_msg_state state,
                                      const char *reason)
{
    ledger_message_rec r = {0};
    r.received_at_ms = t->received_at_ms;
    r.feed = px_str_from_cstr(t->feed->cfg->name);
    r.peer = t->conn != NULL ? px_str_from_cstr(t->conn->peer) : PX_STR_NULL;
    r.sending_app = t->msh.sending_app;
    r.sending_facility = t->msh.sending_facility;
    r.receiving_app = t->msh.receiving_app;
    r.receiving_facility = t->msh.receiving_facility;
    r.type = t->msh.type;
    r.trigger = t->msh.trigger;
    r.control_id = t->msh.control_id;
    r.version = t->msh.version;
    r.hash = t->hash;
    r.config_version = (int64_t)route_config_version_id(t->cfg);
    r.state = state;
    r.reason = px_str_from_cstr(reason);
    r.body = t->msg;
    r.body_part = PX_STR_NULL;
    return r;
}

/* Creates an op whose completion comes back to t (NULL: fire and forget). */
static ledger_op_t *op_new(proxy_txn *t)
{
    ledger_op_t *op = NULL;
    if (ledger_op_create(t, &op, NULL) != PX_OK)
        return NULL;
    return op;
}

/* ---- creation and refusal ---- */

static proxy_txn *txn_new(proxy_conn *c, px_str frame)
{
    proxy_t *px = c->px;
    proxy_txn *t = px_calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (px_msg_create(frame.ptr, frame.len, &t->msg, NULL) != PX_OK) {
        px_free(t);
        return NULL;
    }
    t->px = px;
    t->feed = c->feed;
    t->conn = c;
    t->cfg = route_config_ref(px->cfg);
    t->received_at_ms = proxy_wall_ms();
    px_buf_init(&t->ack, 64 * 1024);
    px_buf_init(&t->up_ack, c->feed->cfg->max_message_bytes + 64);
    if (c->tail != NULL)
        c->tail->next = t;
    else
        c->head = t;
    c->tail = t;
    c->inflight++;
    px->inflight_bytes += frame.len;
    px->txns_open++;
    t->feed->stats.received++;
    return t;
}

/* Answers t with a refusal NAK (or silence when nothing can be answered) and records the
 * message as rejected with its reason. Nothing is forwarded. */
static void txn_refuse(proxy_txn *t, const hl7_msg_t *m, unsigned err_code, const char *reason,
                       unsigned refuse_reason, bool answer)
{
    proxy_t *px = t->px;
    px->refused_by_reason[refuse_reason]++;
    t->feed->stats.refused++;
    if (answer)
        build_ack(t, m, 'R', err_code, reason);
    log_txn(PX_LOG_WARN, "message_refused", t, reason);
    t->refused = true;
    snprintf(t->refusal, sizeof(t->refusal), "%s", reason);
    t->legacy = TXN_LEGACY_DONE;
    t->settled = true;
    t->answered = true;
    t->no_answer = t->ack.len == 0;
    txn_record_refusal(t);
}

/* The row of a resend answered without forwarding, with the exact ACK it got. */
static void txn_record_retransmission(proxy_txn *t)
{
    ledger_op_t *op = op_new(t);
    if (op == NULL)
        return;
    ledger_message_rec r = message_rec(t, LEDGER_MSG_FILTERED, t->refusal);
    ledger_op_add_message(op, &r, NULL, NULL);
    if (!t->no_answer && t->ack.len > 0) {
        ledger_sender_ack_rec a = {0};
        a.message = LEDGER_OP_MESSAGE(0);
        a.code = ack_code_of(px_buf_view(&t->ack));
        a.bytes = px_buf_view(&t->ack);
        a.sent_at_ms = proxy_wall_ms();
        ledger_op_add_sender_ack(op, &a, NULL);
    }
    proxy_ledger_submit(t->px, op, t);
}

/* The rejected row of a refused message, with the NAK it got. */
static void txn_record_refusal(proxy_txn *t)
{
    ledger_op_t *op = op_new(t);
    if (op != NULL) {
        ledger_message_rec r = message_rec(t, LEDGER_MSG_REJECTED, t->refusal);
        ledger_op_add_message(op, &r, NULL, NULL);
        if (t->ack.len > 0) {
            ledger_sender_ack_rec a = {0};
            a.message = LEDGER_OP_MESSAGE(0);
            a.code = px_str_from_cstr(hl7_ack_code_name(hl7_ack_code_for(t->ack_mode, 'R')));
            a.bytes = px_buf_view(&t->ack);
            a.sent_at_ms = proxy_wall_ms();
            ledger_op_add_sender_ack(op, &a, NULL);
        }
        proxy_ledger_submit(t->px, op, t);
    }
}

void proxy_txn_refuse_unframed(proxy_conn *c, unsigned reason, const char *text)
{
    /* A frame that cannot be read leaves a row too, without a body: there is no message. */
    ledger_op_t *op = op_new(NULL);
    if (op == NULL)
        return;
    ledger_message_rec r = {0};
    r.received_at_ms = proxy_wall_ms();
    r.feed = px_str_from_cstr(c->feed->cfg->name);
    r.peer = px_str_from_cstr(c->peer);
    r.config_version = (int64_t)route_config_version_id(c->px->cfg);
    r.state = LEDGER_MSG_REJECTED;
    r.reason = px_str_from_cstr(text);
    if (ledger_op_add_message(op, &r, NULL, NULL) != PX_OK) {
        ledger_op_destroy(op);
        return;
    }
    (void)reason;
    proxy_ledger_submit(c->px, op, NULL);
}

/* ---- the legacy leg ---- */

static void legacy_done(proxy_up_req *req, const proxy_up_result *res);

static void legacy_send(proxy_txn *t, proxy_up_lane *lane)
{
    t->up.msg = t->msg;
    t->up.control_id = t->msh.control_id;
    t->up.enhanced = t->ack_mode == HL7_ACK_MODE_ENHANCED;
    t->up.batch = t->batch_count > 0;
    t->up.done = legacy_done;
    t->up.data = t;
    t->legacy = TXN_LEGACY_SENT;
    t->attempts++;
    t->pending++;
    proxy_upstream_submit(t->feed->upstream, lane, &t->up);
}

static proxy_up_lane *txn_lane(proxy_txn *t)
{
    if (t->key_lane != NULL)
        return proxy_lane_ref_lane(t->key_lane);
    if (t->route.ordering.kind == ROUTE_ORDER_FEED || t->conn == NULL)
        return t->feed->feed_lane;
    return t->conn->lane;
}

static void legacy_done(proxy_up_req *req, const proxy_up_result *res)
{
    proxy_txn *t = req->data;
    t->pending--;
    t->up_res = *res;
    px_buf_reset(&t->up_ack);
    if (res->ack.len > 0 && px_buf_append_str(&t->up_ack, res->ack) == PX_OK)
        t->up_res.ack = px_buf_view(&t->up_ack);
    else
        t->up_res.ack = PX_STR_NULL;
    t->legacy = TXN_LEGACY_DONE;
    if (t->store_forward && !t->in_sf &&
        (res->outcome == PROXY_UP_DOWN || res->outcome == PROXY_UP_CANCELLED)) {
        /* Stopping: never sent, so it stays in the outbox for the next start. */
        t->settled = true;
        txn_maybe_free(t);
        return;
    }
    if (t->in_sf) {
        proxy_feed *f = t->feed;
        f->sf.sending = false;
        if (res->outcome == PROXY_UP_DOWN || res->outcome == PROXY_UP_CANCELLED) {
            /* Still owed: keep it at the head and try again after a pause. */
            t->legacy = TXN_LEGACY_NONE;
            f->sf.backoff_ms = f->sf.backoff_ms == 0 ? 200 : f->sf.backoff_ms * 2;
            if (f->sf.backoff_ms > 5000)
                f->sf.backoff_ms = 5000;
            if (!t->px->stopping)
                uv_timer_start(&f->sf.retry, sf_retry_cb, f->sf.backoff_ms, 0);
            return;
        }
        f->sf.backoff_ms = 0;
        f->sf.head = t->sf_next;
        if (f->sf.head == NULL)
            f->sf.tail = NULL;
        f->sf.count--;
        t->in_sf = false;
        t->sf_next = NULL;
        txn_answer(t); /* records the outcome; the sender was answered long ago */
        sf_kick(f);
        proxy_recovery_poke(f->px);
        return;
    }
    txn_answer(t);
}

/* ---- the store-and-forward queue ---- */

static void sf_retry_cb(uv_timer_t *timer)
{
    sf_kick(timer->data);
}

static void sf_kick(proxy_feed *f)
{
    /* Bounds what a crash makes the EHR receive twice (RELIABILITY B1): the delivered
     * messages whose outbox rows are not yet deleted durably. */
    if (f->sf.sending || f->sf.head == NULL || f->px->stopping ||
        f->sf.unsettled >= SF_MAX_UNSETTLED)
        return;
    f->sf.sending = true;
    legacy_send(f->sf.head, f->feed_lane);
}

static void sf_append(proxy_feed *f, proxy_txn *t)
{
    if (f->sf.tail != NULL)
        f->sf.tail->sf_next = t;
    else
        f->sf.head = t;
    f->sf.tail = t;
    f->sf.count++;
}

static void sf_push(proxy_feed *f, proxy_txn *t)
{
    t->in_sf = true;
    t->store_forward = true;
    t->sf_next = NULL;
    if (proxy_recovering(f->px)) {
        /* Rows of an earlier run go first (RELIABILITY B13): wait behind them. */
        if (f->sf.later_tail != NULL)
            f->sf.later_tail->sf_next = t;
        else
            f->sf.later_head = t;
        f->sf.later_tail = t;
        return;
    }
    if (f->sf.tail != NULL)
        f->sf.tail->sf_next = t;
    else
        f->sf.head = t;
    f->sf.tail = t;
    f->sf.count++;
    sf_kick(f);
}

void proxy_sf_release_later(proxy_feed *f)
{
    proxy_txn *t = f->sf.later_head;
    f->sf.later_head = f->sf.later_tail = NULL;
    while (t != NULL) {
        proxy_txn *next = t->sf_next;
        t->sf_next = NULL;
        sf_append(f, t);
        t = next;
    }
    sf_kick(f);
}

px_err proxy_txn_recovered(proxy_feed *f, const ledger_outbox_row *row)
{
    proxy_t *px = f->px;
    proxy_txn *t = px_calloc(1, sizeof(*t));
    if (t == NULL)
        return PX_ERR_NOMEM;
    t->px = px;
    t->feed = f;
    t->cfg = route_config_ref(px->cfg);
    t->msg = px_msg_ref(row->body);
    t->id = row->message;
    t->received_at_ms = row->received_at_ms;
    px_buf_init(&t->ack, 64 * 1024);
    px_buf_init(&t->up_ack, f->cfg->max_message_bytes + 64);
    hl7_msg_t *m = parser();
    px_str bytes = px_msg_bytes(t->msg);
    if (m != NULL && hl7_parse(m, bytes.ptr, bytes.len, 0, NULL) == PX_OK)
        hl7_msh_read(m, &t->msh, NULL);
    t->ack_mode = hl7_ack_mode_for(&t->msh, f->cfg->defaults.ack_mode);
    t->attempts = (unsigned)row->attempts;
    t->ledger = TXN_LEDGER_OK;
    t->answered = true;
    t->ack_recorded = true;
    t->store_forward = true;
    px->inflight_bytes += bytes.len;
    px->txns_open++;
    t->in_sf = true;
    sf_append(f, t);
    sf_kick(f);
    return PX_OK;
}

void proxy_txn_cleanup(void)
{
    hl7_msg_destroy(shared_parser);
    shared_parser = NULL;
    EVP_MD_CTX_free(shared_md);
    shared_md = NULL;
}

void proxy_sf_init(proxy_feed *f)
{
    uv_timer_init(f->px->loop, &f->sf.retry);
    f->sf.retry.data = f;
}

static void sf_timer_closed(uv_handle_t *h)
{
    proxy_feed *f = h->data;
    f->px->pending_closes--;
    proxy_maybe_finish_stop(f->px);
}

void proxy_sf_close(proxy_feed *f)
{
    /* Messages still queued stay in the outbox and are delivered after the restart. */
    proxy_txn *lists[2] = {f->sf.head, f->sf.later_head};
    f->sf.head = f->sf.tail = f->sf.later_head = f->sf.later_tail = NULL;
    f->sf.count = 0;
    for (int i = 0; i < 2; i++) {
        proxy_txn *t = lists[i];
        while (t != NULL) {
            proxy_txn *next = t->sf_next;
            t->in_sf = false;
            if (t->legacy != TXN_LEGACY_SENT)
                t->settled = true; /* a send in flight settles when the upstream closes */
            txn_maybe_free(t);
            t = next;
        }
    }
    f->px->pending_closes++;
    uv_close((uv_handle_t *)&f->sf.retry, sf_timer_closed);
}

/* ---- the answer ---- */

static ledger_leg_state leg_state_of(const proxy_up_result *r)
{
    switch (r->outcome) {
    case PROXY_UP_ACKED:
        if (r->code == HL7_ACK_AA || r->code == HL7_ACK_CA)
            return LEDGER_LEG_DELIVERED;
        return LEDGER_LEG_REJECTED;
    case PROXY_UP_ANOMALY:
    case PROXY_UP_UNKNOWN:
        return LEDGER_LEG_UNKNOWN;
    case PROXY_UP_DOWN:
    case PROXY_UP_CANCELLED:
        return LEDGER_LEG_FAILED;
    }
    return LEDGER_LEG_UNKNOWN;
}

static void add_divergence(ledger_op_t *op, int64_t message, ledger_divergence_kind kind,
                           const char *detail)
{
    ledger_divergence_rec d = {0};
    d.message = message;
    d.kind = kind;
    d.detail = px_str_from_cstr(detail);
    d.at_ms = proxy_wall_ms();
    ledger_op_add_divergence(op, &d, NULL);
}

/* Records the legacy leg's outcome, the ACK the sender got and any divergence, in one op. */
/* The ids and bytes of the messages a transaction carries (several for a batch). */
static size_t txn_messages(proxy_txn *t, const int64_t **ids, const px_str **parts)
{
    if (t->batch_count > 0) {
        *ids = t->batch_ids;
        *parts = t->batch_parts;
        return t->batch_count;
    }
    *ids = &t->id;
    *parts = NULL;
    return 1;
}

/* Records the legacy leg's outcome, the ACK the sender got and any divergence, in one op. */
static void txn_record(proxy_txn *t)
{
    ledger_op_t *op = op_new(t);
    if (op == NULL) {
        log_txn(PX_LOG_ERROR, "record_failed", t, "no memory");
        return;
    }
    const int64_t *stored_ids;
    const px_str *parts;
    size_t n = txn_messages(t, &stored_ids, &parts);
    const proxy_up_result *r = &t->up_res;
    bool sent = t->legacy == TXN_LEGACY_DONE && t->attempts > 0;
    for (size_t k = 0; k < n; k++) {
        int64_t msg_id = stored_ids[k];
        if (t->ledger == TXN_LEDGER_FAILED) {
            /* The first write failed: store the message now, as rejected. */
            ledger_message_rec m =
                message_rec(t, LEDGER_MSG_REJECTED, "ledger write failed; refused");
            if (parts != NULL)
                m.body_part = parts[k];
            ledger_op_add_message(op, &m, &msg_id, NULL);
        }
        ledger_leg_rec leg = {0};
        leg.message = msg_id;
        leg.leg = LEDGER_LEG_LEGACY;
        leg.updated_at_ms = proxy_wall_ms();
        leg.latency_us = -1;
        char detail[256];
        if (sent) {
            leg.state = leg_state_of(r);
            leg.attempts = (int)t->attempts;
            if (r->code_valid)
                leg.ack_code = px_str_from_cstr(hl7_ack_code_name(r->code));
            leg.ack = r->ack;
            if (r->outcome != PROXY_UP_ACKED || r->msa2_mismatch)
                leg.error = px_str_from_cstr(r->reason);
            leg.latency_us = (int64_t)r->latency_us;
            ledger_op_add_leg(op, &leg, NULL);
            if (r->outcome == PROXY_UP_ANOMALY || r->msa2_mismatch) {
                snprintf(detail, sizeof(detail),
                         "{\"leg\":\"legacy\",\"reason\":\"%s\",\"relayed\":%s}", r->reason,
                         r->outcome == PROXY_UP_ACKED ? "true" : "false");
                add_divergence(op, msg_id, LEDGER_DIV_ACK_ANOMALY, detail);
            } else if (r->outcome == PROXY_UP_UNKNOWN) {
                snprintf(detail, sizeof(detail), "{\"leg\":\"legacy\",\"reason\":\"%s\"}",
                         r->reason);
                add_divergence(op, msg_id, LEDGER_DIV_UNKNOWN_OUTCOME, detail);
            } else if (t->store_forward && r->outcome == PROXY_UP_ACKED && r->code_valid &&
                       r->code != HL7_ACK_AA && r->code != HL7_ACK_CA) {
                /* The sender was told it was accepted; the EHR said otherwise. */
                snprintf(
                    detail, sizeof(detail),
                    "{\"sender_ack\":\"accepted\",\"legacy\":\"%s\",\"policy\":\"store_forward\"}",
                    hl7_ack_code_name(r->code));
                add_divergence(op, msg_id, LEDGER_DIV_OUTCOME_MISMATCH, detail);
            }
            if (t->store_forward) {
                ledger_outbox_rec ob = {0};
                ob.action = LEDGER_OUTBOX_DELETE;
                ob.message = msg_id;
                ob.leg = LEDGER_LEG_LEGACY;
                ledger_op_add_outbox(op, &ob, NULL);
            }
        } else if (!t->store_forward) {
            leg.state = LEDGER_LEG_FAILED;
            leg.error = px_str_from_cstr(
                t->ledger == TXN_LEDGER_FAILED
                    ? "not forwarded: ledger write failed"
                    : (t->no_answer ? "not forwarded: upstream down (held)" : "not forwarded"));
            ledger_op_add_leg(op, &leg, NULL);
        }
        if (k == 0 && !t->ack_recorded && t->answered && !t->no_answer && t->ack.len > 0) {
            ledger_sender_ack_rec a = {0};
            a.message = msg_id;
            a.code = ack_code_of(px_buf_view(&t->ack));
            a.bytes = px_buf_view(&t->ack);
            a.sent_at_ms = proxy_wall_ms();
            ledger_op_add_sender_ack(op, &a, NULL);
            t->ack_recorded = true;
        }
    }
    if (t->store_forward && t->legacy == TXN_LEGACY_DONE && t->sf_record == NULL) {
        t->sf_record = op;
        t->feed->sf.unsettled++;
    }
    proxy_ledger_submit(t->px, op, t);
}

static void answer_waiters(proxy_txn *t);

/* Decides the sender's answer once what it depends on is known, then records. */
static void txn_answer(proxy_txn *t)
{
    proxy_feed *f = t->feed;
    if (t->store_forward) {
        /* The sender was answered when the message became durable; only record. */
        if (t->legacy == TXN_LEGACY_DONE) {
            t->settled = true;
            txn_record(t);
        }
        txn_maybe_free(t);
        return;
    }
    if (t->ledger == TXN_LEDGER_PENDING || t->legacy == TXN_LEGACY_SENT)
        return;
    if (t->answered)
        return;
    const char *nak_text = NULL;
    const proxy_up_result *r = &t->up_res;
    if (t->ledger == TXN_LEDGER_FAILED) {
        nak_text = "message could not be stored; resend later";
    } else if (t->legacy != TXN_LEGACY_DONE) {
        nak_text = "message not forwarded";
    } else {
        switch (r->outcome) {
        case PROXY_UP_ACKED:
            px_buf_reset(&t->ack);
            px_buf_append_str(&t->ack, r->ack);
            break;
        case PROXY_UP_ANOMALY:
            nak_text = "the receiving system's answer was not a valid ACK";
            break;
        case PROXY_UP_UNKNOWN:
            nak_text = "no ACK from the receiving system in time";
            break;
        case PROXY_UP_CANCELLED:
            nak_text = "shutting down";
            break;
        case PROXY_UP_DOWN:
            switch (t->route.on_upstream_down) {
            case ROUTE_DOWN_HOLD:
                t->no_answer = true;
                f->stats.held++;
                log_txn(PX_LOG_WARN, "message_held", t, "upstream down");
                break;
            case ROUTE_DOWN_NAK:
                nak_text = "receiving system unavailable";
                break;
            case ROUTE_DOWN_QUEUE: {
                /* Store and forward: answer once the outbox row is durable. */
                ledger_op_t *op = op_new(t);
                if (op != NULL) {
                    ledger_outbox_rec ob = {0};
                    ob.action = LEDGER_OUTBOX_INSERT;
                    ob.message = t->id;
                    ob.leg = LEDGER_LEG_LEGACY;
                    ob.at_ms = proxy_wall_ms();
                    ledger_leg_rec leg = {0};
                    leg.message = t->id;
                    leg.leg = LEDGER_LEG_LEGACY;
                    leg.state = LEDGER_LEG_PENDING;
                    leg.attempts = (int)t->attempts;
                    leg.error = px_str_from_cstr("queued: upstream down");
                    leg.latency_us = -1;
                    leg.updated_at_ms = proxy_wall_ms();
                    if (ledger_op_add_outbox(op, &ob, NULL) == PX_OK &&
                        ledger_op_add_leg(op, &leg, NULL) == PX_OK) {
                        t->store_forward = true;
                        t->legacy = TXN_LEGACY_NONE;
                        t->ledger = TXN_LEDGER_PENDING;
                        proxy_ledger_submit(t->px, op, t);
                        return;
                    }
                    ledger_op_destroy(op);
                }
                nak_text = "receiving system unavailable";
                break;
            }
            }
            break;
        }
    }
    /* AR in original mode, CE in enhanced mode, with ERR 207 (RELIABILITY B5, B11). */
    if (nak_text != NULL)
        build_ack_later(t, t->ack_mode == HL7_ACK_MODE_ENHANCED ? 'E' : 'R',
                        HL7_ERR_APPLICATION_INTERNAL, nak_text);
    t->answered = true;
    if (t->no_answer) {
        /* Held: the sender will resend, so the window must not answer that resend. */
        if (t->rtx != NULL) {
            proxy_rtx_remove(f->rtx, t->rtx);
            t->rtx = NULL;
        }
    } else if (t->rtx != NULL) {
        proxy_rtx_answer(f->rtx, t->rtx, px_buf_view(&t->ack));
        t->rtx->waiters = NULL;
        t->rtx = NULL;
    }
    t->settled = true;
    /* The sender's answer goes out before the outcome is recorded: the record does not
     * gate it (the message itself is already durable), and submitting it costs time. */
    t->pending++; /* keeps t alive through the flush */
    answer_waiters(t);
    if (t->conn != NULL) {
        if (t->no_answer)
            proxy_conn_hold(t->conn);
        proxy_conn_flush(t->conn);
    }
    txn_record(t);
    t->pending--;
    txn_maybe_free(t);
}

/* Resends that waited for t get what t got. */
static void answer_waiters(proxy_txn *t)
{
    proxy_txn *w = t->waiters;
    t->waiters = NULL;
    while (w != NULL) {
        proxy_txn *next = w->waiter_next;
        w->waiter_next = NULL;
        w->waiting_for = NULL;
        px_buf_reset(&w->ack);
        px_buf_append_str(&w->ack, px_buf_view(&t->ack));
        w->no_answer = t->no_answer;
        w->answered = true;
        w->settled = true;
        txn_record_retransmission(w);
        if (w->conn != NULL) {
            if (w->no_answer)
                proxy_conn_hold(w->conn);
            proxy_conn_flush(w->conn);
        } else {
            txn_maybe_free(w);
        }
        w = next;
    }
}

/* ---- records that failed ---- */

static void record_retry_cb(uv_timer_t *timer)
{
    proxy_txn_retry_records(timer->data);
}

/* Nothing is dropped silently: a record that could not be written (disk full, I/O error)
 * is written again until it is durable; only a stop gives up, naming the message. */
static void record_retry_later(proxy_txn *t, const char *why)
{
    proxy_t *px = t->px;
    t->record_attempts++;
    if (px->finishing) {
        log_txn(PX_LOG_ERROR, "record_lost", t, why);
        return;
    }
    if (t->record_attempts == 1)
        log_txn(PX_LOG_ERROR, "record_failed", t, why);
    t->ack_recorded = false;
    t->pending++; /* held until the retry */
    t->retry_next = px->record_retries;
    px->record_retries = t;
    if (!uv_is_active((uv_handle_t *)&px->record_retry))
        uv_timer_start(&px->record_retry, record_retry_cb, 1000, 0);
}

void proxy_txn_retry_records(proxy_t *px)
{
    proxy_txn *t = px->record_retries;
    px->record_retries = NULL;
    while (t != NULL) {
        proxy_txn *next = t->retry_next;
        t->retry_next = NULL;
        t->pending--;
        if (!px->ledger_closed) {
            if (t->retransmit)
                txn_record_retransmission(t);
            else if (t->refused)
                txn_record_refusal(t);
            else
                txn_record(t);
        }
        txn_maybe_free(t);
        t = next;
    }
}

/* ---- ledger completions ---- */

void proxy_txn_ledger_done(proxy_txn *t, ledger_op_t *op)
{
    px_error err;
    px_err rc = ledger_op_result(op, &err);
    proxy_feed *f = t->feed;
    t->pending--;
    if (t->ledger != TXN_LEDGER_PENDING) {
        /* A follow-up record. */
        if (op == t->sf_record) {
            t->sf_record = NULL;
            f->sf.unsettled--;
            sf_kick(f);
        }
        if (rc != PX_OK)
            record_retry_later(t, err.msg);
        txn_maybe_free(t);
        return;
    }
    if (rc != PX_OK) {
        t->ledger = TXN_LEDGER_FAILED;
        f->stats.ledger_failures++;
        if (!f->ledger_first)
            log_txn(PX_LOG_ERROR, "ledger_failed", t, "feed now runs ledger-first");
        f->ledger_first = true;
        if (t->store_forward) {
            /* The queue row did not become durable: refuse instead of answering. */
            t->store_forward = false;
            t->legacy = TXN_LEGACY_DONE;
        }
        if (t->legacy == TXN_LEGACY_WAITING)
            t->legacy = TXN_LEGACY_NONE;
        txn_answer(t);
        return;
    }
    t->ledger = TXN_LEDGER_OK;
    f->ledger_first = false;
    if (t->store_forward && !t->answered) {
        /* commit, or queue while down: durable now, so answer, then deliver from the queue. */
        build_ack_later(t, 'A', 0, NULL);
        t->answered = true;
        if (t->rtx != NULL) {
            proxy_rtx_answer(f->rtx, t->rtx, px_buf_view(&t->ack));
            t->rtx->waiters = NULL;
            t->rtx = NULL;
        }
        answer_waiters(t);
        ledger_op_t *rec = t->ack.len > 0 ? op_new(t) : NULL;
        if (rec != NULL) {
            ledger_sender_ack_rec a = {0};
            a.message = t->id;
            a.code = px_str_from_cstr(hl7_ack_code_name(hl7_ack_code_for(t->ack_mode, 'A')));
            a.bytes = px_buf_view(&t->ack);
            a.sent_at_ms = proxy_wall_ms();
            ledger_op_add_sender_ack(rec, &a, NULL);
            t->ack_recorded = true;
            proxy_ledger_submit(t->px, rec, t);
        }
        sf_push(f, t);
        if (t->conn != NULL)
            proxy_conn_flush(t->conn);
        return;
    }
    if (t->legacy == TXN_LEGACY_WAITING)
        legacy_send(t, txn_lane(t));
    txn_answer(t);
}

/* ---- batches ---- */

/* A batch (FHS/BHS … BTS/FTS) is forwarded whole and its answer relayed; the ledger holds
 * one row per contained message. Retransmission checks do not apply to batches. */
static void txn_batch(proxy_txn *t, proxy_conn *c)
{
    proxy_t *px = t->px;
    proxy_feed *f = t->feed;
    px_str bytes = px_msg_bytes(t->msg);
    hl7_batch_iter it;
    px_str part;
    size_t n = 0;
    hl7_batch_iter_init(&it, bytes);
    while (hl7_batch_next(&it, &part, NULL) == PX_OK)
        n++;
    hl7_msg_t *m = parser();
    if (n == 0 || m == NULL) {
        txn_refuse(t, NULL, 0, "batch without a readable message", PROXY_REFUSE_NO_MSH, false);
        proxy_conn_flush(c);
        proxy_conn_close(c, "batch without a readable message");
        return;
    }
    t->batch_ids = px_calloc(n, sizeof(*t->batch_ids));
    t->batch_parts = px_calloc(n, sizeof(*t->batch_parts));
    ledger_op_t *op = op_new(t);
    if (t->batch_ids == NULL || t->batch_parts == NULL || op == NULL) {
        ledger_op_destroy(op);
        proxy_conn_close(c, "no memory for a batch");
        return;
    }
    hl7_batch_iter_init(&it, bytes);
    hl7_msh first = {0};
    size_t k = 0;
    while (k < n && hl7_batch_next(&it, &part, NULL) == PX_OK) {
        t->batch_parts[k] = part;
        if (hl7_parse(m, part.ptr, part.len, 0, NULL) == PX_OK)
            hl7_msh_read(m, &t->msh, NULL);
        else
            memset(&t->msh, 0, sizeof(t->msh));
        if (k == 0) {
            first = t->msh;
            route_resolve(t->cfg, f->cfg, m, &first, &t->route);
        }
        ledger_message_rec r = message_rec(t, LEDGER_MSG_RECEIVED, "in a batch");
        r.hash = NULL;
        r.body_part = part;
        int64_t ref = 0;
        ledger_op_add_message(op, &r, &ref, NULL);
        ledger_leg_rec leg = {0};
        leg.message = ref;
        leg.leg = LEDGER_LEG_LEGACY;
        leg.state = LEDGER_LEG_IN_FLIGHT;
        leg.latency_us = -1;
        leg.updated_at_ms = t->received_at_ms;
        ledger_op_add_leg(op, &leg, NULL);
        k++;
    }
    t->batch_count = k;
    /* The batch answers to its header's control id (BHS-11, else FHS-11), else the first
     * message's. */
    t->msh = first;
    px_str header = it.bhs.len > 0 ? it.bhs : it.fhs;
    if (header.len > 4) {
        px_str id = hl7_piece(header, header.ptr[3], 11);
        if (id.len > 0)
            t->msh.control_id = id;
    }
    t->ack_mode = hl7_ack_mode_for(&t->msh, t->route.ack_mode);
    t->ledger = TXN_LEDGER_PENDING;
    t->id = proxy_ledger_submit(px, op, t);
    for (size_t i = 0; i < k; i++)
        t->batch_ids[i] = ledger_op_message_id(op, i);
    if (!f->ledger_first)
        legacy_send(t, txn_lane(t));
    else
        t->legacy = TXN_LEGACY_WAITING;
}

/* ---- application ACKs (enhanced mode) ---- */

static void app_route_add(proxy_txn *t)
{
    proxy_t *px = t->px;
    if (t->conn == NULL || t->msh.control_id.len >= sizeof(px->app_routes[0].control_id))
        return;
    proxy_app_route *r = &px->app_routes[px->app_route_next];
    px->app_route_next = (px->app_route_next + 1) % PROXY_APP_ROUTES;
    memset(r, 0, sizeof(*r));
    r->state = 1;
    r->conn = t->conn;
    r->message = t->id;
    px_str_to_cbuf(t->msh.control_id, r->control_id, sizeof(r->control_id));
}

void proxy_app_routes_forget(proxy_t *px, proxy_conn *c)
{
    if (px->app_routes == NULL)
        return;
    for (size_t i = 0; i < PROXY_APP_ROUTES; i++)
        if (px->app_routes[i].conn == c)
            px->app_routes[i].conn = NULL;
}

static void record_relay(proxy_t *px, proxy_feed *f, const char *peer, const hl7_msh *msh,
                         px_msg_t *body, const char *reason)
{
    ledger_op_t *op = op_new(NULL);
    if (op == NULL)
        return;
    ledger_message_rec r = {0};
    r.received_at_ms = proxy_wall_ms();
    r.feed = px_str_from_cstr(f->cfg->name);
    r.peer = px_str_from_cstr(peer);
    r.sending_app = msh->sending_app;
    r.sending_facility = msh->sending_facility;
    r.receiving_app = msh->receiving_app;
    r.receiving_facility = msh->receiving_facility;
    r.type = msh->type;
    r.trigger = msh->trigger;
    r.control_id = msh->control_id;
    r.version = msh->version;
    r.config_version = (int64_t)route_config_version_id(px->cfg);
    r.state = LEDGER_MSG_RECEIVED;
    r.reason = px_str_from_cstr(reason);
    r.body = body;
    ledger_op_add_message(op, &r, NULL, NULL);
    proxy_ledger_submit(px, op, NULL);
}

/* The EHR's application ACK for an earlier message: carry it back to the sender. */
bool proxy_txn_on_unsolicited(proxy_upstream_t *u, px_str frame, void *arg)
{
    proxy_t *px = arg;
    (void)u;
    hl7_msg_t *m = parser();
    hl7_msh msh;
    hl7_ack_info info;
    if (m == NULL || hl7_parse(m, frame.ptr, frame.len, 0, NULL) != PX_OK ||
        hl7_msh_read(m, &msh, NULL) != PX_OK || hl7_ack_read(m, &info, NULL) != PX_OK)
        return false;
    proxy_app_route *r = NULL;
    for (size_t i = 0; i < PROXY_APP_ROUTES; i++) {
        proxy_app_route *e = &px->app_routes[i];
        if (e->state == 1 && px_str_eq_cstr(info.acked_control_id, e->control_id)) {
            r = e;
            break;
        }
    }
    if (r == NULL)
        return false;
    px_msg_t *body = NULL;
    if (px_msg_create(frame.ptr, frame.len, &body, NULL) != PX_OK)
        return true; /* taken, though it could not be recorded: the sender's resend settles it */
    /* Views into the copy: m still indexes the EHR's frame, which dies after this call. */
    hl7_parse(m, px_msg_bytes(body).ptr, px_msg_bytes(body).len, 0, NULL);
    hl7_msh_read(m, &msh, NULL);
    proxy_conn *c = r->conn;
    if (c == NULL || c->closing) {
        record_relay(px, &px->feeds[0], "", &msh, body,
                     "application ACK from the upstream; sender disconnected, not delivered");
        r->state = 0;
    } else {
        proxy_conn_send(c, px_msg_bytes(body));
        px_str_to_cbuf(msh.control_id, r->app_ack_id, sizeof(r->app_ack_id));
        r->state = 2;
        record_relay(px, c->feed, c->peer, &msh, body,
                     "application ACK from the upstream, relayed to the sender");
    }
    px_msg_unref(body);
    return true;
}

/* The sender's commit ACK for an application ACK we relayed: pass it on to the EHR. */
static bool app_ack_from_sender(proxy_txn *t, proxy_conn *c, const hl7_msg_t *m)
{
    proxy_t *px = t->px;
    hl7_ack_info info;
    if (hl7_ack_read(m, &info, NULL) != PX_OK)
        return false;
    for (size_t i = 0; i < PROXY_APP_ROUTES; i++) {
        proxy_app_route *r = &px->app_routes[i];
        if (r->state != 2 || r->conn != c || !px_str_eq_cstr(info.acked_control_id, r->app_ack_id))
            continue;
        r->state = 0;
        proxy_upstream_send_unsolicited(t->feed->upstream, px_msg_bytes(t->msg));
        record_relay(px, t->feed, c->peer, &t->msh, t->msg,
                     "commit ACK from the sender for an application ACK, relayed upstream");
        t->legacy = TXN_LEGACY_DONE;
        t->answered = true;
        t->no_answer = true;
        t->settled = true;
        proxy_conn_flush(c);
        return true;
    }
    return false;
}

/* ---- the frame ---- */

void proxy_txn_frame(proxy_conn *c, px_str frame)
{
    proxy_t *px = c->px;
    proxy_feed *f = c->feed;
    proxy_txn *t = txn_new(c, frame);
    if (t == NULL) {
        proxy_conn_close(c, "no memory for a message");
        return;
    }
    hl7_msg_t *m = parser();
    px_str bytes = px_msg_bytes(t->msg);
    if (hl7_is_batch(bytes)) {
        txn_batch(t, c);
        return;
    }
    if (m == NULL || hl7_parse(m, bytes.ptr, bytes.len, 0, NULL) != PX_OK ||
        hl7_msh_read(m, &t->msh, NULL) != PX_OK) {
        /* No MSH: nothing to answer to. Record, then close as the EHR port would. */
        txn_refuse(t, NULL, 0, "no readable MSH segment", PROXY_REFUSE_NO_MSH, false);
        proxy_conn_flush(c);
        proxy_conn_close(c, "no readable MSH segment");
        return;
    }
    t->ack_mode = hl7_ack_mode_for(&t->msh, t->feed->cfg->defaults.ack_mode);
    if (t->msh.control_id.len == 0) {
        txn_refuse(t, m, HL7_ERR_REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is empty",
                   PROXY_REFUSE_NO_CONTROL_ID, true);
        proxy_conn_flush(c);
        return;
    }
    if (px_str_eq(t->msh.type, PX_LIT("ACK")) && app_ack_from_sender(t, c, m))
        return;
    route_resolve(t->cfg, f->cfg, m, &t->msh, &t->route);
    t->ack_mode = hl7_ack_mode_for(&t->msh, t->route.ack_mode);
    if (t->route.ordering.kind == ROUTE_ORDER_KEY) {
        px_str key;
        route_ordering_value(&t->route.ordering, m, &key);
        t->key_lane = proxy_lanes_acquire(f->key_lanes, key);
        if (t->key_lane == NULL) {
            proxy_conn_close(c, "no memory for an ordering lane");
            return;
        }
    }
    if (t->route.filter_action == ROUTE_FILTER_REFUSE) {
        char why[160];
        snprintf(why, sizeof(why), "refused by the feed's filter on %s",
                 t->route.filter_path != NULL ? t->route.filter_path : "?");
        txn_refuse(t, m, HL7_ERR_APPLICATION_INTERNAL, why, PROXY_REFUSE_FILTER, true);
        proxy_conn_flush(c);
        return;
    }
    hash_message(m, bytes, t->hash);

    /* The retransmission window. */
    bool duplicate = false;
    proxy_rtx_entry *e =
        proxy_rtx_find(f->rtx, 0, t->msh.sending_app, t->msh.sending_facility, t->msh.control_id);
    if (e != NULL && e->state == PROXY_RTX_IN_FLIGHT && e->waiters == NULL)
        e = NULL; /* nothing to wait for */
    if (e != NULL && memcmp(e->hash, t->hash, LEDGER_HASH_LEN) == 0) {
        f->stats.retransmits++;
        log_txn(PX_LOG_INFO, "retransmission", t,
                e->state == PROXY_RTX_ANSWERED ? "answered with the stored ACK"
                                               : "waiting for the original");
        t->retransmit = true;
        snprintf(t->refusal, sizeof(t->refusal),
                 "retransmission of message %" PRId64 "; not forwarded again", e->message_id);
        t->legacy = TXN_LEGACY_DONE;
        if (e->state == PROXY_RTX_ANSWERED) {
            px_buf_append_str(&t->ack, e->ack);
            t->answered = true;
            t->settled = true;
            txn_record_retransmission(t);
            proxy_conn_flush(c);
        } else {
            proxy_txn *orig = e->waiters;
            t->waiting_for = orig;
            t->waiter_next = orig->waiters;
            orig->waiters = t;
        }
        return;
    }
    if (e != NULL) {
        duplicate = true;
        f->stats.duplicates++;
        log_txn(PX_LOG_WARN, "duplicate_control_id", t, "same control id, different content");
    }
    int64_t id_ref = 0;
    ledger_op_t *op = op_new(t);
    if (op == NULL) {
        proxy_conn_close(c, "no memory for a ledger record");
        return;
    }
    ledger_message_rec r = message_rec(t, LEDGER_MSG_RECEIVED, NULL);
    bool commit = t->route.ack_policy == ROUTE_ACK_COMMIT;
    bool forward_now = !commit && !f->ledger_first;
    ledger_op_add_message(op, &r, &id_ref, NULL);
    ledger_leg_rec leg = {0};
    leg.message = id_ref;
    leg.leg = LEDGER_LEG_LEGACY;
    leg.state = forward_now ? LEDGER_LEG_IN_FLIGHT : LEDGER_LEG_PENDING;
    leg.latency_us = -1;
    leg.updated_at_ms = t->received_at_ms;
    ledger_op_add_leg(op, &leg, NULL);
    if (commit) {
        ledger_outbox_rec ob = {0};
        ob.action = LEDGER_OUTBOX_INSERT;
        ob.message = id_ref;
        ob.leg = LEDGER_LEG_LEGACY;
        ob.at_ms = t->received_at_ms;
        ledger_op_add_outbox(op, &ob, NULL);
        t->store_forward = true;
    }
    if (!(t->route.legs & ROUTE_LEG_FHIR) && (t->route.legacy_only_class != ROUTE_CLASS_NONE ||
                                              t->route.filter_action != ROUTE_FILTER_NONE)) {
        /* Kept off the FHIR leg on purpose: say so. */
        char why[96];
        snprintf(why, sizeof(why), "legacy only: %s",
                 t->route.filter_action != ROUTE_FILTER_NONE
                     ? route_filter_action_name(t->route.filter_action)
                     : route_class_name(t->route.legacy_only_class));
        ledger_leg_rec fl = {0};
        fl.message = id_ref;
        fl.leg = LEDGER_LEG_FHIR;
        fl.state = LEDGER_LEG_SKIPPED;
        fl.error = px_str_from_cstr(why);
        fl.latency_us = -1;
        fl.updated_at_ms = t->received_at_ms;
        ledger_op_add_leg(op, &fl, NULL);
    }
    if (duplicate) {
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "{\"earlier_message\":%" PRId64
                 ",\"reason\":\"same sender and control id, different content\"}",
                 e->message_id);
        add_divergence(op, id_ref, LEDGER_DIV_DUPLICATE, detail);
    }
    t->ledger = TXN_LEDGER_PENDING;
    t->id = proxy_ledger_submit(px, op, t);
    if (e == NULL || e->state == PROXY_RTX_ANSWERED) {
        t->rtx = proxy_rtx_insert(f->rtx, 0, t->msh.sending_app, t->msh.sending_facility,
                                  t->msh.control_id, t->hash, t->id);
        if (t->rtx != NULL)
            t->rtx->waiters = t;
    }
    /* The EHR follows what the message asked for (MSH-15/16), whatever our own ACK mode. */
    if (hl7_ack_mode_for(&t->msh, HL7_ACK_MODE_FROM_MSH) == HL7_ACK_MODE_ENHANCED &&
        !px_str_eq(t->msh.app_ack, PX_LIT("NE")))
        app_route_add(t);
    if (forward_now)
        legacy_send(t, txn_lane(t));
    else if (!commit)
        t->legacy = TXN_LEGACY_WAITING;
}

/* ---- ending ---- */

void proxy_txn_detach(proxy_txn *t)
{
    if (t->conn != NULL && !t->ack_sent) {
        /* The connection is going away with t unanswered. */
        t->conn->inflight--;
    }
    t->conn = NULL;
    txn_maybe_free(t);
}

static void txn_maybe_free(proxy_txn *t)
{
    if (t->conn != NULL || t->pending > 0 || !t->settled || t->in_sf || t->waiters != NULL ||
        t->waiting_for != NULL)
        return;
    proxy_txn_free(t);
}

void proxy_txn_free(proxy_txn *t)
{
    proxy_t *px = t->px;
    if (t->rtx != NULL) {
        t->rtx->waiters = NULL;
        proxy_rtx_remove(t->feed->rtx, t->rtx);
    }
    if (t->key_lane != NULL)
        proxy_lanes_release(t->feed->key_lanes, t->key_lane);
    px_free(t->batch_ids);
    px_free(t->batch_parts);
    px->inflight_bytes -= px_msg_bytes(t->msg).len;
    px->txns_open--;
    px_msg_unref(t->msg);
    px_buf_free(&t->ack);
    px_buf_free(&t->up_ack);
    route_config_destroy(t->cfg);
    px_free(t);
    if (px->budget_paused && px->inflight_bytes < route_config_limits(px->cfg)->inflight_bytes) {
        px->budget_paused = false;
        for (proxy_conn *c = px->conns; c != NULL; c = c->next)
            proxy_conn_update_reading(c);
    }
    proxy_maybe_finish_stop(px);
}
