/* The proxy's life cycle: start (ledger, recovery, upstreams, listeners, admin, signals),
 * the ledger's completions on the loop, SIGHUP reloads, and the graceful stop. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "proxy/internal.h"

/* Recovered store-and-forward rows are read a page at a time while the queues are short,
 * so a long outbox is streamed, never loaded whole. */
#define RECOVERY_PAGE      512
#define RECOVERY_LOW_WATER 256

static void finish_stop(proxy_t *px);

uint64_t proxy_now_ms(const proxy_t *px)
{
    return uv_now(px->loop);
}

int64_t proxy_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t proxy_ledger_submit(proxy_t *px, ledger_op_t *op, proxy_txn *txn)
{
    if (px->ledger_closed) {
        px_log_msg(PX_LOG_ERROR, "record_lost", "ledger already closed");
        ledger_op_destroy(op);
        return 0;
    }
    if (txn != NULL)
        txn->pending++;
    return ledger_submit(px->ledger, op);
}

/* ---- ledger completions ---- */

static void ledger_notify(void *arg)
{
    /* Called on the ledger's threads: uv_async_send is the one libuv call allowed there. */
    uv_async_send(arg);
}

static void recovery_page_done(proxy_t *px, ledger_read_t *r);

static void ledger_drain(proxy_t *px)
{
    ledger_op_t *op = ledger_take_completed(px->ledger);
    while (op != NULL) {
        ledger_op_t *next = ledger_op_next(op);
        proxy_txn *t = ledger_op_user(op);
        if (t != NULL) {
            proxy_txn_ledger_done(t, op);
        } else {
            px_error err;
            if (ledger_op_result(op, &err) != PX_OK) {
                px_log_line l;
                px_log_begin(&l, PX_LOG_ERROR, "record_failed");
                px_log_cstr(&l, "reason", err.msg);
                px_log_end(&l);
            }
        }
        ledger_op_destroy(op);
        op = next;
    }
    ledger_read_t *r = ledger_take_completed_reads(px->ledger);
    while (r != NULL) {
        ledger_read_t *next = ledger_read_next(r);
        if (ledger_read_kind_of(r) == LEDGER_READ_OUTBOX)
            recovery_page_done(px, r);
        ledger_read_destroy(r);
        r = next;
    }
}

static void ledger_async_cb(uv_async_t *a)
{
    ledger_drain(a->data);
}

/* ---- start-up recovery ---- */

/* Refills the retransmission windows with the newest answered messages, so a sender that
 * resends after a restart gets the stored ACK instead of a second delivery. */
static px_err refill_windows(proxy_t *px, px_error *err)
{
    size_t per_feed = 0;
    for (size_t i = 0; i < px->nfeeds; i++)
        if (px->feeds[i].cfg->retransmit_window > per_feed)
            per_feed = px->feeds[i].cfg->retransmit_window;
    if (per_feed == 0)
        return PX_OK;
    ledger_read_t *r = NULL;
    px_err rc = ledger_read_window(per_feed, per_feed * px->nfeeds, 0, NULL, &r, err);
    if (rc == PX_OK)
        rc = ledger_read_run(px->ledger, r, err);
    if (rc != PX_OK) {
        ledger_read_destroy(r);
        return rc;
    }
    size_t n = ledger_read_count(r), loaded = 0;
    for (size_t i = n; i-- > 0;) { /* oldest first, so the newest are evicted last */
        const ledger_window_row *row = ledger_read_window_row(r, i);
        if (!row->has_ack || !row->has_hash)
            continue;
        for (size_t f = 0; f < px->nfeeds; f++) {
            if (!px_str_eq_cstr(row->feed, px->feeds[f].cfg->name))
                continue;
            proxy_rtx_entry *e =
                proxy_rtx_insert(px->feeds[f].rtx, 0, row->sending_app, row->sending_facility,
                                 row->control_id, row->hash, row->message);
            if (e != NULL && proxy_rtx_answer(px->feeds[f].rtx, e, row->ack) == PX_OK)
                loaded++;
        }
    }
    ledger_read_destroy(r);
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "window_refilled");
    px_log_uint(&l, "entries", loaded);
    px_log_end(&l);
    return PX_OK;
}

struct proxy_recovery {
    bool active;
    bool reading;
    int64_t after_seq;
    int64_t last_id; /* rows above this were queued by this run, not by an earlier one */
    uint64_t recovered;
};

static struct proxy_recovery recovery;

