/* The ledger: every message, both leg outcomes, the sender's ACK, the outbox, divergences,
 * config reloads and audit rows, in one SQLite file.
 *
 * Threads. ledger_open starts two threads, each with its own connection:
 * - the writer owns the only writing connection. The loop thread builds an operation
 *   (ledger_op_t: one inbound message and everything that goes with it), hands it over
 *   with ledger_submit (which never blocks beyond a mutex) and carries on. The writer takes
 *   everything queued, runs one BEGIN IMMEDIATE … COMMIT for the group as soon as it is
 *   idle, moves the ops to the completed list with their results and calls opt->notify.
 *   The loop drains that list with ledger_take_completed.
 * - the reader serves the loop's reads (retransmission window refill, outbox pages,
 *   unsettled legs) the same way: ledger_read_submit → completed list → notify →
 *   ledger_take_completed_reads. It also runs PASSIVE checkpoints every few MB of WAL.
 *
 * No function here blocks on I/O except ledger_open, ledger_close, ledger_flush and
 * ledger_read_run; those must not be called from an event-loop thread that has work to
 * do. Every other function is safe to call from one thread at a time per object; the
 * ledger_t functions may be called from any thread.
 *
 * Message ids are assigned at submit time from an in-memory counter (initialised at open
 * from the largest stored id), so the loop can refer to a message before it is durable.
 * Ids are strictly increasing in submit order. An id whose op failed is never reused. */
#ifndef PX_LEDGER_LEDGER_H
#define PX_LEDGER_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/msg.h"
#include "common/str.h"

typedef struct ledger ledger_t;
typedef struct ledger_op ledger_op_t;
typedef struct ledger_read ledger_read_t;

/* Length of the message hash (SHA-256 of the message without MSH-7). */
#define LEDGER_HASH_LEN 32

/* ---- Stable vocabularies (stored as these strings; reviewers filter on them) ---- */

typedef enum ledger_msg_state {
    LEDGER_MSG_RECEIVED, /* "received": accepted for delivery */
    LEDGER_MSG_REJECTED, /* "rejected": refused (framing, MSH-10, config) or a failed write */
    LEDGER_MSG_FILTERED, /* "filtered": dropped by a feed filter, on purpose */
} ledger_msg_state;

typedef enum ledger_leg_kind {
    LEDGER_LEG_LEGACY, /* "legacy": the configured MLLP upstream */
    LEDGER_LEG_FHIR,   /* "fhir" */
} ledger_leg_kind;

typedef enum ledger_leg_state {
    LEDGER_LEG_PENDING,     /* "pending" */
    LEDGER_LEG_IN_FLIGHT,   /* "in_flight" */
    LEDGER_LEG_DELIVERED,   /* "delivered" (final) */
    LEDGER_LEG_REJECTED,    /* "rejected" (final) */
    LEDGER_LEG_FAILED,      /* "failed": failed for good (final) */
    LEDGER_LEG_UNKNOWN,     /* "unknown": outcome cannot be known, for review (final) */
    LEDGER_LEG_DEAD_LETTER, /* "dead_letter" (final) */
    LEDGER_LEG_SKIPPED,     /* "skipped": the route does not feed this leg (final) */
    LEDGER_LEG_HELD,        /* "held": waiting behind a blocked ordering key */
} ledger_leg_state;

typedef enum ledger_divergence_kind {
    LEDGER_DIV_OUTCOME_MISMATCH, /* "outcome_mismatch" */
    LEDGER_DIV_ONE_SIDE_FAILED,  /* "one_side_failed" */
    LEDGER_DIV_UNKNOWN_OUTCOME,  /* "unknown_outcome" */
    LEDGER_DIV_CONVERSION_GAP,   /* "conversion_gap" */
    LEDGER_DIV_FIELD_MISMATCH,   /* "field_mismatch" */
    LEDGER_DIV_ACK_ANOMALY,      /* "ack_anomaly" */
    LEDGER_DIV_DUPLICATE,        /* "duplicate" */
} ledger_divergence_kind;

#define LEDGER_DIV_KIND_COUNT 7

/* The stored names above; never NULL ("?" for an out-of-range value). */
const char *ledger_msg_state_name(ledger_msg_state s);
const char *ledger_leg_kind_name(ledger_leg_kind k);
const char *ledger_leg_state_name(ledger_leg_state s);
const char *ledger_divergence_kind_name(ledger_divergence_kind k);

