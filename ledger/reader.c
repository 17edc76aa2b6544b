/* The reader thread: its own connection, serving the loop's reads (retransmission window,
 * outbox pages, unsettled legs) one at a time, and running PASSIVE checkpoints when the
 * writer reports that the WAL grew by checkpoint_bytes. Results are copied out of SQLite
 * into memory owned by the read, so a page is bounded by its row and byte limits and
 * recovery streams the outbox instead of loading it (RELIABILITY A7, Mirth #3089). */
#include <string.h>

#include "common/alloc.h"
#include "ledger/internal.h"

/* ---- read objects ---- */

static size_t row_size(ledger_read_kind kind)
{
    switch (kind) {
    case LEDGER_READ_WINDOW:
        return sizeof(ledger_window_row);
    case LEDGER_READ_OUTBOX:
        return sizeof(ledger_outbox_row);
    case LEDGER_READ_UNSETTLED:
        return sizeof(ledger_leg_row);
    }
    return 0;
}

static px_err read_new(ledger_read_kind kind, void *user, ledger_read_t **out, px_error *err)
{
    ledger_read_t *r = px_calloc(1, sizeof(*r));
    *out = NULL;
    if (r == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for a ledger read");
    r->kind = kind;
    r->user = user;
    *out = r;
    return PX_OK;
}

px_err ledger_read_window(size_t per_feed, size_t max_scan, int64_t since_ms, void *user,
                          ledger_read_t **out, px_error *err)
{
    if (per_feed == 0 || max_scan == 0) {
        *out = NULL;
        return px_error_set(err, PX_ERR_INVAL, "ledger window read needs non-zero counts");
    }
    px_err e = read_new(LEDGER_READ_WINDOW, user, out, err);
    if (e == PX_OK) {
        (*out)->per_feed = per_feed;
        (*out)->max_scan = max_scan;
        (*out)->since_ms = since_ms;
    }
    return e;
}

px_err ledger_read_outbox(ledger_leg_kind leg, int64_t after_seq, size_t limit, bool bodies,
                          void *user, ledger_read_t **out, px_error *err)
{
    if (limit == 0 || (unsigned)leg > LEDGER_LEG_FHIR) {
        *out = NULL;
        return px_error_set(err, PX_ERR_INVAL, "ledger outbox read needs a leg and a limit");
    }
    px_err e = read_new(LEDGER_READ_OUTBOX, user, out, err);
    if (e == PX_OK) {
        (*out)->leg = leg;
        (*out)->after = after_seq;
        (*out)->limit = limit > LEDGER_PAGE_MAX_ROWS ? LEDGER_PAGE_MAX_ROWS : limit;
        (*out)->bodies = bodies;
    }
    return e;
}

px_err ledger_read_unsettled(int64_t after_message, size_t limit, void *user, ledger_read_t **out,
                             px_error *err)
{
    if (limit == 0) {
        *out = NULL;
        return px_error_set(err, PX_ERR_INVAL, "ledger unsettled read needs a limit");
    }
    px_err e = read_new(LEDGER_READ_UNSETTLED, user, out, err);
    if (e == PX_OK) {
        (*out)->after = after_message;
        (*out)->limit = limit > LEDGER_PAGE_MAX_ROWS ? LEDGER_PAGE_MAX_ROWS : limit;
    }
    return e;
}

/* Forgets any rows (a read may be run again after a failure). */
static void read_clear(ledger_read_t *r)
{
    if (r->kind == LEDGER_READ_OUTBOX) {
        ledger_outbox_row *rows = r->rows;
        for (size_t i = 0; i < r->count; i++)
            px_msg_unref(rows[i].body);
    }
    px_free(r->rows);
    r->rows = NULL;
    r->count = 0;
    r->cap = 0;
    r->more = false;
    ledger__arena_chunk *c = r->arena;
    while (c != NULL) {
        ledger__arena_chunk *next = c->next;
        px_free(c);
        c = next;
    }
    r->arena = NULL;
}

void ledger_read_destroy(ledger_read_t *r)
{
    if (r == NULL)
        return;
    read_clear(r);
    px_free(r);
}

px_err ledger__read_copy(ledger_read_t *r, const void *ptr, size_t len, px_str *out)
{
    if (len == 0 || ptr == NULL) {
        *out = PX_STR_NULL;
        return PX_OK;
    }
    ledger__arena_chunk *c = r->arena;
    if (c == NULL || c->cap - c->used < len) {
        size_t cap = len > 16384 ? len : 16384;
        ledger__arena_chunk *n = px_malloc(sizeof(*n) + cap);
        if (n == NULL)
            return PX_ERR_NOMEM;
        n->used = 0;
        n->cap = cap;
        n->next = r->arena;
        r->arena = n;
        c = n;
    }
    char *p = c->data + c->used;
    memcpy(p, ptr, len);
    c->used += len;
    *out = px_str_make(p, len);
    return PX_OK;
}

void *ledger__read_push(ledger_read_t *r)
{
    size_t size = row_size(r->kind);
    if (r->count == r->cap) {
        size_t cap = r->cap == 0 ? 64 : r->cap * 2;
        void *rows = px_realloc(r->rows, cap * size);
        if (rows == NULL)
            return NULL;
        r->rows = rows;
        r->cap = cap;
    }
    char *row = (char *)r->rows + r->count * size;
    memset(row, 0, size);
    r->count++;
    return row;
}

ledger_read_t *ledger_read_next(const ledger_read_t *r)
{
    return r->next;
}

void *ledger_read_user(const ledger_read_t *r)
{
    return r->user;
}

ledger_read_kind ledger_read_kind_of(const ledger_read_t *r)
{
    return r->kind;
}

px_err ledger_read_result(const ledger_read_t *r, px_error *out)
{
    if (out != NULL)
        *out = r->result;
    return r->result.code;
}

size_t ledger_read_count(const ledger_read_t *r)
{
    return r->count;
}

bool ledger_read_more(const ledger_read_t *r)
{
    return r->more;
}

const ledger_window_row *ledger_read_window_row(const ledger_read_t *r, size_t i)
{
    if (r->kind != LEDGER_READ_WINDOW || i >= r->count)
        return NULL;
    return (const ledger_window_row *)r->rows + i;
}

const ledger_outbox_row *ledger_read_outbox_row(const ledger_read_t *r, size_t i)
{
    if (r->kind != LEDGER_READ_OUTBOX || i >= r->count)
        return NULL;
    return (const ledger_outbox_row *)r->rows + i;
}

const ledger_leg_row *ledger_read_leg_row(const ledger_read_t *r, size_t i)
{
    if (r->kind != LEDGER_READ_UNSETTLED || i >= r->count)
        return NULL;
    return (const ledger_leg_row *)r->rows + i;
}

/* ---- queries ---- */

px_err ledger__reader_prepare(ledger_t *l, px_error *err)
{
    px_err e;
    /* Newest first by id (arrival order) without an index of its own: the walk stops
     * after max_scan rows. The sender ACK comes from its primary key. */
    e = ledger__prepare(l->rdb,
                        "SELECT m.id, m.received_at, m.feed, m.sending_app, m.sending_facility,"
                        " m.control_id, m.hash, a.code, a.ack"
                        " FROM messages m LEFT JOIN sender_acks a ON a.message = m.id"
                        " ORDER BY m.id DESC",
                        &l->rs.window, err);
    if (e != PX_OK)
        return e;
#define OUTBOX_COLS                                                                                \
    "SELECT o.seq, o.message, o.ordering_key, o.attempts, o.next_attempt_at,"                      \
    " m.received_at, m.feed, m.type, m.trigger_event, m.control_id, m.config_version"
#define OUTBOX_FROM  " FROM outbox o JOIN messages m ON m.id = o.message"
#define OUTBOX_WHERE " WHERE o.leg = ?1 AND o.seq > ?2 ORDER BY o.seq LIMIT ?3"
    e = ledger__prepare(l->rdb, OUTBOX_COLS OUTBOX_FROM OUTBOX_WHERE, &l->rs.outbox, err);
    if (e != PX_OK)
        return e;
    e = ledger__prepare(l->rdb,
                        OUTBOX_COLS ", b.body" OUTBOX_FROM
                                    " LEFT JOIN bodies b ON b.message = o.message" OUTBOX_WHERE,
                        &l->rs.outbox_bodies, err);
    if (e != PX_OK)
        return e;
    return ledger__prepare(l->rdb,
                           "SELECT g.message, g.leg, g.state, g.attempts, g.updated_at, m.feed,"
                           " m.control_id FROM legs g JOIN messages m ON m.id = g.message"
                           " WHERE g.message > ?1 AND g.state IN ('pending', 'in_flight', 'held')"
                           " ORDER BY g.message, g.leg LIMIT ?2",
                           &l->rs.unsettled, err);
}

void ledger__reader_finalize(ledger_t *l)
{
    sqlite3_stmt **all = (sqlite3_stmt **)&l->rs;
    for (size_t i = 0; i < sizeof(l->rs) / sizeof(sqlite3_stmt *); i++) {
        sqlite3_finalize(all[i]);
        all[i] = NULL;
    }
}

static px_err col_str(ledger_read_t *r, sqlite3_stmt *st, int i, px_str *out)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    return ledger__read_copy(r, p, n, out);
}

