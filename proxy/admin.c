/* The admin endpoint on its own loopback port: /healthz, /readyz and /metrics (Prometheus
 * text). Figures come from memory (counters, ledger_stats), never from SQLite on the loop.
 * HTTP/1.0 style: one request per connection, answered and closed. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "proxy/internal.h"

#define ADMIN_MAX_REQUEST 8192
#define ADMIN_TIMEOUT_MS  5000

struct proxy_admin {
    proxy_t *px;
    uv_tcp_t listener;
    unsigned open_clients;
    bool closing;
};

typedef struct admin_client {
    proxy_admin *admin;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    px_buf in;
    px_buf out;
    unsigned pending_closes;
    bool answered;
} admin_client;

static void client_closed(uv_handle_t *h)
{
    admin_client *c = h->data;
    if (--c->pending_closes > 0)
        return;
    proxy_admin *a = c->admin;
    px_buf_free(&c->in);
    px_buf_free(&c->out);
    px_free(c);
    a->open_clients--;
    if (a->closing && a->open_clients == 0)
        px_free(a);
}

static void client_close(admin_client *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->tcp, client_closed);
    uv_close((uv_handle_t *)&c->timer, client_closed);
}

bool proxy_ready(const proxy_t *px, char *why, size_t why_size)
{
    for (size_t i = 0; i < px->nfeeds; i++) {
        if (px->feeds[i].ledger_first) {
            snprintf(why, why_size, "ledger not writable (feed %s runs ledger-first)",
                     px->feeds[i].cfg->name);
            return false;
        }
    }
    for (size_t i = 0; i < px->nupstreams; i++) {
        proxy_upstream_stats st;
        proxy_upstream_stats_get(px->upstreams[i], &st);
        if (st.connected == 0) {
            snprintf(why, why_size, "upstream %s not connected",
                     proxy_upstream_name(px->upstreams[i]));
            return false;
        }
    }
    if (px->stopping) {
        snprintf(why, why_size, "stopping");
        return false;
    }
    snprintf(why, why_size, "ready");
    return true;
}

static void metric(px_buf *b, const char *name, const char *type, const char *help)
{
    px_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_metrics(const proxy_t *px, px_buf *b)
{
    static const char *const ack_names[] = {"AA", "AE", "AR", "CA", "CE", "CR"};
    metric(b, "parallax_messages_received_total", "counter", "Frames read, by feed.");
    for (size_t i = 0; i < px->nfeeds; i++)
        px_buf_appendf(b, "parallax_messages_received_total{feed=\"%s\"} %llu\n",
                       px->feeds[i].cfg->name, (unsigned long long)px->feeds[i].stats.received);
    metric(b, "parallax_acks_sent_total", "counter", "ACKs sent to senders, by feed and code.");
    for (size_t i = 0; i < px->nfeeds; i++)
        for (int k = 0; k < 6; k++)
            px_buf_appendf(b, "parallax_acks_sent_total{feed=\"%s\",code=\"%s\"} %llu\n",
                           px->feeds[i].cfg->name, ack_names[k],
                           (unsigned long long)px->feeds[i].stats.acked[k]);
    metric(b, "parallax_messages_held_total", "counter",
           "Messages held unanswered (upstream down).");
    metric(b, "parallax_retransmissions_total", "counter", "Resends answered from the window.");
    metric(b, "parallax_duplicates_total", "counter", "Same control id with other content.");
    metric(b, "parallax_ledger_failures_total", "counter", "Messages whose ledger write failed.");
    metric(b, "parallax_store_forward_queued", "gauge", "Messages waiting in store-and-forward.");
    for (size_t i = 0; i < px->nfeeds; i++) {
        const proxy_feed *f = &px->feeds[i];
        px_buf_appendf(b, "parallax_messages_held_total{feed=\"%s\"} %llu\n", f->cfg->name,
                       (unsigned long long)f->stats.held);
        px_buf_appendf(b, "parallax_retransmissions_total{feed=\"%s\"} %llu\n", f->cfg->name,
                       (unsigned long long)f->stats.retransmits);
        px_buf_appendf(b, "parallax_duplicates_total{feed=\"%s\"} %llu\n", f->cfg->name,
                       (unsigned long long)f->stats.duplicates);
        px_buf_appendf(b, "parallax_ledger_failures_total{feed=\"%s\"} %llu\n", f->cfg->name,
                       (unsigned long long)f->stats.ledger_failures);
        px_buf_appendf(b, "parallax_store_forward_queued{feed=\"%s\"} %zu\n", f->cfg->name,
                       f->sf.count);
    }
    static const char *const refusal_names[PROXY_REFUSE_COUNT] = {
        "framing", "oversize", "no_msh", "no_control_id", "filter", "frame_deadline", "limit"};
    metric(b, "parallax_refusals_total", "counter", "Refused frames and connections, by reason.");
    for (int k = 0; k < PROXY_REFUSE_COUNT; k++)
        px_buf_appendf(b, "parallax_refusals_total{reason=\"%s\"} %llu\n", refusal_names[k],
                       (unsigned long long)px->refused_by_reason[k]);
    metric(b, "parallax_messages_in_flight", "gauge", "Messages read and not yet settled.");
    px_buf_appendf(b, "parallax_messages_in_flight %llu\n", (unsigned long long)px->txns_open);
    metric(b, "parallax_bytes_in_flight", "gauge", "Message bytes held in memory.");
    px_buf_appendf(b, "parallax_bytes_in_flight %llu\n", (unsigned long long)px->inflight_bytes);
    metric(b, "parallax_connections", "gauge", "Open sender connections.");
    px_buf_appendf(b, "parallax_connections %zu\n", px->nconns);
    metric(b, "parallax_upstream_connected", "gauge", "Upstream connections up.");
    metric(b, "parallax_upstream_breaker_open", "gauge", "1 while the circuit breaker is open.");
    metric(b, "parallax_upstream_queued", "gauge", "Requests waiting for an upstream connection.");
    metric(b, "parallax_upstream_events_total", "counter", "Upstream events by kind.");
    for (size_t i = 0; i < px->nupstreams; i++) {
        proxy_upstream_stats st;
        proxy_upstream_stats_get(px->upstreams[i], &st);
        const char *n = proxy_upstream_name(px->upstreams[i]);
        px_buf_appendf(b, "parallax_upstream_connected{upstream=\"%s\"} %u\n", n, st.connected);
        px_buf_appendf(b, "parallax_upstream_breaker_open{upstream=\"%s\"} %d\n", n,
                       st.breaker_open);
        px_buf_appendf(b, "parallax_upstream_queued{upstream=\"%s\"} %llu\n", n,
                       (unsigned long long)st.queued);
        const struct {
            const char *kind;
            uint64_t v;
        } ev[] = {{"sent", st.sent},         {"acked", st.acked},
                  {"anomaly", st.anomalies}, {"timeout", st.timeouts},
                  {"down", st.down},         {"connect_failure", st.connect_failures}};
        for (size_t k = 0; k < sizeof(ev) / sizeof(ev[0]); k++)
            px_buf_appendf(b, "parallax_upstream_events_total{upstream=\"%s\",kind=\"%s\"} %llu\n",
                           n, ev[k].kind, (unsigned long long)ev[k].v);
    }
    if (px->ledger != NULL) {
        ledger_stats ls;
        ledger_stats_get(px->ledger, &ls);
        metric(b, "parallax_ledger_commits_total", "counter", "Ledger transactions committed.");
        px_buf_appendf(b, "parallax_ledger_commits_total %llu\n", (unsigned long long)ls.commits);
        metric(b, "parallax_ledger_commit_failures_total", "counter",
               "Ledger transactions rolled back.");
        px_buf_appendf(b, "parallax_ledger_commit_failures_total %llu\n",
                       (unsigned long long)ls.commit_failures);
        metric(b, "parallax_ledger_group_size", "gauge", "Ops in the last committed group.");
        px_buf_appendf(b, "parallax_ledger_group_size %llu\n", (unsigned long long)ls.last_group);
        metric(b, "parallax_ledger_group_size_max", "gauge", "Largest group so far.");
        px_buf_appendf(b, "parallax_ledger_group_size_max %llu\n",
                       (unsigned long long)ls.max_group);
        metric(b, "parallax_ledger_commit_seconds", "gauge", "Commit latency percentiles.");
        px_buf_appendf(b, "parallax_ledger_commit_seconds{quantile=\"0.5\"} %.6f\n",
                       (double)ls.commit_p50_us / 1e6);
        px_buf_appendf(b, "parallax_ledger_commit_seconds{quantile=\"0.99\"} %.6f\n",
                       (double)ls.commit_p99_us / 1e6);
        px_buf_appendf(b, "parallax_ledger_commit_seconds{quantile=\"1\"} %.6f\n",
                       (double)ls.commit_max_us / 1e6);
        metric(b, "parallax_ledger_queued_ops", "gauge", "Ops waiting for the writer.");
        px_buf_appendf(b, "parallax_ledger_queued_ops %llu\n", (unsigned long long)ls.queued);
        metric(b, "parallax_ledger_wal_bytes", "gauge", "WAL size after the last commit.");
        px_buf_appendf(b, "parallax_ledger_wal_bytes %llu\n", (unsigned long long)ls.wal_bytes);
    }
    metric(b, "parallax_config_reloads_total", "counter", "Configuration reloads, by result.");
    px_buf_appendf(b, "parallax_config_reloads_total{result=\"ok\"} %llu\n",
                   (unsigned long long)px->reloads);
    px_buf_appendf(b, "parallax_config_reloads_total{result=\"refused\"} %llu\n",
                   (unsigned long long)px->reload_failures);
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    client_close(w->data);
}

static void respond(admin_client *c, int code, const char *reason, const char *type, px_str body)
{
    px_buf_appendf(&c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   code, reason, type, body.len);
    px_buf_append_str(&c->out, body);
    c->answered = true;
    c->write_req.data = c;
    uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, write_done) != 0)
        client_close(c);
}

static void handle_request(admin_client *c)
{
    proxy_t *px = c->admin->px;
    px_str req = px_buf_view(&c->in);
    ptrdiff_t sp1 = px_str_find_byte(req, ' ');
    if (sp1 < 0) {
        respond(c, 400, "Bad Request", "text/plain", PX_LIT("bad request\n"));
        return;
    }
    px_str method = px_str_sub(req, 0, (size_t)sp1);
    px_str rest = px_str_sub(req, (size_t)sp1 + 1, req.len);
    ptrdiff_t sp2 = px_str_find_byte(rest, ' ');
    px_str path = sp2 < 0 ? rest : px_str_sub(rest, 0, (size_t)sp2);
    if (!px_str_eq(method, PX_LIT("GET"))) {
        respond(c, 405, "Method Not Allowed", "text/plain", PX_LIT("GET only\n"));
        return;
    }
    if (px_str_eq(path, PX_LIT("/healthz"))) {
        respond(c, 200, "OK", "text/plain", PX_LIT("ok\n"));
    } else if (px_str_eq(path, PX_LIT("/readyz"))) {
        char why[160], body[192];
        bool ok = proxy_ready(px, why, sizeof(why));
        int n = snprintf(body, sizeof(body), "%s\n", why);
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain",
                px_str_make(body, n > 0 ? (size_t)n : 0));
    } else if (px_str_eq(path, PX_LIT("/metrics"))) {
        px_buf m;
        px_buf_init(&m, 4u * 1024 * 1024);
        write_metrics(px, &m);
        respond(c, 200, "OK", "text/plain; version=0.0.4", px_buf_view(&m));
        px_buf_free(&m);
    } else {
        respond(c, 404, "Not Found", "text/plain", PX_LIT("not found\n"));
    }
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_client *c = h->data;
    (void)suggested;
    if (px_buf_reserve(&c->in, 1024) != PX_OK) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    admin_client *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        client_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    c->in.data[c->in.len] = '\0';
    if (strstr(c->in.data, "\r\n\r\n") != NULL || strstr(c->in.data, "\n\n") != NULL) {
        uv_read_stop(s);
        handle_request(c);
    }
}

static void client_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void admin_accept(uv_stream_t *server, int status)
{
    proxy_admin *a = server->data;
    if (status < 0 || a->closing)
        return;
    admin_client *c = px_calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->admin = a;
    px_buf_init(&c->in, ADMIN_MAX_REQUEST);
    px_buf_init(&c->out, 8u * 1024 * 1024);
    uv_tcp_init(a->px->loop, &c->tcp);
    uv_timer_init(a->px->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    a->open_clients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, client_timeout, ADMIN_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
}

px_err proxy_admin_start(proxy_t *px, const route_admin *cfg, proxy_admin **out, px_error *err)
{
    *out = NULL;
    proxy_admin *a = px_calloc(1, sizeof(*a));
    if (a == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the admin endpoint");
    a->px = px;
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->listen, cfg->port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(cfg->listen, cfg->port, (struct sockaddr_in6 *)&addr) != 0) {
        px_free(a);
        return px_error_set(err, PX_ERR_INVAL, "admin: bad listen address");
    }
    uv_tcp_init(px->loop, &a->listener);
    a->listener.data = a;
    a->open_clients = 1; /* the listener itself, released when it closes */
    int rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->listener, 128, admin_accept);
    *out = a;
    if (rc != 0)
        return px_error_setd(err, PX_ERR_IO, rc, "admin: cannot listen on %s:%u: %s", cfg->listen,
                             cfg->port, uv_strerror(rc));
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "admin_listening");
    px_log_cstr(&l, "address", cfg->listen);
    px_log_uint(&l, "port", cfg->port);
    px_log_end(&l);
    return PX_OK;
}

static void admin_listener_closed(uv_handle_t *h)
{
    proxy_admin *a = h->data;
    proxy_t *px = a->px;
    a->open_clients--;
    if (a->open_clients == 0)
        px_free(a);
    px->pending_closes--;
    proxy_maybe_finish_stop(px);
}

void proxy_admin_close(proxy_admin *a)
{
    a->closing = true;
    a->px->pending_closes++;
    uv_close((uv_handle_t *)&a->listener, admin_listener_closed);
}
