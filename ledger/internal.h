/* Private to ledger/: the ledger object, ops, reads and the helpers the files share. */
#ifndef PX_LEDGER_INTERNAL_H
#define PX_LEDGER_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/msg.h"
#include "common/str.h"
#include "ledger/ledger.h"

/* The schema version this code writes (PRAGMA user_version). */
#define LEDGER_SCHEMA_VERSION 2

/* ---- ops ---- */

typedef enum rec_kind {
    REC_MESSAGE,
    REC_LEG,
    REC_SENDER_ACK,
    REC_OUTBOX,
    REC_DIVERGENCE,
    REC_RESOLUTION,
    REC_CONFIG_RELOAD,
    REC_AUDIT,
} rec_kind;

/* One record of an op: the public record copied, its px_str fields pointing into the
 * bytes allocated right after the node (one allocation per record). */
typedef struct ledger__rec {
    struct ledger__rec *next;
    rec_kind kind;
    union {
        struct {
            ledger_message_rec r;
            bool has_hash;
            unsigned char hash[LEDGER_HASH_LEN];
            px_str body; /* the bytes to store, inside r.body (a held reference) */
        } msg;
        ledger_leg_rec leg;
        ledger_sender_ack_rec ack;
        ledger_outbox_rec outbox;
        ledger_divergence_rec div;
        ledger_resolution_rec res;
        ledger_config_reload_rec reload;
        ledger_audit_rec audit;
    } u;
} ledger__rec;

struct ledger_op {
    ledger_op_t *next;
    void *user;
    ledger__rec *head;
    ledger__rec *tail;
    size_t n_messages;
    int64_t first_id; /* id of message 0, assigned at submit; 0 before */
    px_error result;
};

/* Resolves a record's message reference (an id or LEDGER_OP_MESSAGE(k)). */
int64_t ledger__op_resolve(const ledger_op_t *op, int64_t ref);

/* Drops the body references an op holds (the writer calls it once the group is done). */
void ledger__op_release_bodies(ledger_op_t *op);

/* ---- reads ---- */

/* Bytes copied out of SQLite for a read's rows: chunks that never move. */
typedef struct ledger__arena_chunk {
    struct ledger__arena_chunk *next;
    size_t used;
    size_t cap;
    char data[];
} ledger__arena_chunk;

struct ledger_read {
    ledger_read_t *next;
    void *user;
    ledger_read_kind kind;
    /* parameters */
    size_t per_feed;
    size_t max_scan;
    int64_t since_ms;
    ledger_leg_kind leg;
    int64_t after;
    size_t limit;
    bool bodies;
    /* results */
    px_error result;
    bool more;
    size_t count;
    size_t cap;
    void *rows; /* ledger_window_row / ledger_outbox_row / ledger_leg_row [cap] */
    ledger__arena_chunk *arena;
    /* ledger_read_run */
    bool sync;
    bool done;
};

/* Copies len bytes into r's arena; the view stays valid until the read is destroyed.
 * PX_ERR_NOMEM. */
px_err ledger__read_copy(ledger_read_t *r, const void *ptr, size_t len, px_str *out);

/* Makes room for one more row (zeroed) and returns it, or NULL when out of memory. */
void *ledger__read_push(ledger_read_t *r);

/* ---- latency histogram (µs), log-linear: 8 buckets per power of two ---- */

#define LEDGER_HIST_BUCKETS (8 * 40)

typedef struct ledger__hist {
    atomic_uint_fast64_t n[LEDGER_HIST_BUCKETS];
} ledger__hist;

void ledger__hist_add(ledger__hist *h, uint64_t us);
/* The upper bound of the bucket holding quantile q (0..1); 0 when empty. */
uint64_t ledger__hist_quantile(ledger__hist *h, double q);

/* ---- the ledger ---- */

/* The writer's prepared statements. */
typedef struct ledger__wstmts {
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *savepoint;
    sqlite3_stmt *release;
    sqlite3_stmt *rollback_to;
    sqlite3_stmt *ins_message;
    sqlite3_stmt *ins_body;
    sqlite3_stmt *upsert_leg;
    sqlite3_stmt *upsert_ack;
    sqlite3_stmt *ins_outbox;
    sqlite3_stmt *upd_outbox;
    sqlite3_stmt *del_outbox;
    sqlite3_stmt *ins_divergence;
    sqlite3_stmt *ins_resolution;
    sqlite3_stmt *ins_reload;
    sqlite3_stmt *ins_audit;
} ledger__wstmts;

/* The reader's prepared statements. */
typedef struct ledger__rstmts {
    sqlite3_stmt *window;
    sqlite3_stmt *outbox;
    sqlite3_stmt *outbox_bodies;
    sqlite3_stmt *unsettled;
} ledger__rstmts;

/* Invariants: every op is on exactly one of queue / (the writer's current group) /
 * completed, or owned by the caller; `submitted - completed` is the number of ops on queue
 * or in the writer's group. Reads likewise with rqueue / rcompleted. All lists and counts
 * are guarded by mu. */
