/* The writer thread: one connection, one transaction per group of queued ops.
 *
 * It takes everything queued (up to max_group), runs BEGIN IMMEDIATE, each op under a
 * savepoint of its own, COMMIT; then moves the group to the completed list and calls
 * notify. A record that breaks a constraint (a divergence with invalid JSON, a leg for a
 * message that failed to store) fails its own op only. Anything else (disk full, I/O
 * error, a lock held past the busy timeout) rolls the whole group back: every op in it
 * completes with the error, and the next group starts afresh, so the ledger recovers
 * without a restart once the cause is gone (RELIABILITY B11, B12). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ledger/internal.h"

#define WS(name, sql)                                                                              \
    do {                                                                                           \
        px_err e_ = ledger__prepare(l->wdb, (sql), &l->ws.name, err);                              \
        if (e_ != PX_OK)                                                                           \
            return e_;                                                                             \
    } while (0)

px_err ledger__writer_prepare(ledger_t *l, px_error *err)
{
    WS(begin, "BEGIN IMMEDIATE");
    WS(commit, "COMMIT");
    WS(rollback, "ROLLBACK");
    WS(savepoint, "SAVEPOINT op");
    WS(release, "RELEASE op");
    WS(rollback_to, "ROLLBACK TO op");
    WS(ins_message,
       "INSERT INTO messages (id, received_at, feed, peer, sending_app, sending_facility,"
       " receiving_app, receiving_facility, type, trigger_event, control_id, version, hash,"
       " config_version, state, reason, instance)"
       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)");
    WS(ins_body, "INSERT INTO bodies (message, body) VALUES (?1, ?2)");
    WS(upsert_leg,
       "INSERT INTO legs (message, leg, state, attempts, ack_code, ack, http_status, error,"
       " latency_us, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
       " ON CONFLICT (message, leg) DO UPDATE SET state = excluded.state,"
       " attempts = excluded.attempts, ack_code = excluded.ack_code, ack = excluded.ack,"
       " http_status = excluded.http_status, error = excluded.error,"
       " latency_us = excluded.latency_us, updated_at = excluded.updated_at");
    WS(upsert_ack, "INSERT INTO sender_acks (message, code, ack, sent_at) VALUES (?1, ?2, ?3, ?4)"
                   " ON CONFLICT (message) DO UPDATE SET code = excluded.code,"
                   " ack = excluded.ack, sent_at = excluded.sent_at");
    WS(ins_outbox, "INSERT INTO outbox (leg, seq, message, ordering_key, attempts, queued_at,"
                   " next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    WS(upd_outbox, "UPDATE outbox SET attempts = ?1, next_attempt_at = ?2"
                   " WHERE leg = ?3 AND seq = ?4 AND message = ?5");
    WS(del_outbox, "DELETE FROM outbox WHERE leg = ?1 AND seq = ?2 AND message = ?3");
    WS(ins_divergence,
       "INSERT INTO divergences (message, kind, detail, detected_at) VALUES (?1, ?2, ?3, ?4)");
    WS(ins_resolution, "INSERT INTO resolutions (divergence, who, reason, note, resolved_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)");
    WS(ins_reload, "INSERT INTO config_reloads (version, hash, who, ok, reason, at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    WS(ins_audit, "INSERT INTO audit (at, actor, action, target, detail)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)");
    return PX_OK;
}

void ledger__writer_finalize(ledger_t *l)
{
    sqlite3_stmt **all = (sqlite3_stmt **)&l->ws;
    for (size_t i = 0; i < sizeof(l->ws) / sizeof(sqlite3_stmt *); i++) {
        sqlite3_finalize(all[i]);
        all[i] = NULL;
    }
}

/* Steps a statement that returns no rows and makes it ready for the next use. Returns a
 * SQLite code (SQLITE_OK on success); the error text is left on the connection. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        rc = SQLITE_OK;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* A never-NULL blob (empty when s is). */
static int bind_blob(sqlite3_stmt *st, int i, px_str s)
{
    if (s.ptr == NULL || s.len == 0)
        return sqlite3_bind_blob(st, i, "", 0, SQLITE_STATIC);
    return sqlite3_bind_blob64(st, i, s.ptr, s.len, SQLITE_STATIC);
}

/* Binding fails only for an oversized value or misuse; the first failure wins. */
#define B(call)                                                                                    \
    do {                                                                                           \
        if (rc == SQLITE_OK)                                                                       \
            rc = (call);                                                                           \
    } while (0)

static int bind_done(sqlite3_stmt *st, int rc)
{
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc;
    }
    return run(st);
}