#define NOMEM_IF(cond)                                                                             \
    do {                                                                                           \
        if (cond) {                                                                                \
            e = px_error_set(&r->result, PX_ERR_NOMEM, "no memory for ledger read rows");          \
            goto out_reset;                                                                        \
        }                                                                                          \
    } while (0)

/* A feed and how many of its messages the window holds so far. */
typedef struct feed_count {
    px_str feed;
    size_t n;
} feed_count;

static px_err do_window(ledger_t *l, ledger_read_t *r)
{
    sqlite3_stmt *st = l->rs.window;
    px_err e = PX_OK;
    feed_count *feeds = NULL;
    size_t nfeeds = 0, capfeeds = 0;
    size_t scanned = 0;
    int rc = SQLITE_DONE;
    while (scanned < r->max_scan && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        scanned++;
        int64_t at = sqlite3_column_int64(st, 1);
        /* Ids follow arrival, so the walk can stop at the first message older than since. */
        if (r->since_ms != 0 && at < r->since_ms)
            break;
        px_str feed = px_str_make((const char *)sqlite3_column_text(st, 2),
                                  (size_t)sqlite3_column_bytes(st, 2));
        size_t f = 0;
        while (f < nfeeds && !px_str_eq(feeds[f].feed, feed))
            f++;
        if (f < nfeeds && feeds[f].n >= r->per_feed)
            continue;
        ledger_window_row *row = ledger__read_push(r);
        NOMEM_IF(row == NULL);
        NOMEM_IF(ledger__read_copy(r, feed.ptr, feed.len, &row->feed) != PX_OK);
        if (f == nfeeds) {
            if (nfeeds == capfeeds) {
                size_t cap = capfeeds == 0 ? 16 : capfeeds * 2;
                feed_count *nf = px_realloc(feeds, cap * sizeof(*nf));
                NOMEM_IF(nf == NULL);
                feeds = nf;
                capfeeds = cap;
            }
            feeds[nfeeds].feed = row->feed;
            feeds[nfeeds].n = 0;
            nfeeds++;
        }
        feeds[f].n++;
        row->message = sqlite3_column_int64(st, 0);
        row->received_at_ms = at;
        NOMEM_IF(col_str(r, st, 3, &row->sending_app) != PX_OK);
        NOMEM_IF(col_str(r, st, 4, &row->sending_facility) != PX_OK);
        NOMEM_IF(col_str(r, st, 5, &row->control_id) != PX_OK);
        if (sqlite3_column_bytes(st, 6) == LEDGER_HASH_LEN) {
            row->has_hash = true;
            memcpy(row->hash, sqlite3_column_blob(st, 6), LEDGER_HASH_LEN);
        }
        if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
            row->has_ack = true;
            NOMEM_IF(col_str(r, st, 7, &row->ack_code) != PX_OK);
            NOMEM_IF(col_str(r, st, 8, &row->ack) != PX_OK);
        }
    }
    if (scanned < r->max_scan && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = ledger__db_error(&r->result, l->rdb, rc, "ledger window read");
out_reset:
    px_free(feeds);
    sqlite3_reset(st);
    return e;
}