static void recovery_read_next(proxy_t *px);

static size_t sf_total(const proxy_t *px)
{
    size_t n = 0;
    for (size_t i = 0; i < px->nfeeds; i++)
        n += px->feeds[i].sf.count;
    return n;
}

/* Queued messages that are not being sent: the drain leaves those in the outbox. */
static size_t sf_idle(const proxy_t *px)
{
    size_t n = 0;
    for (size_t i = 0; i < px->nfeeds; i++) {
        const proxy_sf_queue *q = &px->feeds[i].sf;
        n += q->count - (q->sending ? 1 : 0);
        for (const proxy_txn *t = q->later_head; t != NULL; t = t->sf_next)
            n++;
    }
    return n;
}

static void recovery_maybe_read(proxy_t *px)
{
    if (recovery.active && !recovery.reading && !px->stopping && sf_total(px) < RECOVERY_LOW_WATER)
        recovery_read_next(px);
}

static void recovery_read_next(proxy_t *px)
{
    ledger_read_t *r = NULL;
    if (ledger_read_outbox(LEDGER_LEG_LEGACY, recovery.after_seq, RECOVERY_PAGE, true, px, &r,
                           NULL) != PX_OK) {
        recovery.active = false;
        px_log_msg(PX_LOG_ERROR, "recovery_failed", "no memory for an outbox read");
        return;
    }
    recovery.reading = true;
    ledger_read_submit(px->ledger, r);
}

static void recovery_page_done(proxy_t *px, ledger_read_t *r)
{
    recovery.reading = false;
    if (px->stopping) {
        recovery.active = false; /* the rows stay in the outbox for the next start */
        return;
    }
    px_error err;
    if (ledger_read_result(r, &err) != PX_OK) {
        recovery.active = false;
        px_log_line l;
        px_log_begin(&l, PX_LOG_ERROR, "recovery_failed");
        px_log_cstr(&l, "reason", err.msg);
        px_log_end(&l);
        return;
    }
    size_t n = ledger_read_count(r);
    bool done = !ledger_read_more(r);
    for (size_t i = 0; i < n; i++) {
        const ledger_outbox_row *row = ledger_read_outbox_row(r, i);
        recovery.after_seq = row->seq;
        if (row->message > recovery.last_id) {
            done = true; /* queued by this run: already in memory */
            break;
        }
        proxy_feed *f = NULL;
        for (size_t k = 0; k < px->nfeeds; k++)
            if (px_str_eq_cstr(row->feed, px->feeds[k].cfg->name))
                f = &px->feeds[k];
        if (f == NULL || row->body == NULL) {
            px_log_line l;
            px_log_begin(&l, PX_LOG_WARN, "recovery_skipped");
            px_log_int(&l, "message", row->message);
            px_log_cstr(&l, "reason", f == NULL ? "feed no longer configured" : "no stored body");
            px_log_end(&l);
            continue;
        }
        if (proxy_txn_recovered(f, row) == PX_OK)
            recovery.recovered++;
    }
    if (done) {
        recovery.active = false;
        px_log_line l;
        px_log_begin(&l, PX_LOG_INFO, "recovery_done");
        px_log_uint(&l, "queued_messages", recovery.recovered);
        px_log_end(&l);
        for (size_t k = 0; k < px->nfeeds; k++)
            proxy_sf_release_later(&px->feeds[k]);
        return;
    }
    recovery_maybe_read(px);
}

bool proxy_recovering(const proxy_t *px)
{
    (void)px;
    return recovery.active;
}

void proxy_recovery_poke(proxy_t *px)
{
    recovery_maybe_read(px);
}

/* ---- reload ---- */

typedef struct reload_work {
    uv_work_t req;
    proxy_t *px;
    route_config_t *cfg;
    px_error err;
    px_err rc;
} reload_work;

static void reload_load(uv_work_t *req)
{
    reload_work *w = req->data;
    w->rc = route_config_load(w->px->config_path, &w->cfg, &w->err);
}