/* Parse a stored name back (exact, case-sensitive). PX_ERR_INVAL for anything else. */
px_err ledger_leg_kind_parse(px_str s, ledger_leg_kind *out);
px_err ledger_leg_state_parse(px_str s, ledger_leg_state *out);
px_err ledger_divergence_kind_parse(px_str s, ledger_divergence_kind *out);

/* True for delivered, rejected, failed, unknown, dead_letter and skipped. */
bool ledger_leg_state_is_final(ledger_leg_state s);

/* ---- Opening and closing ---- */

typedef enum ledger_sync {
    LEDGER_SYNC_FULL = 0, /* default: a commit survives power loss */
    LEDGER_SYNC_NORMAL,   /* faster; a power cut may roll back the last commits */
} ledger_sync;

/* Options for ledger_open. Start from ledger_options_init and set what you need. All
 * pointers are borrowed for the duration of ledger_open only (strings are copied). */
typedef struct ledger_options {
    const char *path;           /* the database file; required */
    ledger_sync synchronous;    /* default LEDGER_SYNC_FULL */
    int64_t journal_size_limit; /* bytes the WAL is truncated to after a reset; default 64 MiB */
    int busy_timeout_ms;        /* how long a write waits for another connection's lock;
                                   default 5000 */
    const char *instance_id;    /* stored on every message row; default "" */
    size_t checkpoint_bytes;    /* the reader checkpoints when the WAL grows past this;
                                   default 4 MiB */
    size_t max_group;           /* most ops per transaction; default 4096 */
    /* At open, before the threads start, in one transaction: legacy legs left in_flight
     * become unknown (with an unknown_outcome divergence each: the EHR may have filed the
     * message) and fhir legs left in_flight become pending (FHIR writes are idempotent).
     * Only the process that serves the feeds sets this. Default false. */
    bool recover_in_flight;
    /* Called by the writer and reader threads after they moved finished work to a
     * completed list (the proxy passes a function that calls uv_async_send). Several
     * completions may share one call; it may be called until ledger_close returns. Must be
     * thread-safe and must not call back into the ledger. May be NULL. */
    void (*notify)(void *arg);
    void *notify_arg;
} ledger_options;

void ledger_options_init(ledger_options *opt);

/* Opens (creating if needed) the ledger at opt->path and starts its threads.
 *
 * The parent directory is created 0700 when missing; the database, -wal and -shm files
 * are created 0600 whatever the umask. Refuses (PX_ERR_INVAL, naming the path) a path
 * that is a symlink, an existing database, -wal or -shm readable or writable by others,
 * and an existing directory writable by others. Applies the pragmas (page_size 16384 on a
 * new file, WAL, wal_autocheckpoint=0, synchronous, foreign_keys, busy timeout) and
 * migrates the schema forward (PRAGMA user_version; every existing row is kept). A
 * database from a newer version of parallax is refused (PX_ERR_DB).
 *
 * On success *out is owned by the caller (ledger_close). Returns PX_ERR_INVAL, PX_ERR_IO,
 * PX_ERR_DB or PX_ERR_NOMEM. */
px_err ledger_open(const ledger_options *opt, ledger_t **out, px_error *err);

/* Commits every op submitted so far, finishes every read, joins the threads and frees the
 * ledger. Ops and reads still on the completed lists are destroyed (take them first with
 * ledger_flush + ledger_take_completed if their results matter). NULL is a no-op. */
void ledger_close(ledger_t *l);

/* Blocks until every op submitted before the call has completed (is on the completed
 * list or was taken). */
void ledger_flush(ledger_t *l);

/* ---- Write operations ----
 *
 * An op is a list of records written together in the writer's transaction (under a
 * savepoint of its own: a record that breaks a constraint fails its op only; an I/O,
 * lock or full-disk error fails the whole group). Build it on any thread, submit it once.
 * All record fields are copied when added (px_str views may die after the call); a body
 * is held by a px_msg_t reference that the writer drops once the group is done. */

/* Refers to the k-th message added to the same op (k from 0), before its id is known. */
#define LEDGER_OP_MESSAGE(k) (-(int64_t)(k)-1)

