#include "proxy/mock_ehr.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/str.h"
#include "hl7/ack.h"
#include "hl7/hl7.h"
#include "hl7/mllp.h"
#include "proxy/mllp_client.h"

const char proxy_mock_garbage_ack[] = "NOT HL7: mock-ehr garbage acknowledgement\r";

/* Reading pauses while this much is waiting to be written to a peer that does not read,
 * and resumes below the low mark. */
#define OUT_HIGH_WATER (8u * 1024u * 1024u)
#define OUT_LOW_WATER  (1u * 1024u * 1024u)
#define OUT_MAX        (256u * 1024u * 1024u)

/* Answers waiting for their time: framed bytes back to back in `bytes`, and one entry per
 * answer in a ring, in due order (every answer in one queue gets the same delay). */
typedef struct delay_entry {
    uint64_t due_ns;
    size_t len;
} delay_entry;

typedef struct delay_queue {
    px_buf bytes;
    delay_entry *ring;
    size_t head, count, cap; /* cap is 0 or a power of two */
} delay_queue;

typedef struct mock_conn mock_conn;

/* A connection owns three handles (tcp and one timer per delay queue) and frees itself when
 * the last of them is closed. */
struct mock_conn {
    proxy_mock_ehr_t *m;
    mock_conn *prev, *next;
    uint64_t id;
    uv_tcp_t tcp;
    uv_timer_t ack_timer; /* releases `acks` */
    uv_timer_t app_timer; /* releases `app_acks` */
    int open_handles;
    proxy_mllp_in in;
    proxy_mllp_out out;
    delay_queue acks;
    delay_queue app_acks;
    uint64_t received;
    bool reading;
    bool paused;    /* reading stopped for back-pressure */
    bool finishing; /* close once everything queued is written */
    bool closing;
    const char *finish_reason;
};

struct proxy_mock_ehr {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    proxy_mock_ehr_opts opts;
    char host[64];
    unsigned port;
    hl7_msg_t *msg; /* parser for inbound messages */
    hl7_msg_t *ack; /* parser for our own ACKs when spoiling them */
    px_buf scratch; /* one ACK being built */
    int record_fd;  /* -1 when not recording */
    px_buf record;  /* frames not yet appended to the record file */
    bool record_failed;
    uint64_t rng;
    uint64_t next_conn_id;
    uint64_t next_ack_id;
    mock_conn *conns;
    proxy_mock_ehr_stats stats;
    time_t dt_sec;
    char dt[20]; /* MSH-7 for our ACKs, cached per second */
    bool closing;
    void (*closed)(void *ud);
    void *closed_ud;
};

bool proxy_mock_bad_ack_parse(const char *s, proxy_mock_bad_ack *out)
{
    static const struct {
        const char *name;
        proxy_mock_bad_ack v;
    } names[] = {
        {"wrong-msa2", PROXY_MOCK_ACK_WRONG_MSA2},
        {"blank-msa2", PROXY_MOCK_ACK_BLANK_MSA2},
        {"garbage", PROXY_MOCK_ACK_GARBAGE},
        {"no-msa", PROXY_MOCK_ACK_NO_MSA},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].v;
            return true;
        }
    }
    return false;
}