struct ledger {
    char *path;
    char *instance_id;
    size_t checkpoint_bytes;
    uint64_t wal_bound_bytes; /* past this, the writer checkpoints too */
    size_t max_group;
    int page_size;
    void (*notify)(void *arg);
    void *notify_arg;

    sqlite3 *wdb; /* owned by the writer thread once it runs */
    ledger__wstmts ws;
    sqlite3 *rdb; /* owned by the reader thread once it runs */
    ledger__rstmts rs;

    pthread_t writer;
    pthread_t reader;
    bool writer_started;
    bool reader_started;

    pthread_mutex_t mu;
    pthread_cond_t writer_cv;  /* work for the writer, or closing */
    bool writer_waiting;       /* the writer sleeps on writer_cv (under mu) */
    bool reader_checkpointing; /* a PASSIVE checkpoint runs on the reader (under mu) */
    bool writer_checkpointing; /* a RESTART checkpoint runs on the writer (under mu) */
    pthread_cond_t reader_cv;  /* work for the reader, a checkpoint due, or closing */
    pthread_cond_t done_cv;    /* an op or a synchronous read completed */
    bool closing;
    ledger_op_t *queue, *queue_tail;
    ledger_op_t *completed, *completed_tail;
    uint64_t submitted;
    uint64_t completed_count;
    ledger_read_t *rqueue, *rqueue_tail;
    ledger_read_t *rcompleted, *rcompleted_tail;
    bool checkpoint_due;
    uint64_t checkpoint_mark; /* WAL frames at the last checkpoint */

    int64_t next_id; /* the last id assigned (guarded by mu) */

    /* figures */
    atomic_uint_fast64_t commits;
    atomic_uint_fast64_t commit_failures;
    atomic_uint_fast64_t ops_ok;
    atomic_uint_fast64_t ops_failed;
    atomic_uint_fast64_t last_group;
    atomic_uint_fast64_t max_group_seen;
    atomic_uint_fast64_t commit_us_sum;
    atomic_uint_fast64_t commit_max_us;
    atomic_uint_fast64_t wal_frames;
    atomic_uint_fast64_t checkpoints;
    atomic_uint_fast64_t reads;
    atomic_int_fast64_t last_id;
    uint64_t recovered_unknown;
    uint64_t recovered_pending;
    ledger__hist commit_hist;
};

/* files.c: checks and creates the directory and database file with private modes. */
px_err ledger__prepare_path(const char *path, px_error *err);
/* Verifies (and tightens) the modes of the database, -wal and -shm once SQLite made them. */
px_err ledger__fix_modes(const char *path, px_error *err);
/* Refuses a symlink or a missing file (for read-only opens). */
px_err ledger__check_existing(const char *path, px_error *err);

/* schema.c */
/* Applies the connection pragmas; page_size only takes effect on a new database. */
px_err ledger__configure(sqlite3 *db, bool writer, ledger_sync sync, int64_t journal_size_limit,
                         int busy_timeout_ms, px_error *err);
/* Refuses a newer schema and a database with tables but no version (not ours); *version
 * is the stored one. */
px_err ledger__schema_check(sqlite3 *db, int64_t *version, px_error *err);
/* Migrates the schema forward to LEDGER_SCHEMA_VERSION in one transaction. */
px_err ledger__migrate(sqlite3 *db, px_error *err);
/* Runs one SQL script (several statements) without results. */
px_err ledger__exec(sqlite3 *db, const char *sql, px_error *err);
/* Reads an integer from a one-row, one-column query. */
px_err ledger__query_int(sqlite3 *db, const char *sql, int64_t *out, px_error *err);
/* Prepares a persistent statement. */
px_err ledger__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, px_error *err);
/* Fills err from a SQLite failure: PX_ERR_DB, detail = extended code. Returns PX_ERR_DB. */
px_err ledger__db_error(px_error *err, sqlite3 *db, int rc, const char *what);
/* Binds a view as text (an empty view binds "", never NULL). */
int ledger__bind_str(sqlite3_stmt *st, int i, px_str s);
/* Binds a view as a blob, or NULL when empty. */
int ledger__bind_blob_or_null(sqlite3_stmt *st, int i, px_str s);

/* writer.c */
px_err ledger__writer_prepare(ledger_t *l, px_error *err);
void ledger__writer_finalize(ledger_t *l);
px_err ledger__recover(ledger_t *l, int64_t now_ms, px_error *err);
void *ledger__writer_main(void *arg);
void ledger__wal_hook_install(ledger_t *l);

/* reader.c */
px_err ledger__reader_prepare(ledger_t *l, px_error *err);
void ledger__reader_finalize(ledger_t *l);
void *ledger__reader_main(void *arg);

/* Monotonic clock in µs; wall clock in ms. */
uint64_t ledger__now_us(void);
int64_t ledger__wall_ms(void);

#endif