typedef struct ledger_message_rec {
    int64_t received_at_ms;
    px_str feed;               /* listener / feed name */
    px_str peer;               /* peer identity: address or TLS subject */
    px_str sending_app;        /* MSH-3 */
    px_str sending_facility;   /* MSH-4 */
    px_str receiving_app;      /* MSH-5 */
    px_str receiving_facility; /* MSH-6 */
    px_str type;               /* MSH-9.1 */
    px_str trigger;            /* MSH-9.2 */
    px_str control_id;         /* MSH-10 */
    px_str version;            /* MSH-12 */
    const unsigned char *hash; /* LEDGER_HASH_LEN bytes, or NULL when not computed */
    int64_t config_version;
    ledger_msg_state state;
    px_str reason;    /* why it was refused or filtered (no PHI); empty otherwise */
    px_msg_t *body;   /* borrowed; the op takes its own reference. NULL: no body */
    px_str body_part; /* the bytes to store, inside body (a message of a batch);
                         PX_STR_NULL: all of body */
} ledger_message_rec;

/* Creates or replaces the leg row (message, leg). */
typedef struct ledger_leg_rec {
    int64_t message; /* an id, or LEDGER_OP_MESSAGE(k) */
    ledger_leg_kind leg;
    ledger_leg_state state;
    int attempts;
    px_str ack_code;    /* the upstream's MSA-1 (legacy) or empty */
    px_str ack;         /* the upstream's ACK bytes (legacy) or empty */
    int http_status;    /* fhir; 0 when none */
    px_str error;       /* error text (no PHI) or empty */
    int64_t latency_us; /* -1 when not measured */
    int64_t updated_at_ms;
} ledger_leg_rec;

/* The ACK returned to the sender (replaces an earlier one for the same message). */
typedef struct ledger_sender_ack_rec {
    int64_t message;
    px_str code;  /* MSA-1: AA, AE, AR, CA, CE, CR */
    px_str bytes; /* the exact ACK bytes sent (without MLLP framing) */
    int64_t sent_at_ms;
} ledger_sender_ack_rec;

typedef enum ledger_outbox_action {
    LEDGER_OUTBOX_INSERT, /* queue (message, leg) at seq */
    LEDGER_OUTBOX_UPDATE, /* set attempts and next_attempt_ms of (leg, seq) */
    LEDGER_OUTBOX_DELETE, /* settled: remove (leg, seq) */
} ledger_outbox_action;

/* An outbox row is identified by (leg, seq); seq 0 means "the message id", which is what
 * an insert normally uses (so outbox order is arrival order). Update and delete also check
 * the message; touching a row that does not exist is not an error. */
typedef struct ledger_outbox_rec {
    ledger_outbox_action action;
    int64_t message;
    ledger_leg_kind leg;
    int64_t seq;
    px_str key; /* ordering key (insert only) */
    int attempts;
    int64_t next_attempt_ms;
    int64_t at_ms; /* when queued (insert only) */
} ledger_outbox_rec;

typedef struct ledger_divergence_rec {
    int64_t message;
    ledger_divergence_kind kind;
    px_str detail; /* a JSON object as text; must be valid JSON (checked by the database) */
    int64_t at_ms;
} ledger_divergence_rec;

/* An append-only resolution of a divergence (its state is the latest one). */
typedef struct ledger_resolution_rec {
    int64_t divergence;
    px_str who;
    px_str reason; /* reason code */
    px_str note;
    int64_t at_ms;
} ledger_resolution_rec;

typedef struct ledger_config_reload_rec {
    int64_t version;
    px_str hash; /* hex digest of the config file */
    px_str who;
    bool ok;
    px_str reason; /* why it was refused, or what only a restart applies; else empty */
    int64_t at_ms;
} ledger_config_reload_rec;

typedef struct ledger_audit_rec {
    int64_t at_ms;
    px_str actor;
    px_str action; /* "show", "export", "resolve", "reload", … */
    px_str target; /* what was touched: "message:42", "divergence:7" */
    px_str detail; /* free text (no PHI) */
} ledger_audit_rec;

/* Creates an empty op. user is an opaque pointer handed back with the result. Returns
 * PX_ERR_NOMEM. The op is owned by the caller until ledger_submit. */
px_err ledger_op_create(void *user, ledger_op_t **out, px_error *err);

