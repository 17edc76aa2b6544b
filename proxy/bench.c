#include "proxy/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/ack.h"
#include "hl7/hl7.h"
#include "proxy/mllp_client.h"

#define DEFAULT_TIMEOUT 10000u
#define TICK_MS         10u
#define LOG_FLUSH_AT    (64u * 1024u)
#define ID_MAX          64

/* ---- histogram ---- */

void proxy_hist_reset(proxy_hist *h)
{
    memset(h, 0, sizeof(*h));
}

size_t proxy_hist_bucket(uint64_t us)
{
    if (us < PROXY_HIST_LINEAR)
        return (size_t)us;
    if (us >= (1ull << PROXY_HIST_TOP_BIT))
        return PROXY_HIST_BUCKETS - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= SUB_BITS + 1 */
    unsigned shift = e - PROXY_HIST_SUB_BITS;
    return PROXY_HIST_LINEAR + (size_t)(e - PROXY_HIST_SUB_BITS - 1) * (1u << PROXY_HIST_SUB_BITS) +
           (size_t)((us >> shift) - (1u << PROXY_HIST_SUB_BITS));
}

uint64_t proxy_hist_bucket_high(size_t bucket)
{
    if (bucket < PROXY_HIST_LINEAR)
        return bucket;
    size_t k = bucket - PROXY_HIST_LINEAR;
    unsigned e = (unsigned)(k >> PROXY_HIST_SUB_BITS) + PROXY_HIST_SUB_BITS + 1;
    uint64_t sub = k & ((1u << PROXY_HIST_SUB_BITS) - 1);
    unsigned shift = e - PROXY_HIST_SUB_BITS;
    uint64_t low = ((1ull << PROXY_HIST_SUB_BITS) + sub) << shift;
    return low + (1ull << shift) - 1;
}

void proxy_hist_record(proxy_hist *h, uint64_t us)
{
    h->counts[proxy_hist_bucket(us)]++;
    h->total++;
    h->sum += us;
    if (us > h->max)
        h->max = us;
}

