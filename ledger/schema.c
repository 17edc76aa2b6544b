/* Connection pragmas and the schema, migrated forward with PRAGMA user_version.
 *
 * Each migration moves the schema from version N-1 to N and keeps every row (RELIABILITY
 * B14: a schema upgrade must not lose a queued outbox row). A database written by a newer
 * parallax is refused rather than guessed at. All migrations that are due run in one
 * transaction, so an interrupted upgrade leaves the previous version intact. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ledger/internal.h"

/* Version 1: messages (metadata), their bodies in a table of their own (so scans of
 * messages stay small and a message row is never rewritten with its body), legs, the ACK
 * returned to the sender, the outbox and divergences. Only the indexes reads need: the
 * retransmission key, time, divergence kind; the outbox is keyed by (leg, seq). */
static const char migration_1[] =
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY,"
    " received_at INTEGER NOT NULL,"
    " feed TEXT NOT NULL,"
    " peer TEXT NOT NULL,"
    " sending_app TEXT NOT NULL,"
    " sending_facility TEXT NOT NULL,"
    " receiving_app TEXT NOT NULL,"
    " receiving_facility TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " trigger_event TEXT NOT NULL,"
    " control_id TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " hash BLOB,"
    " config_version INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('received', 'rejected', 'filtered')),"
    " reason TEXT NOT NULL);"
    "CREATE INDEX messages_retransmission"
    " ON messages (feed, sending_app, sending_facility, control_id);"
    "CREATE INDEX messages_received_at ON messages (received_at);"
    "CREATE TABLE bodies ("
    " message INTEGER PRIMARY KEY REFERENCES messages (id),"
    " body BLOB NOT NULL);"
    "CREATE TABLE legs ("
    " message INTEGER NOT NULL REFERENCES messages (id),"
    " leg TEXT NOT NULL CHECK (leg IN ('legacy', 'fhir')),"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'rejected',"
    "  'failed', 'unknown', 'dead_letter', 'skipped', 'held')),"
    " attempts INTEGER NOT NULL,"
    " ack_code TEXT NOT NULL,"
    " ack BLOB,"
    " http_status INTEGER NOT NULL,"
    " error TEXT NOT NULL,"
    " latency_us INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (message, leg)) WITHOUT ROWID;"
    "CREATE TABLE sender_acks ("
    " message INTEGER PRIMARY KEY REFERENCES messages (id),"
    " code TEXT NOT NULL,"
    " ack BLOB NOT NULL,"
    " sent_at INTEGER NOT NULL);"
    "CREATE TABLE outbox ("
    " leg TEXT NOT NULL CHECK (leg IN ('legacy', 'fhir')),"
    " seq INTEGER NOT NULL,"
    " message INTEGER NOT NULL REFERENCES messages (id),"
    " ordering_key TEXT NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " queued_at INTEGER NOT NULL,"
    " PRIMARY KEY (leg, seq)) WITHOUT ROWID;"
    "CREATE TABLE divergences ("
    " id INTEGER PRIMARY KEY,"
    " message INTEGER NOT NULL REFERENCES messages (id),"
    " kind TEXT NOT NULL CHECK (kind IN ('outcome_mismatch', 'one_side_failed',"
    "  'unknown_outcome', 'conversion_gap', 'field_mismatch', 'ack_anomaly', 'duplicate')),"
    " detail TEXT NOT NULL CHECK (json_valid(detail)),"
    " detected_at INTEGER NOT NULL);"
    "CREATE INDEX divergences_kind ON divergences (kind);";

/* Version 2: the instance id on every message (exports from several instances merge),
 * retry scheduling in the outbox, append-only resolutions, config reloads and audit. */
static const char migration_2[] =
    "ALTER TABLE messages ADD COLUMN instance TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE resolutions ("
    " id INTEGER PRIMARY KEY,"
    " divergence INTEGER NOT NULL REFERENCES divergences (id),"
    " who TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " note TEXT NOT NULL,"
    " resolved_at INTEGER NOT NULL);"
    "CREATE INDEX resolutions_divergence ON resolutions (divergence);"
    "CREATE TABLE config_reloads ("
    " id INTEGER PRIMARY KEY,"
    " version INTEGER NOT NULL,"
    " hash TEXT NOT NULL,"
    " who TEXT NOT NULL,"
    " ok INTEGER NOT NULL CHECK (ok IN (0, 1)),"
    " reason TEXT NOT NULL,"
    " at INTEGER NOT NULL);"
    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " detail TEXT NOT NULL);";

static const char *const migrations[LEDGER_SCHEMA_VERSION] = {migration_1, migration_2};

px_err ledger__db_error(px_error *err, sqlite3 *db, int rc, const char *what)
{
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    /* sqlite3_errmsg describes the last failure on db; when rc came from elsewhere (a
     * finished statement) fall back to the generic text for rc. */
    if (db != NULL && (sqlite3_extended_errcode(db) & 0xff) != (rc & 0xff))
        msg = sqlite3_errstr(rc);
    return px_error_setd(err, PX_ERR_DB, rc, "%s: %s (SQLite %d)", what, msg, rc);
}