/* splitmix64: small, fast and reproducible from a seed. */
static double mock_random(proxy_mock_ehr_t *m)
{
    uint64_t z = (m->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void mock_log_conn(proxy_mock_ehr_t *m, const mock_conn *c, const char *event,
                          const char *reason)
{
    if (m->opts.log == NULL)
        return;
    if (reason == NULL)
        fprintf(m->opts.log, "{\"event\":\"%s\",\"conn\":%llu}\n", event,
                (unsigned long long)c->id);
    else
        fprintf(m->opts.log,
                "{\"event\":\"%s\",\"conn\":%llu,\"received\":%llu,\"reason\":\"%s\"}\n", event,
                (unsigned long long)c->id, (unsigned long long)c->received, reason);
    fflush(m->opts.log);
}

/* ---- delay queues ---- */

static void delay_queue_init(delay_queue *q)
{
    px_buf_init(&q->bytes, OUT_MAX);
    q->ring = NULL;
    q->head = q->count = q->cap = 0;
}

static void delay_queue_free(delay_queue *q)
{
    px_buf_free(&q->bytes);
    px_free(q->ring);
    q->ring = NULL;
    q->head = q->count = q->cap = 0;
}

/* Records that the bytes appended since `mark` form one answer due at due_ns. */
static px_err delay_queue_push(delay_queue *q, size_t mark, uint64_t due_ns)
{
    if (q->count == q->cap) {
        size_t cap = q->cap == 0 ? 64 : q->cap * 2;
        delay_entry *ring = px_malloc(cap * sizeof(*ring));
        if (ring == NULL) {
            q->bytes.len = mark;
            return PX_ERR_NOMEM;
        }
        for (size_t i = 0; i < q->count; i++)
            ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
        px_free(q->ring);
        q->ring = ring;
        q->head = 0;
        q->cap = cap;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = (delay_entry){due_ns, q->bytes.len - mark};
    q->count++;
    return PX_OK;
}

/* Moves every answer due by now_ns to out, in order. */
static px_err delay_queue_release(delay_queue *q, uint64_t now_ns, px_buf *out)
{
    size_t total = 0, n = 0;
    while (n < q->count) {
        const delay_entry *e = &q->ring[(q->head + n) & (q->cap - 1)];
        if (e->due_ns > now_ns)
            break;
        total += e->len;
        n++;
    }
    if (n == 0)
        return PX_OK;
    px_err rc = px_buf_append(out, q->bytes.data, total);
    if (rc != PX_OK)
        return rc;
    px_buf_consume(&q->bytes, total);
    q->head = (q->head + n) & (q->cap - 1);
    q->count -= n;
    return PX_OK;
}

/* ---- connections ---- */

static void mock_maybe_free(proxy_mock_ehr_t *m);
static void conn_resume(mock_conn *c);

static void conn_close_cb(uv_handle_t *h)
{
    mock_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    proxy_mock_ehr_t *m = c->m;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    proxy_mllp_in_free(&c->in);
    proxy_mllp_out_free(&c->out);
    delay_queue_free(&c->acks);
    delay_queue_free(&c->app_acks);
    px_free(c);
    m->stats.open--;
    mock_maybe_free(m);
}

static void conn_close(mock_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    mock_log_conn(c->m, c, "conn_close", reason);
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&c->ack_timer, conn_close_cb);
    uv_close((uv_handle_t *)&c->app_timer, conn_close_cb);
}

static void conn_stop_reading(mock_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Closes a finishing connection once nothing is left to send. */
static void conn_maybe_finish(mock_conn *c)
{
    if (c->closing || !c->finishing)
        return;
    if (c->acks.count == 0 && c->app_acks.count == 0 && proxy_mllp_out_pending(&c->out) == 0)
        conn_close(c, c->finish_reason);
}

static void conn_flush(mock_conn *c)
{
    if (c->closing)
        return;
    int rc = proxy_mllp_out_flush(&c->out);
    if (rc < 0) {
        conn_close(c, "write_error");
        return;
    }
    if (c->reading && proxy_mllp_out_pending(&c->out) > OUT_HIGH_WATER) {
        conn_stop_reading(c);
        c->paused = true;
    }
    conn_maybe_finish(c);
}

static void conn_arm(mock_conn *c, delay_queue *q, uv_timer_t *t, uv_timer_cb cb)
{
    if (q->count == 0 || c->closing)
        return;
    uint64_t due = q->ring[q->head].due_ns, now = uv_hrtime();
    /* Round up: an answer never leaves before its time. */
    uint64_t ms = due > now ? (due - now + 999999u) / 1000000u : 0;
    uv_timer_start(t, cb, ms, 0);
}

static void conn_ack_timer_cb(uv_timer_t *t);
static void conn_app_timer_cb(uv_timer_t *t);

/* Sends every answer that is due. Commit ACKs go first: each message's commit ACK is due
 * no later than its application ACK, so releasing both queues up to one instant keeps
 * them in order whichever timer fires first. */
static void conn_release(mock_conn *c, bool app)
{
    if (c->closing)
        return;
    uint64_t now = uv_hrtime();
    px_buf *out = proxy_mllp_out_buf(&c->out);
    if (delay_queue_release(&c->acks, now, out) != PX_OK ||
        (app && delay_queue_release(&c->app_acks, now, out) != PX_OK)) {
        conn_close(c, "out_of_memory");
        return;
    }
    conn_arm(c, &c->acks, &c->ack_timer, conn_ack_timer_cb);
    if (app)
        conn_arm(c, &c->app_acks, &c->app_timer, conn_app_timer_cb);
    conn_flush(c);
}

static void conn_ack_timer_cb(uv_timer_t *t)
{
    conn_release(t->data, false);
}

static void conn_app_timer_cb(uv_timer_t *t)
{
    conn_release(t->data, true);
}

static void conn_written(proxy_mllp_out *o, int status)
{
    mock_conn *c = o->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, "write_error");
        return;
    }
    conn_maybe_finish(c);
    if (c->closing)
        return;
    if (c->paused && proxy_mllp_out_pending(&c->out) < OUT_LOW_WATER && !c->finishing) {
        c->paused = false;
        conn_resume(c);
    }
}

/* ---- answers ---- */

static px_str mock_datetime(proxy_mock_ehr_t *m)
{
    time_t now = time(NULL);
    if (now != m->dt_sec || m->dt[0] == '\0') {
        struct tm tm;
        m->dt_sec = now;
        if (localtime_r(&now, &tm) == NULL ||
            strftime(m->dt, sizeof(m->dt), "%Y%m%d%H%M%S", &tm) == 0)
            m->dt[0] = '\0';
    }
    return px_str_from_cstr(m->dt);
}

static px_err append_frame(px_buf *dst, const px_str *parts, size_t n)
{
    size_t mark = dst->len;
    px_err rc = px_buf_append_byte(dst, HL7_MLLP_SB);
    for (size_t i = 0; i < n && rc == PX_OK; i++)
        rc = px_buf_append_str(dst, parts[i]);
    if (rc == PX_OK)
        rc = px_buf_append(dst, "\x1c\r", 2);
    if (rc != PX_OK)
        dst->len = mark;
    return rc;
}

/* Frames the ACK in m->scratch into dst, spoiled as --bad-ack says. */
static px_err mock_emit_ack(proxy_mock_ehr_t *m, px_buf *dst, px_error *err)
{
    px_str ack = px_buf_view(&m->scratch);
    if (m->opts.bad_ack == PROXY_MOCK_ACK_GOOD)
        return append_frame(dst, &ack, 1);
    if (m->opts.bad_ack == PROXY_MOCK_ACK_GARBAGE) {
        px_str g = px_str_from_cstr(proxy_mock_garbage_ack);
        return append_frame(dst, &g, 1);
    }
    px_err rc = hl7_parse(m->ack, ack.ptr, ack.len, 0, err);
    if (rc != PX_OK)
        return rc;
    ptrdiff_t seg = hl7_segment_find(m->ack, PX_LIT("MSA"), 1);
    if (seg < 0)
        return append_frame(dst, &ack, 1);
    px_str raw = hl7_segment_raw(m->ack, (size_t)seg);
    size_t raw_off = (size_t)(raw.ptr - ack.ptr);
    if (m->opts.bad_ack == PROXY_MOCK_ACK_NO_MSA) {
        size_t end = raw_off + raw.len;
        if (end < ack.len && ack.ptr[end] == '\r')
            end++;
        px_str parts[2] = {px_str_sub(ack, 0, raw_off), px_str_sub(ack, end, SIZE_MAX)};
        return append_frame(dst, parts, 2);
    }
    px_str msa2 = hl7_field(m->ack, (size_t)seg, 2, 0, 0, 0);
    char sep[1] = {hl7_msg_delims(m->ack)->field};
    px_str repl[3];
    size_t nrepl = 0;
    size_t cut_from, cut_to;
    if (msa2.ptr == NULL) {
        /* MSA-2 absent altogether: add it after the segment's last field. */
        cut_from = cut_to = raw_off + raw.len;
        repl[nrepl++] = px_str_make(sep, 1);
    } else {
        cut_from = (size_t)(msa2.ptr - ack.ptr);
        cut_to = cut_from + msa2.len;
    }
    if (m->opts.bad_ack == PROXY_MOCK_ACK_WRONG_MSA2) {
        repl[nrepl++] = PX_LIT("WRONG-");
        if (msa2.ptr != NULL)
            repl[nrepl++] = msa2;
    }
    px_str parts[5];
    size_t n = 0;
    parts[n++] = px_str_sub(ack, 0, cut_from);
    for (size_t i = 0; i < nrepl; i++)
        parts[n++] = repl[i];
    parts[n++] = px_str_sub(ack, cut_to, SIZE_MAX);
    return append_frame(dst, parts, n);
}

/* Builds into m->scratch an ACK with `code` for the parsed message (or a bare one when
 * parsed is false). */
static px_err mock_build_ack(proxy_mock_ehr_t *m, bool parsed, hl7_ack_code code, unsigned err_code,
                             const char *err_text, px_error *err)
{
    char id[32];
    snprintf(id, sizeof(id), "MOCK%llu", (unsigned long long)++m->next_ack_id);
    hl7_ack_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.code = code;
    spec.control_id = px_str_from_cstr(id);
    spec.datetime = mock_datetime(m);
    spec.err_code = err_code;
    spec.err_text = px_str_from_cstr(err_text);
    spec.severity = 'E';
    px_buf_reset(&m->scratch);
    if (parsed)
        return hl7_ack_build(m->msg, &spec, &m->scratch, err);
    return hl7_ack_build_bare(PX_STR_NULL, PX_LIT("2.5"), &spec, &m->scratch, err);
}

/* Queues the answer in m->scratch on c: straight to the socket when its delay is 0,
 * else through q. */
static px_err mock_queue_ack(mock_conn *c, delay_queue *q, uv_timer_t *t, uv_timer_cb cb,
                             uint64_t due_ns, px_error *err)
{
    proxy_mock_ehr_t *m = c->m;
    if (due_ns == 0 && q->count == 0)
        return mock_emit_ack(m, proxy_mllp_out_buf(&c->out), err);
    size_t mark = q->bytes.len;
    px_err rc = mock_emit_ack(m, &q->bytes, err);
    if (rc != PX_OK)
        return rc;
    bool was_empty = q->count == 0;
    rc = delay_queue_push(q, mark, due_ns);
    if (rc != PX_OK)
        return px_error_set(err, rc, "out of memory");
    if (was_empty)
        conn_arm(c, q, t, cb);
    return PX_OK;
}

static px_err mock_record(proxy_mock_ehr_t *m, px_str frame)
{
    if (m->record_fd < 0 || m->record_failed)
        return PX_OK;
    return append_frame(&m->record, &frame, 1);
}

static void mock_record_flush(proxy_mock_ehr_t *m)
{
    size_t done = 0;
    while (m->record_fd >= 0 && !m->record_failed && done < m->record.len) {
        ssize_t n = write(m->record_fd, m->record.data + done, m->record.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            m->record_failed = true;
            if (m->opts.log != NULL) {
                fprintf(m->opts.log, "{\"event\":\"record_failed\",\"error\":\"%s\"}\n",
                        strerror(errno));
                fflush(m->opts.log);
            }
            break;
        }
        done += (size_t)n;
    }
    px_buf_reset(&m->record);
}

/* Handles one inbound message. Returns false when the connection must close. */
static bool conn_handle(mock_conn *c, px_str frame)
{
    proxy_mock_ehr_t *m = c->m;
    px_error e;
    c->received++;
    m->stats.received++;
    if (mock_record(m, frame) != PX_OK)
        return false;
    /* Draw both numbers every time so one rate does not shift the other's sequence. */
    bool drop = mock_random(m) < m->opts.drop_ack_rate;
    bool nak = mock_random(m) < m->opts.nak_rate;
    bool parsed = hl7_parse(m->msg, frame.ptr, frame.len, 0, &e) == PX_OK;
    uint64_t now = 0;
    if (m->opts.delay_ms > 0 || (m->opts.enhanced && m->opts.app_ack_delay_ms > 0))
        now = uv_hrtime();
    uint64_t due = m->opts.delay_ms > 0 ? now + (uint64_t)m->opts.delay_ms * 1000000u : 0;

    if (drop) {
        m->stats.dropped++;
    } else if (!parsed) {
        /* No MSH to answer from: a bare reject, as an EHR does for unreadable input. */
        m->stats.naked++;
        if (mock_build_ack(m, false, HL7_ACK_AR, HL7_ERR_SEGMENT_SEQUENCE,
                           "message has no readable MSH segment", &e) != PX_OK ||
            mock_queue_ack(c, &c->acks, &c->ack_timer, conn_ack_timer_cb, due, &e) != PX_OK)
            return false;
    } else {
        hl7_ack_code app = nak ? HL7_ACK_AE : HL7_ACK_AA;
        const char *text = nak ? "mock-ehr negative acknowledgement" : NULL;
        unsigned code = nak ? HL7_ERR_APPLICATION_INTERNAL : 0;
        if (nak)
            m->stats.naked++;
        else
            m->stats.acked++;
        if (!m->opts.enhanced) {
            if (mock_build_ack(m, true, app, code, text, &e) != PX_OK ||
                mock_queue_ack(c, &c->acks, &c->ack_timer, conn_ack_timer_cb, due, &e) != PX_OK)
                return false;
        } else {
            if (mock_build_ack(m, true, HL7_ACK_CA, 0, NULL, &e) != PX_OK ||
                mock_queue_ack(c, &c->acks, &c->ack_timer, conn_ack_timer_cb, due, &e) != PX_OK)
                return false;
            uint64_t app_due = 0;
            if (due != 0 || m->opts.app_ack_delay_ms > 0)
                app_due = (due != 0 ? due : now) + (uint64_t)m->opts.app_ack_delay_ms * 1000000u;
            /* A zero delay still goes behind the commit ACK: both are written in order. */
            if (mock_build_ack(m, true, app, code, text, &e) != PX_OK ||
                mock_queue_ack(c, &c->app_acks, &c->app_timer, conn_app_timer_cb, app_due, &e) !=
                    PX_OK)
                return false;
        }
    }
    if (m->opts.close_after > 0 && c->received >= m->opts.close_after) {
        c->finishing = true;
        c->finish_reason = "close_after";
        conn_stop_reading(c);
    }
    return true;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mock_conn *c = h->data;
    (void)suggested;
    proxy_mllp_in_alloc(&c->in, buf);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mock_conn *c = s->data;
    proxy_mock_ehr_t *m = c->m;
    px_error e;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_stop_reading(c);
        if (nread == UV_EOF) {
            if (proxy_mllp_in_finish(&c->in, &e) != PX_OK) {
                m->stats.unframeable++;
                conn_close(c, "truncated_frame");
                return;
            }
            /* A half-closed peer still gets the answers already queued. */
            c->finishing = true;
            c->finish_reason = "eof";
            conn_maybe_finish(c);
        } else if (nread == UV_ENOBUFS) {
            m->stats.unframeable++;
            conn_close(c, "frame_too_large");
        } else {
            conn_close(c, "read_error");
        }
        return;
    }
    proxy_mllp_in_commit(&c->in, (size_t)nread);
    bool ok = true;
    while (c->reading) {
        px_str frame;
        px_err rc = proxy_mllp_in_next(&c->in, &frame, &e);
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc != PX_OK) {
            m->stats.unframeable++;
            mock_record_flush(m);
            conn_close(c, rc == PX_ERR_TOO_LARGE ? "frame_too_large" : "unframeable");
            return;
        }
        if (!conn_handle(c, frame)) {
            ok = false;
            break;
        }
    }
    /* The record is written before the ACKs leave, so whatever was ACKed is recorded. */
    mock_record_flush(m);
    if (!ok) {
        conn_close(c, "internal_error");
        return;
    }
    conn_flush(c);
}