static int write_message(ledger_t *l, const ledger_op_t *op, size_t k, const ledger__rec *r)
{
    const ledger_message_rec *m = &r->u.msg.r;
    int64_t id = op->first_id + (int64_t)k;
    sqlite3_stmt *st = l->ws.ins_message;
    int rc = SQLITE_OK;
    B(sqlite3_bind_int64(st, 1, id));
    B(sqlite3_bind_int64(st, 2, m->received_at_ms));
    B(ledger__bind_str(st, 3, m->feed));
    B(ledger__bind_str(st, 4, m->peer));
    B(ledger__bind_str(st, 5, m->sending_app));
    B(ledger__bind_str(st, 6, m->sending_facility));
    B(ledger__bind_str(st, 7, m->receiving_app));
    B(ledger__bind_str(st, 8, m->receiving_facility));
    B(ledger__bind_str(st, 9, m->type));
    B(ledger__bind_str(st, 10, m->trigger));
    B(ledger__bind_str(st, 11, m->control_id));
    B(ledger__bind_str(st, 12, m->version));
    if (r->u.msg.has_hash)
        B(sqlite3_bind_blob(st, 13, r->u.msg.hash, LEDGER_HASH_LEN, SQLITE_STATIC));
    B(sqlite3_bind_int64(st, 14, m->config_version));
    B(sqlite3_bind_text(st, 15, ledger_msg_state_name(m->state), -1, SQLITE_STATIC));
    B(ledger__bind_str(st, 16, m->reason));
    B(sqlite3_bind_text(st, 17, l->instance_id, -1, SQLITE_STATIC));
    rc = bind_done(st, rc);
    if (rc != SQLITE_OK || m->body == NULL)
        return rc;
    st = l->ws.ins_body;
    B(sqlite3_bind_int64(st, 1, id));
    B(bind_blob(st, 2, r->u.msg.body));
    return bind_done(st, rc);
}