static px_err do_outbox(ledger_t *l, ledger_read_t *r)
{
    sqlite3_stmt *st = r->bodies ? l->rs.outbox_bodies : l->rs.outbox;
    px_err e = PX_OK;
    sqlite3_bind_text(st, 1, ledger_leg_kind_name(r->leg), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->after);
    /* One row more than asked tells whether the page is the last. */
    sqlite3_bind_int64(st, 3, (sqlite3_int64)r->limit + 1);
    size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->count == r->limit || bytes >= LEDGER_PAGE_MAX_BYTES) {
            r->more = true;
            break;
        }
        ledger_outbox_row *row = ledger__read_push(r);
        NOMEM_IF(row == NULL);
        row->seq = sqlite3_column_int64(st, 0);
        row->message = sqlite3_column_int64(st, 1);
        row->leg = r->leg;
        NOMEM_IF(col_str(r, st, 2, &row->key) != PX_OK);
        row->attempts = sqlite3_column_int(st, 3);
        row->next_attempt_ms = sqlite3_column_int64(st, 4);
        row->received_at_ms = sqlite3_column_int64(st, 5);
        NOMEM_IF(col_str(r, st, 6, &row->feed) != PX_OK);
        NOMEM_IF(col_str(r, st, 7, &row->type) != PX_OK);
        NOMEM_IF(col_str(r, st, 8, &row->trigger) != PX_OK);
        NOMEM_IF(col_str(r, st, 9, &row->control_id) != PX_OK);
        row->config_version = sqlite3_column_int64(st, 10);
        if (r->bodies && sqlite3_column_type(st, 11) != SQLITE_NULL) {
            const void *p = sqlite3_column_blob(st, 11);
            size_t n = (size_t)sqlite3_column_bytes(st, 11);
            e = px_msg_create(p, n, &row->body, &r->result);
            if (e != PX_OK)
                goto out_reset;
            bytes += n;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = ledger__db_error(&r->result, l->rdb, rc, "ledger outbox read");
out_reset:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}