/* Frees an op that was never submitted, or one taken from the completed list. Drops the
 * body references it still holds. NULL is a no-op. */
void ledger_op_destroy(ledger_op_t *op);

/* Append one record. On failure (PX_ERR_NOMEM, PX_ERR_INVAL for an out-of-range enum or
 * a LEDGER_OP_MESSAGE reference to a message not yet added) the op is unchanged.
 * ledger_op_add_message sets *ref (may be NULL) to LEDGER_OP_MESSAGE(k) for later
 * records of the same op. */
px_err ledger_op_add_message(ledger_op_t *op, const ledger_message_rec *rec, int64_t *ref,
                             px_error *err);
px_err ledger_op_add_leg(ledger_op_t *op, const ledger_leg_rec *rec, px_error *err);
px_err ledger_op_add_sender_ack(ledger_op_t *op, const ledger_sender_ack_rec *rec, px_error *err);
px_err ledger_op_add_outbox(ledger_op_t *op, const ledger_outbox_rec *rec, px_error *err);
px_err ledger_op_add_divergence(ledger_op_t *op, const ledger_divergence_rec *rec, px_error *err);
px_err ledger_op_add_resolution(ledger_op_t *op, const ledger_resolution_rec *rec, px_error *err);
px_err ledger_op_add_config_reload(ledger_op_t *op, const ledger_config_reload_rec *rec,
                                   px_error *err);
px_err ledger_op_add_audit(ledger_op_t *op, const ledger_audit_rec *rec, px_error *err);

/* Hands op to the writer (ownership passes to the ledger until it comes back through
 * ledger_take_completed). Assigns the ids of the op's messages and returns the first one
 * (0 when the op has none). Never blocks beyond a mutex; never fails (a write failure
 * is the op's result). Must not be called after ledger_close started. */
int64_t ledger_submit(ledger_t *l, ledger_op_t *op);

/* Takes every completed op, in submit order, as a list linked by ledger_op_next (NULL
 * when none). The caller owns them and destroys each with ledger_op_destroy. */
ledger_op_t *ledger_take_completed(ledger_t *l);

/* Accessors, valid on a completed op (ledger_op_user and ledger_op_message_id also after
 * submit, from the submitting thread). */
ledger_op_t *ledger_op_next(const ledger_op_t *op);
void *ledger_op_user(const ledger_op_t *op);
/* The id of the k-th message added to op (0 when k is out of range or not yet submitted). */
int64_t ledger_op_message_id(const ledger_op_t *op, size_t k);
/* PX_OK when the op is durable; otherwise the failure (PX_ERR_DB with the SQLite extended
 * result code in detail, PX_ERR_CLOSED) copied into *out (may be NULL). */
px_err ledger_op_result(const ledger_op_t *op, px_error *out);

/* ---- Reads served by the reader thread ----
 *
 * Create a read, submit it (or run it synchronously before the event loop starts), take
 * it back from the completed list, look at its rows, destroy it. Row views (px_str) point
 * into memory owned by the read and are valid until ledger_read_destroy. */

typedef enum ledger_read_kind {
    LEDGER_READ_WINDOW,
    LEDGER_READ_OUTBOX,
    LEDGER_READ_UNSETTLED,
} ledger_read_kind;

/* Retransmission window refill: the newest messages (newest first), at most per_feed of
 * each feed, looking at no more than max_scan of the newest messages overall and none
 * received before since_ms (0: no bound). Includes the sender ACK when one is stored. */
typedef struct ledger_window_row {
    int64_t message;
    int64_t received_at_ms;
    px_str feed;
    px_str sending_app;
    px_str sending_facility;
    px_str control_id;
    bool has_hash;
    unsigned char hash[LEDGER_HASH_LEN];
    bool has_ack;
    px_str ack_code;
    px_str ack; /* the exact bytes returned to the sender */
} ledger_window_row;

/* One outbox row with what delivery needs of its message. */
typedef struct ledger_outbox_row {
    int64_t seq;
    int64_t message;
    ledger_leg_kind leg;
    px_str key;
    int attempts;
    int64_t next_attempt_ms;
    int64_t received_at_ms;
    px_str feed;
    px_str type;
    px_str trigger;
    px_str control_id;
    int64_t config_version;
    px_msg_t *body; /* owned by the read (px_msg_ref to keep it); NULL unless bodies were
                       asked for or when the message has none */
} ledger_outbox_row;