static int write_record(ledger_t *l, const ledger_op_t *op, const ledger__rec *r, size_t *msg_k)
{
    sqlite3_stmt *st;
    int rc = SQLITE_OK;
    switch (r->kind) {
    case REC_MESSAGE:
        return write_message(l, op, (*msg_k)++, r);
    case REC_LEG: {
        const ledger_leg_rec *g = &r->u.leg;
        st = l->ws.upsert_leg;
        B(sqlite3_bind_int64(st, 1, ledger__op_resolve(op, g->message)));
        B(sqlite3_bind_text(st, 2, ledger_leg_kind_name(g->leg), -1, SQLITE_STATIC));
        B(sqlite3_bind_text(st, 3, ledger_leg_state_name(g->state), -1, SQLITE_STATIC));
        B(sqlite3_bind_int(st, 4, g->attempts));
        B(ledger__bind_str(st, 5, g->ack_code));
        B(ledger__bind_blob_or_null(st, 6, g->ack));
        B(sqlite3_bind_int(st, 7, g->http_status));
        B(ledger__bind_str(st, 8, g->error));
        B(sqlite3_bind_int64(st, 9, g->latency_us));
        B(sqlite3_bind_int64(st, 10, g->updated_at_ms));
        return bind_done(st, rc);
    }
    case REC_SENDER_ACK: {
        const ledger_sender_ack_rec *a = &r->u.ack;
        st = l->ws.upsert_ack;
        B(sqlite3_bind_int64(st, 1, ledger__op_resolve(op, a->message)));
        B(ledger__bind_str(st, 2, a->code));
        B(bind_blob(st, 3, a->bytes));
        B(sqlite3_bind_int64(st, 4, a->sent_at_ms));
        return bind_done(st, rc);
    }
    case REC_OUTBOX: {
        const ledger_outbox_rec *o = &r->u.outbox;
        int64_t message = ledger__op_resolve(op, o->message);
        int64_t seq = o->seq != 0 ? o->seq : message;
        const char *leg = ledger_leg_kind_name(o->leg);
        switch (o->action) {
        case LEDGER_OUTBOX_INSERT:
            st = l->ws.ins_outbox;
            B(sqlite3_bind_text(st, 1, leg, -1, SQLITE_STATIC));
            B(sqlite3_bind_int64(st, 2, seq));
            B(sqlite3_bind_int64(st, 3, message));
            B(ledger__bind_str(st, 4, o->key));
            B(sqlite3_bind_int(st, 5, o->attempts));
            B(sqlite3_bind_int64(st, 6, o->at_ms));
            B(sqlite3_bind_int64(st, 7, o->next_attempt_ms));
            return bind_done(st, rc);
        case LEDGER_OUTBOX_UPDATE:
            st = l->ws.upd_outbox;
            B(sqlite3_bind_int(st, 1, o->attempts));
            B(sqlite3_bind_int64(st, 2, o->next_attempt_ms));
            B(sqlite3_bind_text(st, 3, leg, -1, SQLITE_STATIC));
            B(sqlite3_bind_int64(st, 4, seq));
            B(sqlite3_bind_int64(st, 5, message));
            return bind_done(st, rc);
        case LEDGER_OUTBOX_DELETE:
            st = l->ws.del_outbox;
            B(sqlite3_bind_text(st, 1, leg, -1, SQLITE_STATIC));
            B(sqlite3_bind_int64(st, 2, seq));
            B(sqlite3_bind_int64(st, 3, message));
            return bind_done(st, rc);
        }
        return SQLITE_MISUSE;
    }
    case REC_DIVERGENCE: {
        const ledger_divergence_rec *d = &r->u.div;
        st = l->ws.ins_divergence;
        B(sqlite3_bind_int64(st, 1, ledger__op_resolve(op, d->message)));
        B(sqlite3_bind_text(st, 2, ledger_divergence_kind_name(d->kind), -1, SQLITE_STATIC));
        B(ledger__bind_str(st, 3, px_str_empty(d->detail) ? PX_LIT("{}") : d->detail));
        B(sqlite3_bind_int64(st, 4, d->at_ms));
        return bind_done(st, rc);
    }
    case REC_RESOLUTION: {
        const ledger_resolution_rec *s = &r->u.res;
        st = l->ws.ins_resolution;
        B(sqlite3_bind_int64(st, 1, s->divergence));
        B(ledger__bind_str(st, 2, s->who));
        B(ledger__bind_str(st, 3, s->reason));
        B(ledger__bind_str(st, 4, s->note));
        B(sqlite3_bind_int64(st, 5, s->at_ms));
        return bind_done(st, rc);
    }
    case REC_CONFIG_RELOAD: {
        const ledger_config_reload_rec *c = &r->u.reload;
        st = l->ws.ins_reload;
        B(sqlite3_bind_int64(st, 1, c->version));
        B(ledger__bind_str(st, 2, c->hash));
        B(ledger__bind_str(st, 3, c->who));
        B(sqlite3_bind_int(st, 4, c->ok ? 1 : 0));
        B(ledger__bind_str(st, 5, c->reason));
        B(sqlite3_bind_int64(st, 6, c->at_ms));
        return bind_done(st, rc);
    }
    case REC_AUDIT: {
        const ledger_audit_rec *a = &r->u.audit;
        st = l->ws.ins_audit;
        B(sqlite3_bind_int64(st, 1, a->at_ms));
        B(ledger__bind_str(st, 2, a->actor));
        B(ledger__bind_str(st, 3, a->action));
        B(ledger__bind_str(st, 4, a->target));
        B(ledger__bind_str(st, 5, a->detail));
        return bind_done(st, rc);
    }
    }
    return SQLITE_MISUSE;
}

/* Errors that belong to one op's data rather than to the database or the disk. */
static bool op_local(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return true;
    default:
        return false;
    }
}

static void set_db_error(px_error *out, sqlite3 *db, int rc, const char *what)
{
    ledger__db_error(out, db, rc, what);
}

typedef enum group_outcome {
    GROUP_COMMITTED,
    GROUP_FAILED, /* rolled back; every op carries the group's error */
    GROUP_RETRY,  /* an op broke a constraint on the fast path; nothing was written */
} group_outcome;

/* Writes one group in one transaction and sets every op's result.
 *
 * A savepoint per op costs about a third of the throughput (SQLite copies each page an op
 * first touches into a statement journal), and an op that breaks a constraint is a bug or
 * bad input, so the fast path runs without savepoints and gives up with GROUP_RETRY at
 * the first such op; the caller then runs the group again with a savepoint per op, where
 * that op fails alone and the others are committed. */
