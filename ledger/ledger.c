/* Opening and closing the ledger, submitting ops and taking them back, figures. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "ledger/internal.h"

void ledger_options_init(ledger_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->synchronous = LEDGER_SYNC_FULL;
    opt->journal_size_limit = 64 * 1024 * 1024;
    opt->busy_timeout_ms = 5000;
    opt->instance_id = "";
    opt->checkpoint_bytes = 4 * 1024 * 1024;
    opt->max_group = 4096;
}

static char *dup_cstr(const char *s)
{
    size_t n = strlen(s);
    char *d = px_malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

static px_err open_conn(const char *path, sqlite3 **out, px_error *err)
{
    /* NOMUTEX: each connection belongs to one thread at a time. NOFOLLOW: a symlink
     * swapped in after our checks is still refused. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    int rc = sqlite3_open_v2(path, out, flags, NULL);
    if (rc != SQLITE_OK) {
        px_error_setd(err, PX_ERR_DB, rc, "cannot open ledger %s: %s", path,
                      *out != NULL ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
        sqlite3_close(*out);
        *out = NULL;
        return PX_ERR_DB;
    }
    return PX_OK;
}

/* Frees everything; the threads must not be running. */
static void ledger_free(ledger_t *l)
{
    ledger__writer_finalize(l);
    ledger__reader_finalize(l);
    sqlite3_close(l->rdb);
    sqlite3_close(l->wdb);
    pthread_cond_destroy(&l->writer_cv);
    pthread_cond_destroy(&l->reader_cv);
    pthread_cond_destroy(&l->done_cv);
    pthread_mutex_destroy(&l->mu);
    px_free(l->path);
    px_free(l->instance_id);
    px_free(l);
}

