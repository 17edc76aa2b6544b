/* The ledger's files are private (RELIABILITY D5, D8) and its pragmas are the ones
 * STYLE §11 asks for. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

static unsigned mode_of(const char *path)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "%s missing", path);
    return (unsigned)(st.st_mode & 07777);
}

START_TEST(open_creates_a_private_directory_and_private_files_under_umask_zero)
{
    mode_t old = umask(0);
    ledger_options opt;
    lt_options(&opt, "deep/er/ledger.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    int64_t id = ledger_submit(l, lt_message_op("lab", "C1", 1000, 200, NULL));
    ck_assert_int_eq(id, 1);
    ledger_flush(l);
    ck_assert_uint_eq(mode_of(lt_path("deep")), 0700);
    ck_assert_uint_eq(mode_of(lt_path("deep/er")), 0700);
    ck_assert_uint_eq(mode_of(lt_path("deep/er/ledger.db")), 0600);
    ck_assert_uint_eq(mode_of(lt_path("deep/er/ledger.db-wal")), 0600);
    ck_assert_uint_eq(mode_of(lt_path("deep/er/ledger.db-shm")), 0600);
    ledger_close(l);
    umask(old);
    lt_assert_integrity(lt_path("deep/er/ledger.db"));
}
END_TEST

START_TEST(open_sets_the_pragmas_and_schema_version)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    sqlite3 *db = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(lt_int(db, "PRAGMA page_size"), 16384);
    ck_assert_int_eq(lt_int(db, "PRAGMA user_version"), 2);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    ledger_close(l);
}
END_TEST

static void refused(const char *name, px_err want, const char *needle)
{
    ledger_options opt;
    lt_options(&opt, name);
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), want);
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
}

START_TEST(open_refuses_a_world_writable_database_naming_the_path)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ledger_close(l);
    ck_assert_int_eq(chmod(lt_path("ledger.db"), 0666), 0);
    refused("ledger.db", PX_ERR_INVAL, lt_path("ledger.db"));
    ck_assert_int_eq(chmod(lt_path("ledger.db"), 0604), 0);
    refused("ledger.db", PX_ERR_INVAL, "readable or writable by others");
    ck_assert_int_eq(chmod(lt_path("ledger.db"), 0600), 0);
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ledger_close(l);
}
END_TEST

START_TEST(open_refuses_an_over_permissive_wal_file)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ledger_close(l);
    FILE *f = fopen(lt_path("ledger.db-wal"), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(chmod(lt_path("ledger.db-wal"), 0646), 0);
    refused("ledger.db", PX_ERR_INVAL, lt_path("ledger.db-wal"));
}
END_TEST

START_TEST(open_refuses_a_symlinked_database_path)
{
    ledger_options opt;
    lt_options(&opt, "real.db");
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_OK);
    ledger_close(l);
    ck_assert_int_eq(symlink(lt_path("real.db"), lt_path("link.db")), 0);
    refused("link.db", PX_ERR_INVAL, "symlink");
    /* A dangling symlink is refused too, rather than created through. */
    ck_assert_int_eq(symlink(lt_path("nowhere.db"), lt_path("dangling.db")), 0);
    refused("dangling.db", PX_ERR_INVAL, "symlink");
    ck_assert_int_eq(access(lt_path("nowhere.db"), F_OK), -1);
}
END_TEST

START_TEST(open_refuses_a_directory_writable_by_others)
{
    ck_assert_int_eq(mkdir(lt_path("shared"), 0777), 0);
    ck_assert_int_eq(chmod(lt_path("shared"), 0777), 0);
    refused("shared/ledger.db", PX_ERR_INVAL, "writable by others");
}
END_TEST

START_TEST(open_refuses_a_newer_schema_and_a_foreign_database)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(lt_path("newer.db"), &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "CREATE TABLE t (x); PRAGMA user_version = 99", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    chmod(lt_path("newer.db"), 0600);
    refused("newer.db", PX_ERR_DB, "newer");

    ck_assert_int_eq(sqlite3_open(lt_path("foreign.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    chmod(lt_path("foreign.db"), 0600);
    refused("foreign.db", PX_ERR_DB, "not a parallax ledger");
    ck_assert_int_eq(lt_count(lt_path("foreign.db"), "t"), 0);
}
END_TEST

START_TEST(open_refuses_missing_path_and_bad_options)
{
    ledger_options opt;
    ledger_options_init(&opt);
    ledger_t *l = NULL;
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_ERR_INVAL);
    opt.path = "";
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_ERR_INVAL);
    lt_options(&opt, "ledger.db");
    opt.busy_timeout_ms = -1;
    ck_assert_int_eq(ledger_open(&opt, &l, &err), PX_ERR_INVAL);
    ck_assert_ptr_null(l);
}
END_TEST

TCase *ledger_tcase_files(void)
{
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, open_creates_a_private_directory_and_private_files_under_umask_zero);
    tcase_add_test(tc, open_sets_the_pragmas_and_schema_version);
    tcase_add_test(tc, open_refuses_a_world_writable_database_naming_the_path);
    tcase_add_test(tc, open_refuses_an_over_permissive_wal_file);
    tcase_add_test(tc, open_refuses_a_symlinked_database_path);
    tcase_add_test(tc, open_refuses_a_directory_writable_by_others);
    tcase_add_test(tc, open_refuses_a_newer_schema_and_a_foreign_database);
    tcase_add_test(tc, open_refuses_missing_path_and_bad_options);
    return tc;
}