static group_outcome run_group(ledger_t *l, ledger_op_t *head, bool savepoints)
{
    sqlite3 *db = l->wdb;
    px_error group_err;
    px_error_clear(&group_err);
    int rc = run(l->ws.begin);
    if (rc != SQLITE_OK) {
        set_db_error(&group_err, db, rc, "ledger write failed to start a transaction");
        goto out_fail;
    }
    for (ledger_op_t *op = head; op != NULL; op = op->next) {
        px_error_clear(&op->result);
        if (savepoints) {
            rc = run(l->ws.savepoint);
            if (rc != SQLITE_OK) {
                set_db_error(&group_err, db, rc, "ledger write failed");
                goto out_rollback;
            }
        }
        size_t k = 0;
        for (const ledger__rec *r = op->head; r != NULL && rc == SQLITE_OK; r = r->next)
            rc = write_record(l, op, r, &k);
        if (rc != SQLITE_OK && op_local(rc)) {
            if (!savepoints) {
                if (!sqlite3_get_autocommit(db))
                    run(l->ws.rollback);
                return GROUP_RETRY;
            }
            set_db_error(&op->result, db, rc, "ledger record refused");
            int rc2 = run(l->ws.rollback_to);
            if (rc2 == SQLITE_OK)
                rc2 = run(l->ws.release);
            if (rc2 != SQLITE_OK) {
                set_db_error(&group_err, db, rc2, "ledger write failed");
                goto out_rollback;
            }
            rc = SQLITE_OK;
            continue;
        }
        if (rc != SQLITE_OK) {
            set_db_error(&group_err, db, rc, "ledger write failed");
            goto out_rollback;
        }
        if (savepoints) {
            rc = run(l->ws.release);
            if (rc != SQLITE_OK) {
                set_db_error(&group_err, db, rc, "ledger write failed");
                goto out_rollback;
            }
        }
    }
    rc = run(l->ws.commit);
    if (rc != SQLITE_OK) {
        set_db_error(&group_err, db, rc, "ledger commit failed");
        goto out_rollback;
    }
    return GROUP_COMMITTED;

out_rollback:
    /* SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR …). */
    if (!sqlite3_get_autocommit(db))
        run(l->ws.rollback);
out_fail:
    for (ledger_op_t *op = head; op != NULL; op = op->next)
        op->result = group_err;
    return GROUP_FAILED;
}