px_err ledger_open(const ledger_options *opt, ledger_t **out, px_error *err)
{
    *out = NULL;
    if (opt == NULL || opt->path == NULL)
        return px_error_set(err, PX_ERR_INVAL, "ledger path is not set");
    if (opt->busy_timeout_ms < 0 || opt->journal_size_limit < 0)
        return px_error_set(err, PX_ERR_INVAL, "ledger busy timeout or WAL limit is negative");
    if ((unsigned)opt->synchronous > LEDGER_SYNC_NORMAL)
        return px_error_set(err, PX_ERR_INVAL, "ledger synchronous mode out of range");

    px_err e = ledger__prepare_path(opt->path, err);
    if (e != PX_OK)
        return e;

    ledger_t *l = px_calloc(1, sizeof(*l));
    if (l == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for the ledger");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->writer_cv, NULL);
    pthread_cond_init(&l->reader_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    l->path = dup_cstr(opt->path);
    l->instance_id = dup_cstr(opt->instance_id != NULL ? opt->instance_id : "");
    if (l->path == NULL || l->instance_id == NULL) {
        e = px_error_set(err, PX_ERR_NOMEM, "no memory for the ledger");
        goto out_free;
    }
    l->checkpoint_bytes = opt->checkpoint_bytes != 0 ? opt->checkpoint_bytes : 4 * 1024 * 1024;
    /* Past this WAL size the writer checkpoints between groups (see writer.c). */
    l->wal_bound_bytes = (uint64_t)opt->journal_size_limit;
    if (l->wal_bound_bytes < 2 * (uint64_t)l->checkpoint_bytes)
        l->wal_bound_bytes = 2 * (uint64_t)l->checkpoint_bytes;
    l->max_group = opt->max_group != 0 ? opt->max_group : 4096;
    l->notify = opt->notify;
    l->notify_arg = opt->notify_arg;

    e = open_conn(opt->path, &l->wdb, err);
    if (e != PX_OK)
        goto out_free;
    /* Before any pragma that writes (WAL mode), so a file that is not ours stays as it is. */
    int64_t version = 0;
    e = ledger__schema_check(l->wdb, &version, err);
    if (e != PX_OK)
        goto out_free;
    e = ledger__configure(l->wdb, true, opt->synchronous, opt->journal_size_limit,
                          opt->busy_timeout_ms, err);
    if (e != PX_OK)
        goto out_free;
    e = ledger__migrate(l->wdb, err);
    if (e != PX_OK)
        goto out_free;
    int64_t v = 0;
    e = ledger__query_int(l->wdb, "PRAGMA page_size", &v, err);
    if (e != PX_OK)
        goto out_free;
    l->page_size = v > 0 ? (int)v : 4096;
    if (opt->recover_in_flight) {
        e = ledger__recover(l, ledger__wall_ms(), err);
        if (e != PX_OK)
            goto out_free;
    }
    e = ledger__query_int(l->wdb, "SELECT coalesce(max(id), 0) FROM messages", &l->next_id, err);
    if (e != PX_OK)
        goto out_free;
    atomic_store(&l->last_id, l->next_id);
    e = ledger__writer_prepare(l, err);
    if (e != PX_OK)
        goto out_free;
    /* The -wal and -shm files exist now (migration wrote through the WAL). */
    e = ledger__fix_modes(opt->path, err);
    if (e != PX_OK)
        goto out_free;

    e = open_conn(opt->path, &l->rdb, err);
    if (e != PX_OK)
        goto out_free;
    e = ledger__configure(l->rdb, false, opt->synchronous, opt->journal_size_limit,
                          opt->busy_timeout_ms, err);
    if (e != PX_OK)
        goto out_free;
    e = ledger__reader_prepare(l, err);
    if (e != PX_OK)
        goto out_free;
    ledger__wal_hook_install(l);

    if (pthread_create(&l->writer, NULL, ledger__writer_main, l) != 0) {
        e = px_error_set(err, PX_ERR_IO, "cannot start the ledger writer thread");
        goto out_free;
    }
    l->writer_started = true;
    if (pthread_create(&l->reader, NULL, ledger__reader_main, l) != 0) {
        e = px_error_set(err, PX_ERR_IO, "cannot start the ledger reader thread");
        goto out_stop;
    }
    l->reader_started = true;
    *out = l;
    return PX_OK;

out_stop:
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->writer_cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
out_free:
    ledger_free(l);
    return e;
}

void ledger_close(ledger_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->closing = true;
    pthread_cond_broadcast(&l->writer_cv);
    pthread_cond_broadcast(&l->reader_cv);
    pthread_mutex_unlock(&l->mu);
    if (l->writer_started)
        pthread_join(l->writer, NULL);
    if (l->reader_started)
        pthread_join(l->reader, NULL);

    ledger_op_t *op = l->completed;
    while (op != NULL) {
        ledger_op_t *next = op->next;
        ledger_op_destroy(op);
        op = next;
    }
    ledger_read_t *r = l->rcompleted;
    while (r != NULL) {
        ledger_read_t *next = r->next;
        ledger_read_destroy(r);
        r = next;
    }
    ledger_free(l);
}

void ledger_flush(ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t target = l->submitted;
    while (l->completed_count < target)
        pthread_cond_wait(&l->done_cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

int64_t ledger_submit(ledger_t *l, ledger_op_t *op)
{
    op->next = NULL;
    px_error_clear(&op->result);
    pthread_mutex_lock(&l->mu);
    /* Ids are taken under the queue's lock so they grow in submit (and commit) order. */
    op->first_id = l->next_id + 1;
    l->next_id += (int64_t)op->n_messages;
    atomic_store_explicit(&l->last_id, l->next_id, memory_order_relaxed);
    if (l->queue_tail == NULL)
        l->queue = op;
    else
        l->queue_tail->next = op;
    l->queue_tail = op;
    l->submitted++;
    /* A busy writer finds the op when its commit ends: waking it costs the submitting loop a
     * futex call, so only a sleeping writer is woken, after the lock is released. */
    bool wake = l->writer_waiting;
    pthread_mutex_unlock(&l->mu);
    if (wake)
        pthread_cond_signal(&l->writer_cv);
    return op->n_messages > 0 ? op->first_id : 0;
}

ledger_op_t *ledger_take_completed(ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    ledger_op_t *list = l->completed;
    l->completed = l->completed_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    return list;
}

void ledger_stats_get(ledger_t *l, ledger_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->commits = atomic_load_explicit(&l->commits, memory_order_relaxed);
    out->commit_failures = atomic_load_explicit(&l->commit_failures, memory_order_relaxed);
    out->ops_ok = atomic_load_explicit(&l->ops_ok, memory_order_relaxed);
    out->ops_failed = atomic_load_explicit(&l->ops_failed, memory_order_relaxed);
    out->last_group = atomic_load_explicit(&l->last_group, memory_order_relaxed);
    out->max_group = atomic_load_explicit(&l->max_group_seen, memory_order_relaxed);
    out->commit_us_sum = atomic_load_explicit(&l->commit_us_sum, memory_order_relaxed);
    out->commit_p50_us = ledger__hist_quantile(&l->commit_hist, 0.50);
    out->commit_p99_us = ledger__hist_quantile(&l->commit_hist, 0.99);
    out->commit_max_us = atomic_load_explicit(&l->commit_max_us, memory_order_relaxed);
    uint64_t frames = atomic_load_explicit(&l->wal_frames, memory_order_relaxed);
    /* A WAL file is a 32-byte header and frames of a 24-byte header plus a page. */
    out->wal_bytes = frames == 0 ? 0 : 32 + frames * (24 + (uint64_t)l->page_size);
    out->checkpoints = atomic_load_explicit(&l->checkpoints, memory_order_relaxed);
    out->reads = atomic_load_explicit(&l->reads, memory_order_relaxed);
    out->recovered_unknown = l->recovered_unknown;
    out->recovered_pending = l->recovered_pending;
    out->last_message_id = atomic_load_explicit(&l->last_id, memory_order_relaxed);
    pthread_mutex_lock(&l->mu);
    out->queued = l->submitted - l->completed_count;
    pthread_mutex_unlock(&l->mu);
}