static px_err do_unsettled(ledger_t *l, ledger_read_t *r)
{
    sqlite3_stmt *st = l->rs.unsettled;
    px_err e = PX_OK;
    sqlite3_bind_int64(st, 1, r->after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->limit + 1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->count == r->limit) {
            r->more = true;
            break;
        }
        ledger_leg_row *row = ledger__read_push(r);
        NOMEM_IF(row == NULL);
        row->message = sqlite3_column_int64(st, 0);
        px_str s = px_str_make((const char *)sqlite3_column_text(st, 1),
                               (size_t)sqlite3_column_bytes(st, 1));
        if (ledger_leg_kind_parse(s, &row->leg) != PX_OK) {
            e = px_error_set(&r->result, PX_ERR_DB, "ledger leg row with an unknown leg");
            goto out_reset;
        }
        s = px_str_make((const char *)sqlite3_column_text(st, 2),
                        (size_t)sqlite3_column_bytes(st, 2));
        if (ledger_leg_state_parse(s, &row->state) != PX_OK) {
            e = px_error_set(&r->result, PX_ERR_DB, "ledger leg row with an unknown state");
            goto out_reset;
        }
        row->attempts = sqlite3_column_int(st, 3);
        row->updated_at_ms = sqlite3_column_int64(st, 4);
        NOMEM_IF(col_str(r, st, 5, &row->feed) != PX_OK);
        NOMEM_IF(col_str(r, st, 6, &row->control_id) != PX_OK);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        e = ledger__db_error(&r->result, l->rdb, rc, "ledger unsettled read");
out_reset:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}