/* A leg that is not in a final state (pending, in_flight, held). */
typedef struct ledger_leg_row {
    int64_t message;
    ledger_leg_kind leg;
    ledger_leg_state state;
    int attempts;
    int64_t updated_at_ms;
    px_str feed;
    px_str control_id;
} ledger_leg_row;

/* Most rows one page holds, and most body bytes (a page stops early, after at least one
 * row, once its bodies reach this). */
#define LEDGER_PAGE_MAX_ROWS  4096
#define LEDGER_PAGE_MAX_BYTES (16u * 1024 * 1024)

/* Create reads. user is handed back. PX_ERR_NOMEM, PX_ERR_INVAL (zero counts). */
px_err ledger_read_window(size_t per_feed, size_t max_scan, int64_t since_ms, void *user,
                          ledger_read_t **out, px_error *err);
/* Outbox rows of leg with seq > after_seq, in seq order, at most limit (capped at
 * LEDGER_PAGE_MAX_ROWS). Continue from the last row's seq while ledger_read_more says so. */
px_err ledger_read_outbox(ledger_leg_kind leg, int64_t after_seq, size_t limit, bool bodies,
                          void *user, ledger_read_t **out, px_error *err);
/* Unsettled legs with message > after_message, in (message, leg) order, at most limit. */
px_err ledger_read_unsettled(int64_t after_message, size_t limit, void *user, ledger_read_t **out,
                             px_error *err);

/* Hands r to the reader thread (owned by the ledger until taken back). Never blocks
 * beyond a mutex. */
void ledger_read_submit(ledger_t *l, ledger_read_t *r);

/* Takes every completed read, in submit order, linked by ledger_read_next. */
ledger_read_t *ledger_take_completed_reads(ledger_t *l);

/* Runs r on the reader thread and waits for it (for use before the event loop starts).
 * r stays owned by the caller and does not go to the completed list. Returns its result. */
px_err ledger_read_run(ledger_t *l, ledger_read_t *r, px_error *err);

void ledger_read_destroy(ledger_read_t *r);
ledger_read_t *ledger_read_next(const ledger_read_t *r);
void *ledger_read_user(const ledger_read_t *r);
ledger_read_kind ledger_read_kind_of(const ledger_read_t *r);
px_err ledger_read_result(const ledger_read_t *r, px_error *out);
size_t ledger_read_count(const ledger_read_t *r);
/* True when the page was cut by its row or byte limit: read on from the last row. */
bool ledger_read_more(const ledger_read_t *r);
/* Row i (< ledger_read_count) of a read of the matching kind; NULL otherwise. */
const ledger_window_row *ledger_read_window_row(const ledger_read_t *r, size_t i);
const ledger_outbox_row *ledger_read_outbox_row(const ledger_read_t *r, size_t i);
const ledger_leg_row *ledger_read_leg_row(const ledger_read_t *r, size_t i);

/* ---- Figures for /metrics ---- */

typedef struct ledger_stats {
    uint64_t commits;         /* groups committed */
    uint64_t commit_failures; /* groups rolled back */
    uint64_t ops_ok;          /* ops durable */
    uint64_t ops_failed;      /* ops completed with an error */
    uint64_t last_group;      /* ops in the last group */
    uint64_t max_group;       /* largest group so far */
    uint64_t queued;          /* ops submitted and not yet completed */
    uint64_t commit_us_sum;   /* total time spent in transactions (µs) */
    uint64_t commit_p50_us;   /* BEGIN … COMMIT duration percentiles since open (µs, */
    uint64_t commit_p99_us;   /* upper bound of a histogram bucket, within 1/8) */
    uint64_t commit_max_us;
    uint64_t wal_bytes;         /* WAL size after the last commit */
    uint64_t checkpoints;       /* PASSIVE checkpoints run by the reader */
    uint64_t reads;             /* reads served */
    uint64_t recovered_unknown; /* legacy legs set unknown at open */
    uint64_t recovered_pending; /* fhir legs set back to pending at open */
    int64_t last_message_id;    /* the last id assigned */
} ledger_stats;

void ledger_stats_get(ledger_t *l, ledger_stats *out);

#endif
