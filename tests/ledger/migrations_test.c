/* Forward-only migrations keep every row, including a queued outbox (RELIABILITY B14,
 * Mirth #1978). The version-1 database is built by hand here, as an older parallax wrote
 * it, so the test does not depend on the migration code to make its starting point. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"
#include "ledger/ledger.h"
#include "tcases.h"

static void setup(void)
{
    lt_setup_dir();
}

static void teardown(void)
{
    lt_cleanup();
}

static const char v1_schema[] =
    "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL,"
    " feed TEXT NOT NULL, peer TEXT NOT NULL, sending_app TEXT NOT NULL,"
    " sending_facility TEXT NOT NULL, receiving_app TEXT NOT NULL,"
    " receiving_facility TEXT NOT NULL, type TEXT NOT NULL, trigger_event TEXT NOT NULL,"
    " control_id TEXT NOT NULL, version TEXT NOT NULL, hash BLOB,"
    " config_version INTEGER NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('received', 'rejected', 'filtered')),"
    " reason TEXT NOT NULL);"
    "CREATE INDEX messages_retransmission"
    " ON messages (feed, sending_app, sending_facility, control_id);"
    "CREATE INDEX messages_received_at ON messages (received_at);"
    "CREATE TABLE bodies (message INTEGER PRIMARY KEY REFERENCES messages (id),"
    " body BLOB NOT NULL);"
    "CREATE TABLE legs (message INTEGER NOT NULL REFERENCES messages (id),"
    " leg TEXT NOT NULL CHECK (leg IN ('legacy', 'fhir')),"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'delivered', 'rejected',"
    "  'failed', 'unknown', 'dead_letter', 'skipped', 'held')),"
    " attempts INTEGER NOT NULL, ack_code TEXT NOT NULL, ack BLOB,"
    " http_status INTEGER NOT NULL, error TEXT NOT NULL, latency_us INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, PRIMARY KEY (message, leg)) WITHOUT ROWID;"
    "CREATE TABLE sender_acks (message INTEGER PRIMARY KEY REFERENCES messages (id),"
    " code TEXT NOT NULL, ack BLOB NOT NULL, sent_at INTEGER NOT NULL);"
    "CREATE TABLE outbox (leg TEXT NOT NULL CHECK (leg IN ('legacy', 'fhir')),"
    " seq INTEGER NOT NULL, message INTEGER NOT NULL REFERENCES messages (id),"
    " ordering_key TEXT NOT NULL, attempts INTEGER NOT NULL, queued_at INTEGER NOT NULL,"
    " PRIMARY KEY (leg, seq)) WITHOUT ROWID;"
    "CREATE TABLE divergences (id INTEGER PRIMARY KEY,"
    " message INTEGER NOT NULL REFERENCES messages (id),"
    " kind TEXT NOT NULL CHECK (kind IN ('outcome_mismatch', 'one_side_failed',"
    "  'unknown_outcome', 'conversion_gap', 'field_mismatch', 'ack_anomaly', 'duplicate')),"
    " detail TEXT NOT NULL CHECK (json_valid(detail)), detected_at INTEGER NOT NULL);"
    "CREATE INDEX divergences_kind ON divergences (kind);"
    "PRAGMA user_version = 1;";

static void make_v1(const char *path, int messages)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 1; i <= messages; i++) {
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO messages VALUES (%d, %d, 'lab', 'peer', 'LAB', 'HOSP', 'EHR',"
                 " 'HOSP', 'ORU', 'R01', 'C%d', '2.5', NULL, 7, 'received', '');"
                 "INSERT INTO bodies VALUES (%d, 'MSH|^~\\&|body %d');"
                 "INSERT INTO legs VALUES (%d, 'legacy', 'delivered', 1, 'AA', 'ack', 0, '', 5,"
                 " %d);"
                 "INSERT INTO legs VALUES (%d, 'fhir', 'pending', 0, '', NULL, 0, '', 0, %d);"
                 "INSERT INTO outbox VALUES ('fhir', %d, %d, 'key-%d', %d, %d);",
                 i, 1000 + i, i, i, i, i, 1000 + i, i, 1000 + i, i, i, i, i % 3, 1000 + i);
        ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    ck_assert_int_eq(sqlite3_exec(db,
                                  "INSERT INTO divergences VALUES (1, 1, 'duplicate', '{}', 5);"
                                  "INSERT INTO sender_acks VALUES (1, 'AA', 'MSH|ack', 5);"
                                  "COMMIT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(chmod(path, 0600), 0);
    chmod(lt_path("v1.db-wal"), 0600);
    chmod(lt_path("v1.db-shm"), 0600);
}

START_TEST(migration_from_version_1_keeps_every_row_and_the_queued_outbox)
{
    const int n = 500;
    make_v1(lt_path("v1.db"), n);
    ledger_options opt;
    lt_options(&opt, "v1.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_msg(ledger_open(&opt, &l, &err) == PX_OK, "%s", err.msg);

    sqlite3 *db = lt_db(lt_path("v1.db"));
    ck_assert_int_eq(lt_int(db, "PRAGMA user_version"), 2);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM messages"), n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM bodies"), n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs"), 2 * n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM outbox"), n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM divergences"), 1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM sender_acks"), 1);
    /* Old columns kept their values; new ones have their defaults. */
    int64_t attempts = 0;
    for (int i = 1; i <= n; i++)
        attempts += i % 3;
    ck_assert_int_eq(lt_int(db, "SELECT sum(attempts) FROM outbox"), attempts);
    ck_assert_int_eq(lt_int(db, "SELECT sum(queued_at) FROM outbox"), 1000 * n + n * (n + 1) / 2);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM outbox WHERE next_attempt_at = 0"), n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM messages WHERE instance = ''"), n);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM resolutions"), 0);
    sqlite3_close(db);

    /* The queued rows stream in order after the upgrade. */
    int64_t after = 0;
    size_t seen = 0;
    for (;;) {
        ledger_read_t *r = NULL;
        ck_assert_int_eq(ledger_read_outbox(LEDGER_LEG_FHIR, after, 128, true, NULL, &r, &err),
                         PX_OK);
        ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
        for (size_t i = 0; i < ledger_read_count(r); i++) {
            const ledger_outbox_row *row = ledger_read_outbox_row(r, i);
            ck_assert_int_eq(row->seq, after + 1);
            ck_assert_ptr_nonnull(row->body);
            char want[64];
            snprintf(want, sizeof(want), "MSH|^~\\&|body %lld", (long long)row->seq);
            px_str body = px_msg_bytes(row->body);
            ck_assert_uint_eq(body.len, strlen(want));
            ck_assert_mem_eq(body.ptr, want, body.len);
            after = row->seq;
            seen++;
        }
        bool more = ledger_read_more(r);
        ledger_read_destroy(r);
        if (!more)
            break;
    }
    ck_assert_uint_eq(seen, (size_t)n);

    /* New ids continue after the old ones. */
    int64_t id = ledger_submit(l, lt_message_op("lab", "NEW", 99999, 100, NULL));
    ck_assert_int_eq(id, n + 1);
    ledger_flush(l);
    ledger_op_t *done = ledger_take_completed(l);
    ck_assert_ptr_nonnull(done);
    ck_assert_int_eq(ledger_op_result(done, &err), PX_OK);
    ledger_op_destroy(done);
    ledger_close(l);
    ck_assert_int_eq(lt_count(lt_path("v1.db"), "outbox"), n + 1);
    lt_assert_integrity(lt_path("v1.db"));
}
END_TEST

START_TEST(reopening_a_current_ledger_changes_nothing)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ledger_submit(l, lt_message_op("lab", "A", 1, 10, NULL));
    ledger_close(l);
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ck_assert_int_eq(ledger_submit(l, lt_message_op("lab", "B", 2, 10, NULL)), 2);
    ledger_close(l);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "messages"), 2);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

TCase *ledger_tcase_migrations(void)
{
    TCase *tc = tcase_create("migrations");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, migration_from_version_1_keeps_every_row_and_the_queued_outbox);
    tcase_add_test(tc, reopening_a_current_ledger_changes_nothing);
    return tc;
}
