/* Write failures complete the affected ops with an error, and the ledger carries on once
 * the cause is gone, without a restart (RELIABILITY B11, B12). */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static ledger_t *open_with(int busy_ms, size_t checkpoint_bytes)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    opt.busy_timeout_ms = busy_ms;
    if (checkpoint_bytes != 0)
        opt.checkpoint_bytes = checkpoint_bytes;
    ledger_t *l = NULL;
    px_error err;
    ck_assert_msg(ledger_open(&opt, &l, &err) == PX_OK, "%s", err.msg);
    return l;
}

/* Submits n ops and returns how many completed PX_OK; the first error is copied out. */
static size_t submit_and_take(ledger_t *l, size_t n, size_t body, px_error *first_err)
{
    ledger_op_t *ops[64];
    ck_assert_uint_le(n, 64);
    for (size_t i = 0; i < n; i++)
        ledger_submit(l, lt_message_op("lab", "F", (int64_t)i, body, NULL));
    lt_take(l, ops, n);
    size_t ok = 0;
    bool have_err = false;
    for (size_t i = 0; i < n; i++) {
        px_error err;
        if (ledger_op_result(ops[i], &err) == PX_OK) {
            ok++;
        } else if (!have_err) {
            *first_err = err;
            have_err = true;
        }
        ledger_op_destroy(ops[i]);
    }
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(a_lock_held_past_the_busy_timeout_fails_the_group_and_later_writes_succeed)
{
    ledger_t *l = open_with(200, 0);
    sqlite3 *other = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    px_error err = {0};
    ck_assert_uint_eq(submit_and_take(l, 8, 256, &err), 0);
    ck_assert_int_eq(err.code, PX_ERR_DB);
    ck_assert_int_eq(err.detail & 0xff, SQLITE_BUSY);
    ck_assert_ptr_nonnull(strstr(err.msg, "ledger"));
    ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);

    ck_assert_uint_eq(submit_and_take(l, 8, 256, &err), 8);
    ledger_stats st;
    ledger_stats_get(l, &st);
    ck_assert_uint_ge(st.commit_failures, 1);
    ck_assert_uint_eq(st.ops_failed, 8);
    ck_assert_uint_eq(st.ops_ok, 8);
    ledger_close(l);
    ck_assert_int_eq(lt_int(other, "SELECT count(*) FROM messages"), 8);
    /* The failed ops' ids are never reused: the stored ids are 9 … 16. */
    ck_assert_int_eq(lt_int(other, "SELECT min(id) FROM messages"), 9);
    sqlite3_close(other);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(writes_wait_for_a_two_second_exclusive_lock_then_succeed)
{
    ledger_t *l = open_with(5000, 0);
    sqlite3 *other = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    double t0 = now_s();
    for (int i = 0; i < 10; i++)
        ledger_submit(l, lt_message_op("lab", "W", i, 256, NULL));
    /* Nothing may complete (so nothing may be acknowledged) while the lock is held. */
    while (now_s() - t0 < 2.0) {
        ck_assert_ptr_null(ledger_take_completed(l));
        usleep(50 * 1000);
    }
    ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    ledger_op_t *ops[10];
    lt_take(l, ops, 10);
    for (int i = 0; i < 10; i++) {
        px_error err;
        ck_assert_msg(ledger_op_result(ops[i], &err) == PX_OK, "%s", err.msg);
        ledger_op_destroy(ops[i]);
    }
    ck_assert_double_ge(now_s() - t0, 2.0);
    ledger_close(l);
    ck_assert_int_eq(lt_int(other, "SELECT count(*) FROM messages"), 10);
    sqlite3_close(other);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(a_full_disk_fails_the_ops_and_writing_resumes_when_space_returns)
{
    /* No checkpoint during the test: only the WAL grows. */
    ledger_t *l = open_with(1000, (size_t)1 << 30);
    px_error err = {0};
    ck_assert_uint_eq(submit_and_take(l, 16, 1024, &err), 16);

    struct stat st;
    ck_assert_int_eq(stat(lt_path("ledger.db-wal"), &st), 0);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    /* The file size limit stands in for a full disk: the WAL cannot grow. */
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_uint_eq(submit_and_take(l, 4, 256 * 1024, &err), 0);
    ck_assert_int_eq(err.code, PX_ERR_DB);
    /* Still failing while the disk stays full. */
    ck_assert_uint_eq(submit_and_take(l, 4, 256 * 1024, &err), 0);

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_uint_eq(submit_and_take(l, 4, 256 * 1024, &err), 4);
    ledger_close(l);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "messages"), 20);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "outbox"), 20);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

TCase *ledger_tcase_write_failures(void)
{
    TCase *tc = tcase_create("write_failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_lock_held_past_the_busy_timeout_fails_the_group_and_later_writes_succeed);
    tcase_add_test(tc, writes_wait_for_a_two_second_exclusive_lock_then_succeed);
    tcase_add_test(tc, a_full_disk_fails_the_ops_and_writing_resumes_when_space_returns);
    return tc;
}