static void note_commit(ledger_t *l, uint64_t n, uint64_t us, bool ok)
{
    atomic_store_explicit(&l->last_group, n, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&l->max_group_seen, memory_order_relaxed);
    if (n > max)
        atomic_store_explicit(&l->max_group_seen, n, memory_order_relaxed);
    if (!ok) {
        atomic_fetch_add_explicit(&l->commit_failures, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&l->commits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->commit_us_sum, us, memory_order_relaxed);
    ledger__hist_add(&l->commit_hist, us);
    uint64_t m = atomic_load_explicit(&l->commit_max_us, memory_order_relaxed);
    if (us > m)
        atomic_store_explicit(&l->commit_max_us, us, memory_order_relaxed);
}

/* The reader's PASSIVE checkpoints never wait for the writer, so under a steady stream of
 * commits they may never catch up with it, and the WAL is only reset (and truncated to
 * journal_size_limit) when a checkpoint has copied every frame before the next write
 * transaction starts. Past wal_bound_bytes the writer itself runs a PASSIVE checkpoint
 * between groups, after the finished group was handed back: it only copies the frames
 * written since the reader's last checkpoint, and it never waits for readers (a reader
 * that still needs old frames just makes it stop early; the next group tries again). */
static void catch_up(ledger_t *l)
{
    uint64_t frames = atomic_load_explicit(&l->wal_frames, memory_order_relaxed);
    uint64_t bytes = frames * (24 + (uint64_t)l->page_size);
    if (bytes < l->wal_bound_bytes)
        return;
    /* Two PASSIVE checkpointers (this one and the reader's) can keep missing each other on
     * a busy machine, and then the WAL is never reset. Past twice the bound the writer waits
     * (busy timeout) for a RESTART checkpoint, after which the next transaction rewinds the
     * WAL to its start. */
    int mode =
        bytes >= 2 * l->wal_bound_bytes ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE;
    if (mode == SQLITE_CHECKPOINT_RESTART) {
        pthread_mutex_lock(&l->mu);
        while (l->reader_checkpointing)
            pthread_cond_wait(&l->writer_cv, &l->mu);
        l->writer_checkpointing = true;
        pthread_mutex_unlock(&l->mu);
    }
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(l->wdb, "main", mode, &log, &done);
    if (mode == SQLITE_CHECKPOINT_RESTART) {
        pthread_mutex_lock(&l->mu);
        l->writer_checkpointing = false;
        pthread_mutex_unlock(&l->mu);
    }
    if (rc == SQLITE_OK)
        atomic_fetch_add_explicit(&l->checkpoints, 1, memory_order_relaxed);
}

void *ledger__writer_main(void *arg)
{
    ledger_t *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->queue == NULL && !l->closing) {
            l->writer_waiting = true;
            pthread_cond_wait(&l->writer_cv, &l->mu);
            l->writer_waiting = false;
        }
        if (l->queue == NULL)
            break; /* closing and everything written */
        ledger_op_t *head = l->queue, *tail = head;
        uint64_t n = 1;
        while (tail->next != NULL && n < l->max_group) {
            tail = tail->next;
            n++;
        }
        l->queue = tail->next;
        if (l->queue == NULL)
            l->queue_tail = NULL;
        tail->next = NULL;
        pthread_mutex_unlock(&l->mu);

        uint64_t t0 = ledger__now_us();
        group_outcome outcome = run_group(l, head, false);
        if (outcome == GROUP_RETRY)
            outcome = run_group(l, head, true);
        bool ok = outcome == GROUP_COMMITTED;
        uint64_t us = ledger__now_us() - t0;
        uint64_t good = 0;
        for (ledger_op_t *op = head; op != NULL; op = op->next) {
            ledger__op_release_bodies(op);
            good += op->result.code == PX_OK;
        }
        note_commit(l, n, us, ok);
        atomic_fetch_add_explicit(&l->ops_ok, good, memory_order_relaxed);
        atomic_fetch_add_explicit(&l->ops_failed, n - good, memory_order_relaxed);

        pthread_mutex_lock(&l->mu);
        if (l->completed_tail == NULL)
            l->completed = head;
        else
            l->completed_tail->next = head;
        l->completed_tail = tail;
        l->completed_count += n;
        pthread_cond_broadcast(&l->done_cv);
        pthread_mutex_unlock(&l->mu);
        if (l->notify != NULL)
            l->notify(l->notify_arg);
        catch_up(l);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Runs on the writer's connection after each commit, with the WAL's frame count. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ledger_t *l = arg;
    uint64_t f = frames > 0 ? (uint64_t)frames : 0;
    atomic_store_explicit(&l->wal_frames, f, memory_order_relaxed);
    uint64_t threshold = l->checkpoint_bytes / (uint64_t)l->page_size;
    if (threshold == 0)
        threshold = 1;
    pthread_mutex_lock(&l->mu);
    uint64_t mark = l->checkpoint_mark;
    if (f < mark)
        mark = 0; /* the WAL was reset since the last checkpoint */
    if (f - mark >= threshold && !l->checkpoint_due) {
        l->checkpoint_due = true;
        pthread_cond_signal(&l->reader_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return SQLITE_OK;
}

void ledger__wal_hook_install(ledger_t *l)
{
    sqlite3_wal_hook(l->wdb, wal_hook, l);
}

static px_err run_changes(sqlite3 *db, const char *sql, int64_t now_ms, uint64_t *changes,
                          px_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return ledger__db_error(err, db, rc, "ledger recovery");
    sqlite3_bind_int64(st, 1, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ledger__db_error(err, db, rc, "ledger recovery");
    if (changes != NULL)
        *changes = (uint64_t)sqlite3_changes64(db);
    return PX_OK;
}

px_err ledger__recover(ledger_t *l, int64_t now_ms, px_error *err)
{
    sqlite3 *db = l->wdb;
    px_err e = ledger__exec(db, "BEGIN IMMEDIATE", err);
    if (e != PX_OK)
        return e;
    /* A legacy message in flight at the crash may or may not have been filed by the EHR:
     * resending could duplicate it, so it is marked unknown for review. */
    e = run_changes(db,
                    "INSERT INTO divergences (message, kind, detail, detected_at)"
                    " SELECT message, 'unknown_outcome',"
                    " json_object('leg', 'legacy', 'reason', 'in flight at restart'), ?1"
                    " FROM legs WHERE leg = 'legacy' AND state = 'in_flight'",
                    now_ms, NULL, err);
    if (e == PX_OK)
        e = run_changes(db,
                        "UPDATE legs SET state = 'unknown', error = 'in flight at restart',"
                        " updated_at = ?1 WHERE leg = 'legacy' AND state = 'in_flight'",
                        now_ms, &l->recovered_unknown, err);
    if (e == PX_OK)
        e = run_changes(db,
                        "UPDATE legs SET state = 'pending', updated_at = ?1"
                        " WHERE leg = 'fhir' AND state = 'in_flight'",
                        now_ms, &l->recovered_pending, err);
    if (e == PX_OK)
        e = ledger__exec(db, "COMMIT", err);
    if (e != PX_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return e;
}