static void conn_resume(mock_conn *c)
{
    if (c->closing || c->reading || c->finishing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
        c->reading = true;
    else
        conn_close(c, "read_error");
}

static void mock_on_connection(uv_stream_t *server, int status)
{
    proxy_mock_ehr_t *m = server->data;
    if (status < 0 || m->closing)
        return;
    mock_conn *c = px_malloc(sizeof(*c));
    if (c == NULL) {
        if (m->opts.log != NULL)
            fprintf(m->opts.log, "{\"event\":\"accept_failed\",\"reason\":\"out_of_memory\"}\n");
        return;
    }
    memset(c, 0, sizeof(*c));
    c->m = m;
    c->id = ++m->next_conn_id;
    uv_tcp_init(m->loop, &c->tcp);
    uv_timer_init(m->loop, &c->ack_timer);
    uv_timer_init(m->loop, &c->app_timer);
    c->tcp.data = c->ack_timer.data = c->app_timer.data = c;
    c->open_handles = 3;
    proxy_mllp_in_init(&c->in, m->opts.max_frame);
    proxy_mllp_out_init(&c->out, (uv_stream_t *)&c->tcp, OUT_MAX);
    c->out.written = conn_written;
    c->out.data = c;
    delay_queue_init(&c->acks);
    delay_queue_init(&c->app_acks);
    c->next = m->conns;
    if (m->conns != NULL)
        m->conns->prev = c;
    m->conns = c;
    m->stats.connections++;
    m->stats.open++;
    mock_log_conn(m, c, "conn_open", NULL);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, "accept_failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_resume(c);
}

/* ---- server ---- */

static void mock_free(proxy_mock_ehr_t *m)
{
    if (m->record_fd >= 0)
        close(m->record_fd);
    px_buf_free(&m->record);
    px_buf_free(&m->scratch);
    hl7_msg_destroy(m->msg);
    hl7_msg_destroy(m->ack);
    px_free(m);
}

static void mock_maybe_free(proxy_mock_ehr_t *m)
{
    if (!m->closing || m->listener_open || m->conns != NULL)
        return;
    void (*closed)(void *) = m->closed;
    void *ud = m->closed_ud;
    mock_free(m);
    if (closed != NULL)
        closed(ud);
}

static void mock_listener_close_cb(uv_handle_t *h)
{
    proxy_mock_ehr_t *m = h->data;
    m->listener_open = false;
    mock_maybe_free(m);
}

static px_err mock_fail(proxy_mock_ehr_t *m, px_err code, int uv_rc, const char *what,
                        px_error *err)
{
    px_error_setd(err, code, uv_rc, "%s: %s", what, uv_rc != 0 ? uv_strerror(uv_rc) : "");
    m->closing = true;
    if (m->listener_open)
        uv_close((uv_handle_t *)&m->listener, mock_listener_close_cb);
    else
        mock_free(m);
    return code;
}

px_err proxy_mock_ehr_create(uv_loop_t *loop, const proxy_mock_ehr_opts *opts,
                             proxy_mock_ehr_t **out, px_error *err)
{
    *out = NULL;
    if (opts->nak_rate < 0 || opts->nak_rate > 1 || opts->drop_ack_rate < 0 ||
        opts->drop_ack_rate > 1)
        return px_error_set(err, PX_ERR_INVAL, "rates must lie between 0 and 1");
    if (opts->port > 65535)
        return px_error_set(err, PX_ERR_INVAL, "port %u out of range", opts->port);
    proxy_mock_ehr_t *m = px_malloc(sizeof(*m));
    if (m == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    memset(m, 0, sizeof(*m));
    m->loop = loop;
    m->opts = *opts;
    m->record_fd = -1;
    m->rng = opts->seed;
    px_buf_init(&m->scratch, 1024u * 1024u);
    px_buf_init(&m->record, OUT_MAX);
    const char *host = opts->host != NULL ? opts->host : "127.0.0.1";
    if (strlen(host) >= sizeof(m->host)) {
        mock_free(m);
        return px_error_set(err, PX_ERR_INVAL, "host too long");
    }
    memcpy(m->host, host, strlen(host) + 1);
    m->opts.host = m->host;
    m->opts.record_path = NULL;
    if (hl7_msg_create(&m->msg, err) != PX_OK || hl7_msg_create(&m->ack, err) != PX_OK) {
        mock_free(m);
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    }
    if (opts->record_path != NULL) {
        m->record_fd = open(opts->record_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (m->record_fd < 0) {
            int e = errno;
            mock_free(m);
            return px_error_setd(err, PX_ERR_IO, e, "cannot open record file: %s", strerror(e));
        }
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, (int)opts->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, (int)opts->port, (struct sockaddr_in6 *)&ss) != 0) {
        mock_free(m);
        return px_error_set(err, PX_ERR_INVAL, "host must be a numeric address");
    }
    int rc = uv_tcp_init(loop, &m->listener);
    if (rc < 0) {
        mock_free(m);
        return px_error_setd(err, PX_ERR_IO, rc, "tcp init: %s", uv_strerror(rc));
    }
    m->listener.data = m;
    m->listener_open = true;
    rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&ss, 0);
    if (rc < 0)
        return mock_fail(m, PX_ERR_IO, rc, "bind", err);
    rc = uv_listen((uv_stream_t *)&m->listener, 511, mock_on_connection);
    if (rc < 0)
        return mock_fail(m, PX_ERR_IO, rc, "listen", err);
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);
    rc = uv_tcp_getsockname(&m->listener, (struct sockaddr *)&bound, &len);
    if (rc < 0)
        return mock_fail(m, PX_ERR_IO, rc, "getsockname", err);
    m->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    *out = m;
    return PX_OK;
}

unsigned proxy_mock_ehr_port(const proxy_mock_ehr_t *m)
{
    return m->port;
}

void proxy_mock_ehr_get_stats(const proxy_mock_ehr_t *m, proxy_mock_ehr_stats *out)
{
    *out = m->stats;
}

void proxy_mock_ehr_close(proxy_mock_ehr_t *m, void (*closed)(void *ud), void *ud)
{
    if (m->closing)
        return;
    m->closing = true;
    m->closed = closed;
    m->closed_ud = ud;
    mock_record_flush(m);
    for (mock_conn *c = m->conns; c != NULL; c = c->next)
        conn_close(c, "shutdown");
    if (m->listener_open)
        uv_close((uv_handle_t *)&m->listener, mock_listener_close_cb);
    mock_maybe_free(m);
}