uint64_t proxy_hist_percentile(const proxy_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < PROXY_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = proxy_hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---- the run ---- */

typedef struct inflight {
    uint64_t seq;
    uint64_t sent_ns;
} inflight;

typedef struct bench bench;

/* One connection. Invariant: ring holds `count` messages in send order starting at head;
 * MLLP answers in order, so the head is what the next ACK answers. */
typedef struct bench_conn {
    bench *b;
    unsigned idx;
    proxy_mllp_client_t *client;
    inflight *ring; /* pipeline entries */
    unsigned head, count;
    uint64_t seq;
    size_t next_msg;
    bool connected;
    bool done;          /* failed or closed: sends nothing more */
    bool enhanced_seen; /* a CA came: AA/AE/AR for other ids are application ACKs */
} bench_conn;

typedef struct template_msg {
    px_str pre, post; /* the message around its MSH-10 (borrowed from the input list) */
} template_msg;

struct bench {
    uv_loop_t loop;
    uv_timer_t tick;
    uv_signal_t sigint, sigterm;
    bool signals;
    const proxy_bench_opts *opts;
    proxy_bench_result *res;
    bench_conn *conns;
    template_msg *msgs;
    size_t nmsgs;
    hl7_msg_t *ack;
    char prefix[24];
    size_t prefix_len;
    unsigned timeout_ms;
    uint64_t start_ns, measure_ns, last_ack_ns;
    bool measuring;
    bool stopping; /* no new sends */
    bool finished;
    unsigned live; /* connections not done */
    int log_fd;
    px_buf log;
    px_err io_failure;
    px_error io_err;
};

/* Writes "<prefix><conn>-<seq>" into dst (at least ID_MAX bytes); returns its length. */
static size_t format_id(const bench *b, unsigned conn, uint64_t seq, char *dst)
{
    char tmp[24];
    size_t n = b->prefix_len, t;
    memcpy(dst, b->prefix, n);
    t = 0;
    do {
        tmp[t++] = (char)('0' + conn % 10);
        conn /= 10;
    } while (conn != 0);
    while (t > 0)
        dst[n++] = tmp[--t];
    dst[n++] = '-';
    do {
        tmp[t++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq != 0);
    while (t > 0)
        dst[n++] = tmp[--t];
    return n;
}

static void bench_log_flush(bench *b)
{
    size_t done = 0;
    while (b->log_fd >= 0 && done < b->log.len) {
        ssize_t n = write(b->log_fd, b->log.data + done, b->log.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (b->io_failure == PX_OK)
                b->io_failure =
                    px_error_setd(&b->io_err, PX_ERR_IO, errno, "acked log: %s", strerror(errno));
            close(b->log_fd);
            b->log_fd = -1;
            break;
        }
        done += (size_t)n;
    }
    px_buf_reset(&b->log);
}

static void bench_close_all(bench *b)
{
    if (b->finished)
        return;
    b->finished = true;
    bench_log_flush(b);
    for (unsigned i = 0; i < b->opts->conns; i++) {
        if (b->conns[i].client != NULL) {
            proxy_mllp_client_close(b->conns[i].client, NULL);
            b->conns[i].client = NULL;
        }
    }
    uv_close((uv_handle_t *)&b->tick, NULL);
    if (b->signals) {
        uv_close((uv_handle_t *)&b->sigint, NULL);
        uv_close((uv_handle_t *)&b->sigterm, NULL);
    }
}

static bool bench_may_send(const bench *b)
{
    if (b->stopping)
        return false;
    return b->opts->messages == 0 || b->res->sent < b->opts->messages;
}

static void bench_check_done(bench *b)
{
    if (b->finished)
        return;
    if (b->live == 0) {
        bench_close_all(b);
        return;
    }
    if (bench_may_send(b))
        return;
    for (unsigned i = 0; i < b->opts->conns; i++)
        if (!b->conns[i].done && b->conns[i].count > 0)
            return;
    bench_close_all(b);
}

static void conn_fail(bench_conn *c)
{
    if (c->done)
        return;
    bench *b = c->b;
    c->done = true;
    b->live--;
    b->res->conn_failures++;
    b->res->unanswered += c->count;
    b->res->errors += c->count;
    c->count = 0;
    if (c->client != NULL) {
        proxy_mllp_client_close(c->client, NULL);
        c->client = NULL;
    }
}

static void conn_fill(bench_conn *c)
{
    bench *b = c->b;
    const unsigned k = b->opts->pipeline;
    while (!c->done && c->count < k && bench_may_send(b)) {
        const template_msg *t = &b->msgs[c->next_msg];
        c->next_msg = c->next_msg + 1 == b->nmsgs ? 0 : c->next_msg + 1;
        char id[ID_MAX];
        uint64_t seq = ++c->seq;
        px_str parts[3] = {t->pre, px_str_make(id, format_id(b, c->idx, seq, id)), t->post};
        px_error e;
        if (proxy_mllp_client_sendv(c->client, parts, 3, &e) != PX_OK) {
            conn_fail(c);
            return;
        }
        inflight *f = &c->ring[(c->head + c->count) % k];
        f->seq = seq;
        f->sent_ns = uv_hrtime();
        c->count++;
        b->res->sent++;
        b->res->bytes_sent += parts[0].len + parts[1].len + parts[2].len + 3;
    }
}

static void count_code(proxy_bench_result *r, hl7_ack_code code)
{
    switch (code) {
    case HL7_ACK_AA:
        r->aa++;
        break;
    case HL7_ACK_AE:
        r->ae++;
        break;
    case HL7_ACK_AR:
        r->ar++;
        break;
    case HL7_ACK_CA:
        r->ca++;
        break;
    case HL7_ACK_CE:
        r->ce++;
        break;
    case HL7_ACK_CR:
        r->cr++;
        break;
    }
}

static void conn_on_frame(proxy_mllp_client_t *cl, px_str frame, void *ud)
{
    bench_conn *c = ud;
    bench *b = c->b;
    proxy_bench_result *r = b->res;
    (void)cl;
    if (c->done)
        return;
    hl7_ack_info info;
    bool readable = hl7_parse(b->ack, frame.ptr, frame.len, 0, NULL) == PX_OK &&
                    hl7_ack_read(b->ack, &info, NULL) == PX_OK;
    if (c->count == 0) {
        if (readable && c->enhanced_seen &&
            (info.code == HL7_ACK_AA || info.code == HL7_ACK_AE || info.code == HL7_ACK_AR)) {
            r->app_acks++;
            return;
        }
        r->unexpected++;
        r->errors++;
        return;
    }
    inflight *f = &c->ring[c->head];
    char id[ID_MAX];
    px_str expect = px_str_make(id, format_id(b, c->idx, f->seq, id));
    if (readable && c->enhanced_seen &&
        (info.code == HL7_ACK_AA || info.code == HL7_ACK_AE || info.code == HL7_ACK_AR) &&
        !px_str_eq(info.acked_control_id, expect)) {
        /* An application ACK for a message answered CA earlier. */
        r->app_acks++;
        return;
    }
    uint64_t now = uv_hrtime();
    c->head = (c->head + 1) % b->opts->pipeline;
    c->count--;
    r->answered++;
    if (!readable) {
        r->unreadable++;
        r->errors++;
    } else {
        count_code(r, info.code);
        if (info.code == HL7_ACK_CA)
            c->enhanced_seen = true;
        if (!px_str_eq(info.acked_control_id, expect)) {
            r->mismatches++;
            r->errors++;
        } else if ((info.code == HL7_ACK_AA || info.code == HL7_ACK_CA) && b->log_fd >= 0) {
            /* Written only now that the ACK is in: every line names an acknowledged
             * message. */
            if (px_buf_append_str(&b->log, expect) != PX_OK ||
                px_buf_append_byte(&b->log, '\n') != PX_OK)
                bench_log_flush(b);
            else if (b->log.len >= LOG_FLUSH_AT)
                bench_log_flush(b);
        }
    }
    b->last_ack_ns = now;
    if (b->measuring) {
        r->measured++;
        proxy_hist_record(&r->latency, (now - f->sent_ns) / 1000u);
    }
    conn_fill(c);
    if (!bench_may_send(b) && c->count == 0)
        bench_check_done(b);
}

static void conn_on_connected(proxy_mllp_client_t *cl, void *ud)
{
    bench_conn *c = ud;
    (void)cl;
    c->connected = true;
    conn_fill(c);
    bench_check_done(c->b);
}

static void conn_on_failed(proxy_mllp_client_t *cl, const px_error *e, void *ud)
{
    bench_conn *c = ud;
    (void)cl;
    (void)e;
    conn_fail(c);
    bench_check_done(c->b);
}

static void bench_stop(bench *b)
{
    if (b->stopping)
        return;
    b->stopping = true;
    bench_check_done(b);
}

static void bench_on_tick(uv_timer_t *t)
{
    bench *b = t->data;
    uint64_t now = uv_hrtime();
    const proxy_bench_opts *o = b->opts;
    if (!b->measuring && now - b->start_ns >= (uint64_t)o->warmup_ms * 1000000u) {
        b->measuring = true;
        b->measure_ns = now;
    }
    if (b->measuring && o->messages == 0 &&
        now - b->measure_ns >= (uint64_t)o->duration_ms * 1000000u)
        b->stopping = true;
    uint64_t limit = (uint64_t)b->timeout_ms * 1000000u;
    for (unsigned i = 0; i < o->conns; i++) {
        bench_conn *c = &b->conns[i];
        if (c->done)
            continue;
        bool late = c->count > 0 ? now - c->ring[c->head].sent_ns > limit
                                 : !c->connected && now - b->start_ns > limit;
        if (late) {
            b->res->timeouts++;
            conn_fail(c);
        }
    }
    bench_log_flush(b);
    bench_check_done(b);
}

static void bench_on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    bench_stop(s->data);
}

static void bench_make_prefix(bench *b)
{
    const char *p = b->opts->id_prefix;
    if (p != NULL) {
        size_t n = strlen(p);
        memcpy(b->prefix, p, n);
        b->prefix_len = n;
        return;
    }
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    uint64_t v = uv_hrtime() / 1000u ^ ((uint64_t)getpid() << 24);
    b->prefix[0] = 'B';
    for (int i = 1; i <= 5; i++) {
        b->prefix[i] = digits[v % 36];
        v /= 36;
    }
    b->prefix_len = 6;
}

static px_err bench_prepare(bench *b, const proxy_send_list_t *input, px_error *err)
{
    const proxy_bench_opts *o = b->opts;
    if (o->conns == 0 || o->conns > 100000 || o->pipeline == 0 || o->pipeline > 100000)
        return px_error_set(err, PX_ERR_INVAL, "conns and pipeline must be 1 … 100000");
    if (o->messages == 0 && o->duration_ms == 0)
        return px_error_set(err, PX_ERR_INVAL, "give a message count or a duration");
    if (o->id_prefix != NULL && strlen(o->id_prefix) > 16)
        return px_error_set(err, PX_ERR_INVAL, "id prefix longer than 16 characters");
    b->nmsgs = proxy_send_list_count(input);
    if (b->nmsgs == 0)
        return px_error_set(err, PX_ERR_INVAL, "no input messages");
    b->msgs = px_calloc(b->nmsgs, sizeof(*b->msgs));
    if (b->msgs == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < b->nmsgs; i++) {
        size_t off, len;
        px_str m = proxy_send_list_message(input, i);
        if (!proxy_send_list_control_id_span(input, i, &off, &len))
            return px_error_set(err, PX_ERR_PARSE, "%s: no MSH-10 to place a control id in",
                                proxy_send_list_source(input, i));
        b->msgs[i].pre = px_str_sub(m, 0, off);
        b->msgs[i].post = px_str_sub(m, off + len, SIZE_MAX);
    }
    b->conns = px_calloc(o->conns, sizeof(*b->conns));
    if (b->conns == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    for (unsigned i = 0; i < o->conns; i++) {
        b->conns[i].b = b;
        b->conns[i].idx = i + 1;
        b->conns[i].ring = px_calloc(o->pipeline, sizeof(inflight));
        if (b->conns[i].ring == NULL)
            return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    }
    if (hl7_msg_create(&b->ack, err) != PX_OK)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    if (o->acked_log != NULL) {
        b->log_fd = open(o->acked_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (b->log_fd < 0)
            return px_error_setd(err, PX_ERR_IO, errno, "%s: %s", o->acked_log, strerror(errno));
    }
    bench_make_prefix(b);
    return PX_OK;
}

static void bench_release(bench *b)
{
    if (b->conns != NULL)
        for (unsigned i = 0; i < b->opts->conns; i++)
            px_free(b->conns[i].ring);
    px_free(b->conns);
    px_free(b->msgs);
    hl7_msg_destroy(b->ack);
    px_buf_free(&b->log);
    if (b->log_fd >= 0)
        close(b->log_fd);
}

px_err proxy_bench_run(const proxy_bench_opts *opts, const proxy_send_list_t *input,
                       proxy_bench_result *result, px_error *err)
{
    memset(result, 0, sizeof(*result));
    result->conns = opts->conns;
    result->pipeline = opts->pipeline;
    bench b;
    memset(&b, 0, sizeof(b));
    b.opts = opts;
    b.res = result;
    b.log_fd = -1;
    b.timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms : DEFAULT_TIMEOUT;
    px_buf_init(&b.log, 16u * 1024u * 1024u);
    px_err rc = bench_prepare(&b, input, err);
    if (rc != PX_OK) {
        bench_release(&b);
        return rc;
    }
    int urc = uv_loop_init(&b.loop);
    if (urc < 0) {
        bench_release(&b);
        return px_error_setd(err, PX_ERR_IO, urc, "loop init: %s", uv_strerror(urc));
    }
    b.start_ns = uv_hrtime();
    if (opts->warmup_ms == 0) {
        b.measuring = true;
        b.measure_ns = b.start_ns;
    }
    uv_timer_init(&b.loop, &b.tick);
    b.tick.data = &b;
    uv_timer_start(&b.tick, bench_on_tick, TICK_MS, TICK_MS);
    if (opts->handle_signals) {
        b.signals = true;
        uv_signal_init(&b.loop, &b.sigint);
        uv_signal_init(&b.loop, &b.sigterm);
        b.sigint.data = b.sigterm.data = &b;
        uv_signal_start(&b.sigint, bench_on_signal, SIGINT);
        uv_signal_start(&b.sigterm, bench_on_signal, SIGTERM);
    }
    proxy_mllp_client_cbs cbs = {conn_on_connected, conn_on_frame, conn_on_failed};
    b.live = opts->conns;
    for (unsigned i = 0; i < opts->conns; i++) {
        bench_conn *c = &b.conns[i];
        px_error e;
        if (proxy_mllp_client_create(&b.loop, &cbs, c, 0, &c->client, &e) != PX_OK ||
            proxy_mllp_client_connect(c->client, opts->host, opts->port, &e) != PX_OK)
            conn_fail(c);
    }
    bench_check_done(&b);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    urc = uv_loop_close(&b.loop);
    if (b.measuring && b.last_ack_ns > b.measure_ns) {
        result->seconds = (double)(b.last_ack_ns - b.measure_ns) / 1e9;
        result->msgs_per_sec = (double)result->measured / result->seconds;
    }
    rc = b.io_failure;
    if (rc != PX_OK && err != NULL)
        *err = b.io_err;
    bench_release(&b);
    if (rc == PX_OK && urc != 0)
        rc = px_error_setd(err, PX_ERR_IO, urc, "loop close: %s", uv_strerror(urc));
    return rc;
}

bool proxy_bench_result_ok(const proxy_bench_result *r)
{
    return r->errors == 0 && r->conn_failures == 0 && r->answered == r->sent && r->sent > 0;
}

void proxy_bench_report(const proxy_bench_result *r, FILE *out, bool json)
{
    uint64_t p50 = proxy_hist_percentile(&r->latency, 50),
             p99 = proxy_hist_percentile(&r->latency, 99),
             p999 = proxy_hist_percentile(&r->latency, 99.9);
    double mean = r->latency.total > 0 ? (double)r->latency.sum / (double)r->latency.total : 0;
    if (json) {
        fprintf(out,
                "{\"conns\":%u,\"pipeline\":%u,\"seconds\":%.3f,\"sent\":%llu,\"answered\":%llu,"
                "\"measured\":%llu,\"msgs_per_sec\":%.1f,\"latency_us\":{\"p50\":%llu,\"p99\":%llu,"
                "\"p999\":%llu,\"max\":%llu,\"mean\":%.1f},\"aa\":%llu,\"ae\":%llu,\"ar\":%llu,"
                "\"ca\":%llu,\"ce\":%llu,\"cr\":%llu,\"app_acks\":%llu,\"errors\":%llu,"
                "\"mismatches\":%llu,\"unreadable\":%llu,\"unexpected\":%llu,\"unanswered\":%llu,"
                "\"timeouts\":%llu,\"conn_failures\":%u,\"bytes_sent\":%llu}\n",
                r->conns, r->pipeline, r->seconds, (unsigned long long)r->sent,
                (unsigned long long)r->answered, (unsigned long long)r->measured, r->msgs_per_sec,
                (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999,
                (unsigned long long)r->latency.max, mean, (unsigned long long)r->aa,
                (unsigned long long)r->ae, (unsigned long long)r->ar, (unsigned long long)r->ca,
                (unsigned long long)r->ce, (unsigned long long)r->cr,
                (unsigned long long)r->app_acks, (unsigned long long)r->errors,
                (unsigned long long)r->mismatches, (unsigned long long)r->unreadable,
                (unsigned long long)r->unexpected, (unsigned long long)r->unanswered,
                (unsigned long long)r->timeouts, r->conn_failures,
                (unsigned long long)r->bytes_sent);
        return;
    }
    fprintf(out, "bench: %u connections, pipeline %u, %.3f s measured\n", r->conns, r->pipeline,
            r->seconds);
    fprintf(out, "  sent %llu, answered %llu, measured %llu: %.1f msg/s\n",
            (unsigned long long)r->sent, (unsigned long long)r->answered,
            (unsigned long long)r->measured, r->msgs_per_sec);
    fprintf(out, "  latency us: p50 %llu  p99 %llu  p99.9 %llu  max %llu  mean %.1f\n",
            (unsigned long long)p50, (unsigned long long)p99, (unsigned long long)p999,
            (unsigned long long)r->latency.max, mean);
    fprintf(out, "  acks: AA %llu  AE %llu  AR %llu  CA %llu  CE %llu  CR %llu  app %llu\n",
            (unsigned long long)r->aa, (unsigned long long)r->ae, (unsigned long long)r->ar,
            (unsigned long long)r->ca, (unsigned long long)r->ce, (unsigned long long)r->cr,
            (unsigned long long)r->app_acks);
    fprintf(out,
            "  errors %llu (msa2 mismatches %llu, unreadable %llu, unexpected %llu, unanswered "
            "%llu), timeouts %llu, connection failures %u\n",
            (unsigned long long)r->errors, (unsigned long long)r->mismatches,
            (unsigned long long)r->unreadable, (unsigned long long)r->unexpected,
            (unsigned long long)r->unanswered, (unsigned long long)r->timeouts, r->conn_failures);
}