static void serve(ledger_t *l, ledger_read_t *r)
{
    read_clear(r);
    px_error_clear(&r->result);
    px_err e = PX_OK;
    switch (r->kind) {
    case LEDGER_READ_WINDOW:
        e = do_window(l, r);
        break;
    case LEDGER_READ_OUTBOX:
        e = do_outbox(l, r);
        break;
    case LEDGER_READ_UNSETTLED:
        e = do_unsettled(l, r);
        break;
    }
    if (e != PX_OK) {
        px_error saved = r->result;
        read_clear(r);
        r->result = saved;
    }
    atomic_fetch_add_explicit(&l->reads, 1, memory_order_relaxed);
}

static void checkpoint(ledger_t *l)
{
    /* SQLite never waits for the checkpoint lock: two checkpointers that overlap just fail.
     * So the reader steps aside while the writer's RESTART runs, and says when it is done. */
    pthread_mutex_lock(&l->mu);
    if (l->writer_checkpointing) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->reader_checkpointing = true;
    pthread_mutex_unlock(&l->mu);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(l->rdb, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    pthread_mutex_lock(&l->mu);
    l->reader_checkpointing = false;
    pthread_cond_broadcast(&l->writer_cv);
    l->checkpoint_mark = log > 0 ? (uint64_t)log : 0;
    pthread_mutex_unlock(&l->mu);
    if (rc == SQLITE_OK)
        atomic_fetch_add_explicit(&l->checkpoints, 1, memory_order_relaxed);
}

void *ledger__reader_main(void *arg)
{
    ledger_t *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->rqueue == NULL && !l->checkpoint_due && !l->closing)
            pthread_cond_wait(&l->reader_cv, &l->mu);
        if (l->rqueue != NULL) {
            ledger_read_t *r = l->rqueue;
            l->rqueue = r->next;
            if (l->rqueue == NULL)
                l->rqueue_tail = NULL;
            r->next = NULL;
            pthread_mutex_unlock(&l->mu);
            serve(l, r);
            pthread_mutex_lock(&l->mu);
            if (r->sync) {
                r->done = true;
                pthread_cond_broadcast(&l->done_cv);
                continue;
            }
            if (l->rcompleted_tail == NULL)
                l->rcompleted = r;
            else
                l->rcompleted_tail->next = r;
            l->rcompleted_tail = r;
            pthread_mutex_unlock(&l->mu);
            if (l->notify != NULL)
                l->notify(l->notify_arg);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        if (l->checkpoint_due) {
            l->checkpoint_due = false;
            pthread_mutex_unlock(&l->mu);
            checkpoint(l);
            pthread_mutex_lock(&l->mu);
            continue;
        }
        break; /* closing, nothing left to read */
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

void ledger_read_submit(ledger_t *l, ledger_read_t *r)
{
    r->next = NULL;
    r->sync = false;
    r->done = false;
    pthread_mutex_lock(&l->mu);
    if (l->rqueue_tail == NULL)
        l->rqueue = r;
    else
        l->rqueue_tail->next = r;
    l->rqueue_tail = r;
    pthread_cond_signal(&l->reader_cv);
    pthread_mutex_unlock(&l->mu);
}

ledger_read_t *ledger_take_completed_reads(ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    ledger_read_t *list = l->rcompleted;
    l->rcompleted = l->rcompleted_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    return list;
}

px_err ledger_read_run(ledger_t *l, ledger_read_t *r, px_error *err)
{
    r->next = NULL;
    r->sync = true;
    r->done = false;
    pthread_mutex_lock(&l->mu);
    if (l->rqueue_tail == NULL)
        l->rqueue = r;
    else
        l->rqueue_tail->next = r;
    l->rqueue_tail = r;
    pthread_cond_signal(&l->reader_cv);
    while (!r->done)
        pthread_cond_wait(&l->done_cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    r->sync = false;
    return ledger_read_result(r, err);
}