px_err ledger__exec(sqlite3 *db, const char *sql, px_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        px_error_setd(err, PX_ERR_DB, rc, "ledger: %s (SQLite %d)",
                      msg != NULL ? msg : sqlite3_errstr(rc), rc);
        sqlite3_free(msg);
        return PX_ERR_DB;
    }
    return PX_OK;
}

px_err ledger__query_int(sqlite3 *db, const char *sql, int64_t *out, px_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return ledger__db_error(err, db, rc, "ledger query");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return PX_OK;
    }
    px_err e = rc == SQLITE_DONE ? px_error_set(err, PX_ERR_DB, "ledger query returned no row")
                                 : ledger__db_error(err, db, rc, "ledger query");
    sqlite3_finalize(st);
    return e;
}

px_err ledger__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, px_error *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (rc != SQLITE_OK)
        return ledger__db_error(err, db, rc, "ledger: preparing a statement");
    return PX_OK;
}

px_err ledger__configure(sqlite3 *db, bool writer, ledger_sync sync, int64_t journal_size_limit,
                         int busy_timeout_ms, px_error *err)
{
    sqlite3_extended_result_codes(db, 1);
    int rc = sqlite3_busy_timeout(db, busy_timeout_ms);
    if (rc != SQLITE_OK)
        return ledger__db_error(err, db, rc, "ledger: busy timeout");
    px_err e = ledger__exec(db, "PRAGMA foreign_keys = ON", err);
    if (e != PX_OK || !writer)
        return e;

    /* The page size can only be chosen before the first table (and not in WAL mode). */
    int64_t tables = 0;
    e = ledger__query_int(db, "SELECT count(*) FROM sqlite_schema", &tables, err);
    if (e != PX_OK)
        return e;
    if (tables == 0) {
        e = ledger__exec(db, "PRAGMA page_size = 16384", err);
        if (e != PX_OK)
            return e;
    }

    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return ledger__db_error(err, db, rc, "ledger: journal_mode");
    rc = sqlite3_step(st);
    bool wal = rc == SQLITE_ROW &&
               sqlite3_strnicmp((const char *)sqlite3_column_text(st, 0), "wal", 4) == 0;
    if (rc != SQLITE_ROW) {
        e = ledger__db_error(err, db, rc, "ledger: journal_mode");
        sqlite3_finalize(st);
        return e;
    }
    sqlite3_finalize(st);
    if (!wal)
        return px_error_set(err, PX_ERR_DB, "ledger: the database refused WAL mode");

    char sql[256];
    int n = snprintf(sql, sizeof(sql),
                     "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = 0;"
                     " PRAGMA temp_store = MEMORY;"
                     " PRAGMA journal_size_limit = %" PRId64,
                     sync == LEDGER_SYNC_NORMAL ? "NORMAL" : "FULL", journal_size_limit);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return px_error_set(err, PX_ERR_INVAL, "ledger: pragma text too long");
    return ledger__exec(db, sql, err);
}

px_err ledger__schema_check(sqlite3 *db, int64_t *version, px_error *err)
{
    px_err e = ledger__query_int(db, "PRAGMA user_version", version, err);
    if (e != PX_OK)
        return e;
    if (*version > LEDGER_SCHEMA_VERSION)
        return px_error_set(err, PX_ERR_DB,
                            "ledger schema version %" PRId64 " is newer than this parallax "
                            "understands (%d); upgrade parallax",
                            *version, LEDGER_SCHEMA_VERSION);
    if (*version < 0)
        return px_error_set(err, PX_ERR_DB, "ledger schema version %" PRId64 " is invalid",
                            *version);
    if (*version == 0) {
        /* A database that has tables but no version was not made by us. */
        int64_t tables = 0;
        e = ledger__query_int(db, "SELECT count(*) FROM sqlite_schema", &tables, err);
        if (e != PX_OK)
            return e;
        if (tables != 0)
            return px_error_set(err, PX_ERR_DB,
                                "the file has tables but no ledger schema version; it is not "
                                "a parallax ledger");
    }
    return PX_OK;
}

px_err ledger__migrate(sqlite3 *db, px_error *err)
{
    int64_t version = 0;
    px_err e = ledger__schema_check(db, &version, err);
    if (e != PX_OK)
        return e;
    if (version == LEDGER_SCHEMA_VERSION)
        return PX_OK;

    e = ledger__exec(db, "BEGIN IMMEDIATE", err);
    if (e != PX_OK)
        return e;
    for (int64_t v = version + 1; v <= LEDGER_SCHEMA_VERSION; v++) {
        e = ledger__exec(db, migrations[v - 1], err);
        if (e != PX_OK)
            goto out_rollback;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LEDGER_SCHEMA_VERSION);
    e = ledger__exec(db, sql, err);
    if (e != PX_OK)
        goto out_rollback;
    /* A migration must not leave a dangling reference behind. */
    int64_t dangling = 0;
    e = ledger__query_int(db, "SELECT count(*) FROM pragma_foreign_key_check", &dangling, err);
    if (e != PX_OK)
        goto out_rollback;
    if (dangling != 0) {
        e = px_error_set(err, PX_ERR_DB,
                         "ledger migration to version %d found %" PRId64
                         " rows with dangling references; nothing was changed",
                         LEDGER_SCHEMA_VERSION, dangling);
        goto out_rollback;
    }
    return ledger__exec(db, "COMMIT", err);

out_rollback:
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return e;
}