/* Listeners and upstreams are bound at start; a reload may change everything else. */
static const char *reload_incompatible(const route_config_t *old, const route_config_t *cur)
{
    size_t nf_old, nf_new, nu_old, nu_new;
    const route_feed *fo = route_config_feeds(old, &nf_old);
    const route_feed *fn = route_config_feeds(cur, &nf_new);
    const route_upstream *uo = route_config_upstreams(old, &nu_old);
    const route_upstream *un = route_config_upstreams(cur, &nu_new);
    if (nf_old != nf_new)
        return "the set of feeds changed (restart needed)";
    for (size_t i = 0; i < nf_old; i++)
        if (strcmp(fo[i].name, fn[i].name) != 0 || strcmp(fo[i].listen, fn[i].listen) != 0 ||
            fo[i].port != fn[i].port || fo[i].upstream_index != fn[i].upstream_index ||
            fo[i].max_message_bytes != fn[i].max_message_bytes)
            return "a feed's listener, upstream or size cap changed (restart needed)";
    if (nu_old != nu_new)
        return "the set of upstreams changed (restart needed)";
    for (size_t i = 0; i < nu_old; i++)
        if (strcmp(uo[i].name, un[i].name) != 0 || strcmp(uo[i].host, un[i].host) != 0 ||
            uo[i].port != un[i].port || uo[i].pool != un[i].pool)
            return "an upstream's address or pool changed (restart needed)";
    if (strcmp(route_config_ledger(old)->path, route_config_ledger(cur)->path) != 0)
        return "the ledger path changed (restart needed)";
    return NULL;
}

/* Settings a reload accepts but that only a restart applies (they size structures made at
 * start): say so instead of pretending they changed. */
static const char *restart_only_change(const route_config_t *old, const route_config_t *cur)
{
    const route_admin *ao = route_config_admin(old), *an = route_config_admin(cur);
    if ((ao == NULL) != (an == NULL) ||
        (ao != NULL && (ao->port != an->port || strcmp(ao->listen, an->listen) != 0)))
        return "admin changes apply at the next restart";
    size_t n;
    const route_feed *fo = route_config_feeds(old, &n);
    const route_feed *fn = route_config_feeds(cur, &n);
    for (size_t i = 0; i < n; i++)
        if (fo[i].retransmit_window != fn[i].retransmit_window)
            return "retransmit_window changes apply at the next restart";
    return NULL;
}

static void record_reload(proxy_t *px, const route_config_t *cfg, bool ok, const char *reason)
{
    ledger_op_t *op = NULL;
    if (ledger_op_create(NULL, &op, NULL) != PX_OK)
        return;
    ledger_config_reload_rec r = {0};
    r.version = cfg != NULL ? (int64_t)route_config_version_id(cfg) : 0;
    r.hash = px_str_from_cstr(cfg != NULL ? route_config_version(cfg) : "");
    r.who = px_str_from_cstr("SIGHUP");
    r.ok = ok;
    r.reason = px_str_from_cstr(reason);
    r.at_ms = proxy_wall_ms();
    ledger_op_add_config_reload(op, &r, NULL);
    proxy_ledger_submit(px, op, NULL);
}

static void reload_done(uv_work_t *req, int status)
{
    reload_work *w = req->data;
    proxy_t *px = w->px;
    px->pending_closes--; /* taken by start_reload; px is freed at the earliest below */
    const char *why = NULL;
    if (status != 0)
        why = "reload cancelled";
    else if (w->rc != PX_OK)
        why = w->err.msg;
    else
        why = reload_incompatible(px->cfg, w->cfg);
    px_log_line l;
    if (why != NULL || px->stopping) {
        px->reload_failures++;
        px_log_begin(&l, PX_LOG_ERROR, "reload_refused");
        px_log_cstr(&l, "reason", why != NULL ? why : "stopping");
        px_log_cstr(&l, "kept_version", route_config_version(px->cfg));
        px_log_end(&l);
        if (!px->stopping)
            record_reload(px, w->cfg, false, why);
        route_config_destroy(w->cfg);
        px_free(w);
        proxy_maybe_finish_stop(px);
        return;
    }
    route_config_t *old = px->cfg;
    const char *deferred = restart_only_change(old, w->cfg);
    px->cfg = w->cfg;
    size_t n;
    const route_feed *feeds = route_config_feeds(px->cfg, &n);
    for (size_t i = 0; i < n; i++)
        px->feeds[i].cfg = &feeds[i];
    px->reloads++;
    px_log_begin(&l, PX_LOG_INFO, "reloaded");
    px_log_cstr(&l, "version", route_config_version(px->cfg));
    px_log_uint(&l, "generation", route_config_generation(px->cfg));
    px_log_end(&l);
    record_reload(px, px->cfg, true, deferred);
    if (deferred != NULL) {
        px_log_begin(&l, PX_LOG_WARN, "reload_partial");
        px_log_cstr(&l, "reason", deferred);
        px_log_end(&l);
    }
    /* Messages in flight keep their own reference to the generation they started under. */
    route_config_destroy(old);
    px_free(w);
}

