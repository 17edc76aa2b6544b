/* nftw */
#define _XOPEN_SOURCE 700

#include "helpers.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/msg.h"

static char dir[4096];

atomic_int lt_notified;

void lt_notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&lt_notified, 1);
}

const char *lt_setup_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/px-ledger-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    atomic_store(&lt_notified, 0);
    return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "could not remove %s: %s\n", path, strerror(errno));
    return 0;
}

void lt_cleanup(void)
{
    if (dir[0] != '\0') {
        chmod(dir, 0700);
        nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

const char *lt_path(const char *name)
{
    static char slots[4][4200];
    static unsigned next;
    char *p = slots[next++ % 4];
    snprintf(p, sizeof(slots[0]), "%s/%s", dir, name);
    return p;
}

void lt_options(ledger_options *opt, const char *name)
{
    ledger_options_init(opt);
    opt->path = lt_path(name);
    opt->notify = lt_notify;
    opt->instance_id = "test-1";
}

ledger_op_t *lt_message_op(const char *feed, const char *control_id, int64_t received_at_ms,
                           size_t body_len, void *user)
{
    ledger_op_t *op = NULL;
    px_error err;
    ck_assert_int_eq(ledger_op_create(user, &op, &err), PX_OK);
    char *body = malloc(body_len + 1);
    ck_assert_ptr_nonnull(body);
    int n = snprintf(body, body_len + 1, "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20261125||ORU^R01|%s|P|2.5",
                     control_id);
    for (size_t i = n > 0 ? (size_t)n : 0; i < body_len; i++)
        body[i] = 'x';
    px_msg_t *msg = NULL;
    ck_assert_int_eq(px_msg_create(body, body_len, &msg, &err), PX_OK);
    free(body);
    unsigned char hash[LEDGER_HASH_LEN];
    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (unsigned char)(control_id[i % strlen(control_id)] + i);
    ledger_message_rec m = {
        .received_at_ms = received_at_ms,
        .feed = px_str_from_cstr(feed),
        .peer = PX_LIT("127.0.0.1:40000"),
        .sending_app = PX_LIT("LAB"),
        .sending_facility = PX_LIT("HOSP"),
        .receiving_app = PX_LIT("EHR"),
        .receiving_facility = PX_LIT("HOSP"),
        .type = PX_LIT("ORU"),
        .trigger = PX_LIT("R01"),
        .control_id = px_str_from_cstr(control_id),
        .version = PX_LIT("2.5"),
        .hash = hash,
        .config_version = 1,
        .state = LEDGER_MSG_RECEIVED,
        .body = msg,
    };
    int64_t ref;
    ck_assert_int_eq(ledger_op_add_message(op, &m, &ref, &err), PX_OK);
    px_msg_unref(msg);
    ledger_leg_rec leg = {.message = ref,
                          .leg = LEDGER_LEG_LEGACY,
                          .state = LEDGER_LEG_PENDING,
                          .latency_us = -1,
                          .updated_at_ms = received_at_ms};
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, &err), PX_OK);
    leg.leg = LEDGER_LEG_FHIR;
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, &err), PX_OK);
    ledger_outbox_rec ob = {.action = LEDGER_OUTBOX_INSERT,
                            .message = ref,
                            .leg = LEDGER_LEG_FHIR,
                            .key = PX_LIT("MRN-KEY"),
                            .at_ms = received_at_ms};
    ck_assert_int_eq(ledger_op_add_outbox(op, &ob, &err), PX_OK);
    return op;
}

void lt_take(ledger_t *l, ledger_op_t **out, size_t n)
{
    size_t got = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (got < n) {
        ledger_op_t *op = ledger_take_completed(l);
        while (op != NULL) {
            ck_assert_uint_lt(got, n);
            out[got++] = op;
            op = ledger_op_next(op);
        }
        if (got < n) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            ck_assert_msg(now.tv_sec - start.tv_sec < 30, "only %zu of %zu ops completed", got, n);
            usleep(1000);
        }
    }
}

sqlite3 *lt_db(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    ck_assert_int_eq(rc, SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

int64_t lt_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int64_t lt_count(const char *path, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    sqlite3 *db = lt_db(path);
    int64_t n = lt_int(db, sql);
    sqlite3_close(db);
    return n;
}

void lt_assert_integrity(const char *path)
{
    sqlite3 *db = lt_db(path);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    sqlite3_close(db);
}