static void start_reload(proxy_t *px)
{
    if (px->config_path == NULL || px->stopping)
        return;
    reload_work *w = px_calloc(1, sizeof(*w));
    if (w == NULL)
        return;
    w->px = px;
    w->req.data = w;
    /* A stop cannot cancel a load already running in the pool, and reload_done needs px:
     * the reload holds the proxy as a closing handle would. */
    if (uv_queue_work(px->loop, &w->req, reload_load, reload_done) != 0)
        px_free(w);
    else
        px->pending_closes++;
}

/* ---- signals ---- */

static void signal_cb(uv_signal_t *s, int signum)
{
    proxy_t *px = s->data;
    if (signum == SIGHUP) {
        start_reload(px);
        return;
    }
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "stopping");
    px_log_cstr(&l, "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    px_log_end(&l);
    proxy_stop(px);
}

/* ---- start ---- */

static void upstream_opts_from(const route_upstream *u, const route_config_t *cfg,
                               proxy_upstream_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->name = u->name;
    o->host = u->host;
    o->port = u->port;
    o->pool = u->pool;
    o->connect_timeout_ms = u->connect_timeout_ms;
    o->ack_timeout_ms = u->ack_timeout_ms;
    o->require_msa2_echo = u->require_msa2_echo;
    o->reconnect_min_ms = u->reconnect_min_ms;
    o->reconnect_max_ms = u->reconnect_max_ms;
    o->breaker_failures = u->breaker_failures;
    o->breaker_open_ms = u->breaker_open_ms;
    o->max_message_bytes = route_config_limits(cfg)->max_message_bytes;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

px_err proxy_start(uv_loop_t *loop, route_config_t *cfg, const char *config_path, proxy_t **out,
                   px_error *err)
{
    *out = NULL;
    proxy_t *px = px_calloc(1, sizeof(*px));
    if (px == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the proxy");
    px->loop = loop;
    px->cfg = route_config_ref(cfg);
    if (config_path != NULL) {
        size_t n = strlen(config_path) + 1;
        px->config_path = px_malloc(n);
        if (px->config_path != NULL)
            memcpy(px->config_path, config_path, n);
    }
    px->peers = proxy_peers_create();
    px->app_routes = px_calloc(PROXY_APP_ROUTES, sizeof(*px->app_routes));
    uv_async_init(loop, &px->ledger_async, ledger_async_cb);
    px->ledger_async.data = px;
    uv_timer_init(loop, &px->drain_timer);
    px->drain_timer.data = px;
    uv_timer_init(loop, &px->record_retry);
    px->record_retry.data = px;
    uv_signal_init(loop, &px->sig_term);
    uv_signal_init(loop, &px->sig_int);
    uv_signal_init(loop, &px->sig_hup);
    px->sig_term.data = px->sig_int.data = px->sig_hup.data = px;
    px->started_handles = true;
    if (px->peers == NULL || px->app_routes == NULL) {
        px_error_set(err, PX_ERR_NOMEM, "no memory for the proxy");
        goto out_fail;
    }

    const route_ledger *lc = route_config_ledger(cfg);
    ledger_options lo;
    ledger_options_init(&lo);
    lo.path = lc->path;
    lo.synchronous = lc->synchronous == ROUTE_SYNC_NORMAL ? LEDGER_SYNC_NORMAL : LEDGER_SYNC_FULL;
    lo.journal_size_limit = (int64_t)lc->journal_size_limit_mb * 1024 * 1024;
    lo.busy_timeout_ms = (int)lc->busy_timeout_ms;
    lo.instance_id = route_config_instance(cfg);
    lo.recover_in_flight = true;
    lo.notify = ledger_notify;
    lo.notify_arg = &px->ledger_async;
    if (ledger_open(&lo, &px->ledger, err) != PX_OK)
        goto out_fail;

    size_t nu;
    const route_upstream *ups = route_config_upstreams(cfg, &nu);
    px->upstreams = px_calloc(nu, sizeof(*px->upstreams));
    if (px->upstreams == NULL) {
        px_error_set(err, PX_ERR_NOMEM, "no memory for the upstreams");
        goto out_fail;
    }
    px->nupstreams = nu;
    for (size_t i = 0; i < nu; i++) {
        proxy_upstream_opts o;
        upstream_opts_from(&ups[i], cfg, &o);
        if (proxy_upstream_create(loop, &o, proxy_txn_on_unsolicited, px, &px->upstreams[i], err) !=
            PX_OK)
            goto out_fail;
    }

    size_t nf;
    const route_feed *feeds = route_config_feeds(cfg, &nf);
    px->feeds = px_calloc(nf, sizeof(*px->feeds));
    if (px->feeds == NULL) {
        px_error_set(err, PX_ERR_NOMEM, "no memory for the feeds");
        goto out_fail;
    }
    px->nfeeds = nf;
    for (size_t i = 0; i < nf; i++) {
        proxy_feed *f = &px->feeds[i];
        f->px = px;
        f->cfg = &feeds[i];
        f->index = i;
        f->upstream = px->upstreams[feeds[i].upstream_index];
        f->feed_lane = proxy_upstream_lane_create(f->upstream);
        f->key_lanes = proxy_lanes_create(f->upstream);
        if (f->feed_lane == NULL || f->key_lanes == NULL ||
            proxy_rtx_create(feeds[i].retransmit_window, &f->rtx, err) != PX_OK) {
            px_error_set(err, PX_ERR_NOMEM, "no memory for feed %s", feeds[i].name);
            goto out_fail;
        }
        proxy_sf_init(f);
    }
    if (refill_windows(px, err) != PX_OK)
        goto out_fail;
    ledger_stats st;
    ledger_stats_get(px->ledger, &st);
    recovery =
        (struct proxy_recovery){.active = true, .after_seq = 0, .last_id = st.last_message_id};
    recovery_read_next(px);

    for (size_t i = 0; i < nf; i++)
        if (proxy_feed_listen(&px->feeds[i], err) != PX_OK)
            goto out_fail;
    const route_admin *ac = route_config_admin(cfg);
    if (ac != NULL && proxy_admin_start(px, ac, &px->admin, err) != PX_OK)
        goto out_fail;
    uv_signal_start(&px->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&px->sig_int, signal_cb, SIGINT);
    uv_signal_start(&px->sig_hup, signal_cb, SIGHUP);
    if (lc->synchronous == ROUTE_SYNC_NORMAL)
        px_log_msg(PX_LOG_WARN, "ledger_sync_normal",
                   "synchronous=normal: a power cut may lose the last acknowledged messages");
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "started");
    px_log_cstr(&l, "instance", route_config_instance(cfg));
    px_log_cstr(&l, "config_version", route_config_version(cfg));
    px_log_uint(&l, "feeds", nf);
    px_log_uint(&l, "recovered_unknown_legs", st.recovered_unknown);
    px_log_end(&l);
    record_reload(px, cfg, true, "start");
    *out = px;
    return PX_OK;

out_fail:
    px->start_failed = true;
    proxy_stop(px);
    return err != NULL ? err->code : PX_ERR_IO;
}

/* ---- stop ---- */

static void drain_timeout_cb(uv_timer_t *t)
{
    proxy_t *px = t->data;
    px_log_line l;
    px_log_begin(&l, PX_LOG_WARN, "drain_timeout");
    px_log_uint(&l, "messages_in_flight", px->txns_open);
    px_log_end(&l);
    finish_stop(px);
}

void proxy_stop(proxy_t *px)
{
    if (px->stopping)
        return;
    px->stopping = true;
    for (size_t i = 0; i < px->nfeeds; i++)
        proxy_feed_close_listener(&px->feeds[i]);
    for (proxy_conn *c = px->conns; c != NULL; c = c->next)
        proxy_conn_update_reading(c);
    uv_signal_stop(&px->sig_hup);
    uint64_t bound = route_config_limits(px->cfg)->drain_timeout_ms;
    uv_timer_start(&px->drain_timer, drain_timeout_cb, px->start_failed ? 0 : bound, 0);
    proxy_maybe_finish_stop(px);
}

void proxy_maybe_finish_stop(proxy_t *px)
{
    if (!px->stopping)
        return;
    if (!px->finishing) {
        /* Draining: wait until every message read is answered and recorded; what sits in a
         * store-and-forward queue stays in the outbox for the next start. */
        if (px->txns_open > sf_idle(px))
            return;
        finish_stop(px);
        return;
    }
    if (px->pending_closes == 0 && px->nconns == 0 && !px->freed)
        proxy_free_all(px);
}

static void handle_closed(uv_handle_t *h)
{
    proxy_t *px = h->data;
    px->pending_closes--;
    proxy_maybe_finish_stop(px);
}

static void upstream_closed(void *arg)
{
    proxy_t *px = arg;
    px->pending_closes--;
    proxy_maybe_finish_stop(px);
}

static void close_handle(proxy_t *px, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    px->pending_closes++;
    uv_close(h, handle_closed);
}

static void finish_stop(proxy_t *px)
{
    if (px->finishing)
        return;
    px->finishing = true;
    px->pending_closes++; /* held until the end of this function */
    uv_timer_stop(&px->drain_timer);
    /* One last try for records still failing; a failure from here on is logged as lost. */
    proxy_txn_retry_records(px);
    close_handle(px, (uv_handle_t *)&px->record_retry);
    for (size_t i = 0; i < px->nfeeds; i++)
        proxy_feed_close_listener(&px->feeds[i]);
    proxy_conn *c = px->conns;
    while (c != NULL) {
        proxy_conn *next = c->next;
        proxy_conn_close(c, "stopping");
        c = next;
    }
    for (size_t i = 0; i < px->nfeeds; i++)
        if (px->feeds[i].rtx != NULL)
            proxy_sf_close(&px->feeds[i]);
    for (size_t i = 0; i < px->nupstreams; i++) {
        if (px->upstreams[i] != NULL) {
            px->pending_closes++;
            proxy_upstream_close(px->upstreams[i], upstream_closed, px);
        }
    }
    if (px->admin != NULL) {
        proxy_admin_close(px->admin);
        px->admin = NULL;
    }
    close_handle(px, (uv_handle_t *)&px->drain_timer);
    close_handle(px, (uv_handle_t *)&px->sig_term);
    close_handle(px, (uv_handle_t *)&px->sig_int);
    close_handle(px, (uv_handle_t *)&px->sig_hup);
    px->pending_closes--;
    proxy_maybe_finish_stop(px);
}

/* Everything on the loop is closed: settle the ledger and free. */
static void async_closed(uv_handle_t *h)
{
    proxy_t *px = h->data;
    for (size_t i = 0; i < px->nfeeds; i++) {
        proxy_rtx_destroy(px->feeds[i].rtx);
        proxy_upstream_lane_release(px->feeds[i].feed_lane);
        proxy_lanes_destroy(px->feeds[i].key_lanes);
    }
    px_free(px->feeds);
    px_free(px->upstreams);
    proxy_peers_destroy(px->peers);
    px_free(px->app_routes);
    route_config_destroy(px->cfg);
    px_free(px->config_path);
    proxy_txn_cleanup();
    px_free(px);
}

void proxy_free_all(proxy_t *px)
{
    px->freed = true;
    if (px->ledger != NULL) {
        /* Answer every completion still due, then close: nothing submitted is lost. */
        for (int round = 0; round < 100 && px->txns_open > 0; round++) {
            ledger_flush(px->ledger);
            ledger_drain(px);
        }
        ledger_flush(px->ledger);
        ledger_drain(px);
        px->ledger_closed = true;
        ledger_close(px->ledger);
        px->ledger = NULL;
    }
    px_log_line l;
    px_log_begin(&l, PX_LOG_INFO, "stopped");
    px_log_uint(&l, "messages_unsettled", px->txns_open);
    px_log_end(&l);
    uv_close((uv_handle_t *)&px->ledger_async, async_closed);
}

int proxy_exit_status(const proxy_t *px)
{
    return px->exit_status;
}

int proxy_serve(const char *config_path)
{
    px_error err = {0};
    route_config_t *cfg = NULL;
    if (route_config_load(config_path, &cfg, &err) != PX_OK) {
        fprintf(stderr, "parallax serve: %s: %s\n", config_path, err.msg);
        return 4;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    uv_loop_t loop;
    uv_loop_init(&loop);
    proxy_t *px = NULL;
    px_err rc = proxy_start(&loop, cfg, config_path, &px, &err);
    route_config_destroy(cfg);
    if (rc != PX_OK) {
        uv_run(&loop, UV_RUN_DEFAULT); /* lets the partial start close its handles */
        uv_loop_close(&loop);
        fprintf(stderr, "parallax serve: %s\n", err.msg);
        return rc == PX_ERR_INVAL ? 4 : 5;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop);
    return closed == 0 ? 0 : 5;
}
