/* Reviewer queries: counts, filters as bound parameters (RELIABILITY D7), time parsing. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "ledger/ledger.h"
#include "ledger/query.h"
#include "tcases.h"

static ledger_t *writer;

static ledger_op_t *msg_op(const char *feed, const char *type, const char *trigger, const char *app,
                           const char *fac, int64_t at)
{
    ledger_op_t *op = NULL;
    ck_assert_int_eq(ledger_op_create(NULL, &op, NULL), PX_OK);
    ledger_message_rec m = {.received_at_ms = at,
                            .feed = px_str_from_cstr(feed),
                            .sending_app = px_str_from_cstr(app),
                            .sending_facility = px_str_from_cstr(fac),
                            .type = px_str_from_cstr(type),
                            .trigger = px_str_from_cstr(trigger),
                            .control_id = PX_LIT("Q"),
                            .state = LEDGER_MSG_RECEIVED};
    ck_assert_int_eq(ledger_op_add_message(op, &m, NULL, NULL), PX_OK);
    return op;
}

static void add_leg(ledger_op_t *op, ledger_leg_kind leg, ledger_leg_state state)
{
    ledger_leg_rec g = {.message = LEDGER_OP_MESSAGE(0), .leg = leg, .state = state};
    ck_assert_int_eq(ledger_op_add_leg(op, &g, NULL), PX_OK);
}

static void add_ack(ledger_op_t *op, const char *code)
{
    ledger_sender_ack_rec a = {.message = LEDGER_OP_MESSAGE(0),
                               .code = px_str_from_cstr(code),
                               .bytes = PX_LIT("MSH|ack")};
    ck_assert_int_eq(ledger_op_add_sender_ack(op, &a, NULL), PX_OK);
}

static void add_div(ledger_op_t *op, ledger_divergence_kind kind)
{
    ledger_divergence_rec d = {.message = LEDGER_OP_MESSAGE(0),
                               .kind = kind,
                               .detail = PX_LIT("{\"field\":\"OBX-5\"}"),
                               .at_ms = 1};
    ck_assert_int_eq(ledger_op_add_divergence(op, &d, NULL), PX_OK);
}

/* 2026-11-25T00:00:00Z */
#define DAY0 1795564800000LL

/* Ten messages: lab ORU^R01 from LAB^HOSP ×6 (day 0), adt ADT^A01 from REG^HOSP ×4 (day 1). */
static void setup(void)
{
    lt_setup_dir();
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    px_error err;
    ck_assert_int_eq(ledger_open(&opt, &writer, &err), PX_OK);
    for (int i = 0; i < 6; i++) {
        ledger_op_t *op = msg_op("lab", "ORU", "R01", "LAB", "HOSP", DAY0 + i * 1000);
        add_leg(op, LEDGER_LEG_LEGACY, LEDGER_LEG_DELIVERED);
        add_leg(op, LEDGER_LEG_FHIR, i < 2 ? LEDGER_LEG_FAILED : LEDGER_LEG_DELIVERED);
        add_ack(op, i == 5 ? "AE" : "AA");
        if (i < 2)
            add_div(op, LEDGER_DIV_OUTCOME_MISMATCH);
        ledger_submit(writer, op);
    }
    for (int i = 0; i < 4; i++) {
        ledger_op_t *op = msg_op("adt", "ADT", "A01", "REG", "HOSP", DAY0 + 86400000 + i);
        add_leg(op, LEDGER_LEG_LEGACY, LEDGER_LEG_DELIVERED);
        if (i == 0)
            add_div(op, LEDGER_DIV_CONVERSION_GAP);
        ledger_submit(writer, op);
    }
    ledger_flush(writer);
    ledger_op_t *op = ledger_take_completed(writer);
    while (op != NULL) {
        ledger_op_t *next = ledger_op_next(op);
        ck_assert_int_eq(ledger_op_result(op, NULL), PX_OK);
        ledger_op_destroy(op);
        op = next;
    }
}

static void teardown(void)
{
    ledger_close(writer);
    writer = NULL;
    lt_cleanup();
}

/* Collected summary lines "dim key=count". */
typedef struct lines {
    char text[4096];
} lines;

static int collect(void *arg, ledger_summary_dim dim, px_str key, int64_t count)
{
    lines *l = arg;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof(l->text) - n, "%s %.*s=%lld\n", ledger_summary_dim_name(dim),
             (int)key.len, key.ptr != NULL ? key.ptr : "", (long long)count);
    return 0;
}

static void summary(const ledger_filter *f, lines *out)
{
    ledger_reader_t *r = NULL;
    px_error err;
    ck_assert_msg(ledger_reader_open(lt_path("ledger.db"), &r, &err) == PX_OK, "%s", err.msg);
    memset(out, 0, sizeof(*out));
    ck_assert_msg(ledger_summary(r, f, collect, out, &err) == PX_OK, "%s", err.msg);
    ledger_reader_close(r);
}

START_TEST(summary_counts_by_feed_state_type_ack_leg_state_and_divergence_kind)
{
    ledger_filter f = {0};
    lines got;
    summary(&f, &got);
    ck_assert_str_eq(got.text, "total =10\n"
                               "feed adt=4\n"
                               "feed lab=6\n"
                               "state received=10\n"
                               "type ADT^A01=4\n"
                               "type ORU^R01=6\n"
                               "ack (none)=4\n"
                               "ack AA=5\n"
                               "ack AE=1\n"
                               "leg_state fhir/delivered=4\n"
                               "leg_state fhir/failed=2\n"
                               "leg_state legacy/delivered=10\n"
                               "divergence conversion_gap=1\n"
                               "divergence outcome_mismatch=2\n");
}
END_TEST

START_TEST(summary_filters_by_time_and_feed)
{
    ledger_filter f = {
        .has_since = true, .since_ms = DAY0 + 2000, .has_until = true, .until_ms = DAY0 + 4000};
    lines got;
    summary(&f, &got);
    ck_assert_ptr_nonnull(strstr(got.text, "total =2\n"));
    ck_assert_ptr_nonnull(strstr(got.text, "feed lab=2\n"));
    ck_assert_ptr_null(strstr(got.text, "divergence"));

    ledger_filter g = {.feed = PX_LIT("adt")};
    summary(&g, &got);
    ck_assert_ptr_nonnull(strstr(got.text, "total =4\n"));
    ck_assert_ptr_nonnull(strstr(got.text, "divergence conversion_gap=1\n"));
    ck_assert_ptr_null(strstr(got.text, "lab"));

    ledger_reader_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_reader_open(lt_path("ledger.db"), &r, &err), PX_OK);
    ledger_filter bad = {.has_since = true, .since_ms = 10, .has_until = true, .until_ms = 5};
    ck_assert_int_eq(ledger_summary(r, &bad, collect, &got, &err), PX_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "--until"));
    ledger_reader_close(r);
}
END_TEST

typedef struct div_seen {
    int n;
    int64_t ids[16];
    char kinds[16][32];
    ledger_t *submit_during; /* when set, a write is made while the read is open */
} div_seen;

static int on_div(void *arg, const ledger_divergence_row *row)
{
    div_seen *s = arg;
    if (s->n < 16) {
        s->ids[s->n] = row->id;
        px_str_to_cbuf(row->kind, s->kinds[s->n], sizeof(s->kinds[0]));
    }
    s->n++;
    ck_assert(px_str_eq_cstr(row->detail, "{\"field\":\"OBX-5\"}"));
    ck_assert(px_str_eq_cstr(row->control_id, "Q"));
    if (s->submit_during != NULL) {
        /* A reader in the middle of a query must not hold the writer up. */
        ledger_submit(s->submit_during, msg_op("lab", "ORU", "R01", "LAB", "HOSP", 1));
        ledger_flush(s->submit_during);
        ledger_op_t *op = ledger_take_completed(s->submit_during);
        ck_assert_ptr_nonnull(op);
        ck_assert_int_eq(ledger_op_result(op, NULL), PX_OK);
        ledger_op_destroy(op);
        s->submit_during = NULL;
    }
    return 0;
}

static div_seen list(const ledger_filter *f, size_t limit, px_err want)
{
    ledger_reader_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_reader_open(lt_path("ledger.db"), &r, &err), PX_OK);
    div_seen s = {0};
    ck_assert_int_eq(ledger_divergences(r, f, limit, on_div, &s, &err), want);
    ledger_reader_close(r);
    return s;
}

START_TEST(divergences_are_listed_with_filters_on_kind_type_sender_and_feed)
{
    ledger_filter f = {0};
    div_seen s = list(&f, 0, PX_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.kinds[0], "outcome_mismatch");
    ck_assert_str_eq(s.kinds[2], "conversion_gap");
    ck_assert_int_lt(s.ids[0], s.ids[1]);

    f.kind = PX_LIT("conversion_gap");
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 1);
    f = (ledger_filter){.type = PX_LIT("ORU")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 2);
    f = (ledger_filter){.type = PX_LIT("ORU^R01")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 2);
    f = (ledger_filter){.type = PX_LIT("ORU^R03")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 0);
    f = (ledger_filter){.sender = PX_LIT("REG^HOSP")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 1);
    f = (ledger_filter){.sender = PX_LIT("LAB")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 2);
    f = (ledger_filter){.feed = PX_LIT("adt"), .kind = PX_LIT("outcome_mismatch")};
    ck_assert_int_eq(list(&f, 0, PX_OK).n, 0);
    f = (ledger_filter){0};
    ck_assert_int_eq(list(&f, 2, PX_OK).n, 2);
    f = (ledger_filter){.kind = PX_LIT("mismatch")};
    ck_assert_int_eq(list(&f, 0, PX_ERR_INVAL).n, 0);
}
END_TEST

START_TEST(sql_in_filters_is_a_literal_and_changes_nothing)
{
    static const char *const evil[] = {
        "%",
        "x' OR '1'='1",
        "2024'; DROP TABLE messages;--",
        "lab\"; DELETE FROM legs; --",
        "' UNION SELECT id, 1 FROM messages --",
        "*",
        "_",
    };
    const char *tables[] = {"messages", "legs", "divergences", "sender_acks", "bodies"};
    int64_t before[5];
    for (int t = 0; t < 5; t++)
        before[t] = lt_count(lt_path("ledger.db"), tables[t]);
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        px_str v = px_str_from_cstr(evil[i]);
        ledger_filter fs[] = {{.feed = v}, {.type = v}, {.sender = v}};
        for (size_t k = 0; k < 3; k++) {
            lines got;
            summary(&fs[k], &got);
            ck_assert_msg(strncmp(got.text, "total =0\n", 9) == 0, "%s matched: %s", evil[i],
                          got.text);
            ck_assert_int_eq(list(&fs[k], 0, PX_OK).n, 0);
        }
        /* A kind is checked against the stable names before any query. */
        ledger_filter fk = {.kind = v};
        ck_assert_int_eq(list(&fk, 0, PX_ERR_INVAL).n, 0);
        /* A time is parsed, never passed on as text. */
        int64_t ms;
        ck_assert_int_eq(ledger_time_parse(v, &ms, NULL), PX_ERR_PARSE);
    }
    for (int t = 0; t < 5; t++)
        ck_assert_int_eq(lt_count(lt_path("ledger.db"), tables[t]), before[t]);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(a_reader_in_the_middle_of_a_query_does_not_block_the_writer)
{
    ledger_filter f = {0};
    ledger_reader_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_reader_open(lt_path("ledger.db"), &r, &err), PX_OK);
    div_seen s = {.submit_during = writer};
    ck_assert_int_eq(ledger_divergences(r, &f, 0, on_div, &s, &err), PX_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert_ptr_null(s.submit_during);
    ledger_reader_close(r);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "messages"), 11);
}
END_TEST

START_TEST(the_reader_refuses_a_missing_file_a_symlink_and_a_foreign_database)
{
    ledger_reader_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_reader_open(lt_path("missing.db"), &r, &err), PX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.db"));
    ck_assert_int_eq(symlink(lt_path("ledger.db"), lt_path("link.db")), 0);
    ck_assert_int_eq(ledger_reader_open(lt_path("link.db"), &r, &err), PX_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "symlink"));
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(lt_path("other.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(ledger_reader_open(lt_path("other.db"), &r, &err), PX_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a parallax ledger"));
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(times_parse_as_iso_8601_dates_date_times_or_unix_milliseconds)
{
    int64_t ms = 0;
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2026-11-25T00:00:00Z"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2026-11-25"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2026-11-25T10:00:00Z"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0 + 36000000);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2026-11-25T11:00:00.250+01:00"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0 + 36000250);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2026-11-25T05:30-0430"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0 + 36000000);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("1970-01-01"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, 0);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("2024-02-29"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, 1709164800000LL);
    ck_assert_int_eq(ledger_time_parse(PX_LIT("1795564800000"), &ms, NULL), PX_OK);
    ck_assert_int_eq(ms, DAY0);

    static const char *const bad[] = {
        "",
        "yesterday",
        "2026-13-01",
        "2026-02-29",
        "2026-11-31",
        "2026-11-25T10:00:00",
        "2026-11-25T25:00Z",
        "2026-11-25T10:61Z",
        "2026-11-25T10:00:00Zjunk",
        "2026/11/25",
        "-5",
        "99999999999999999999",
        "2026-11-25T10:00:00.Z",
        "2026-11-25T10:00+25:00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_error err;
        ck_assert_msg(ledger_time_parse(px_str_from_cstr(bad[i]), &ms, &err) == PX_ERR_PARSE,
                      "accepted '%s'", bad[i]);
        ck_assert_ptr_nonnull(strstr(err.msg, "ISO 8601"));
    }
}
END_TEST

TCase *ledger_tcase_queries(void)
{
    TCase *tc = tcase_create("queries");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, summary_counts_by_feed_state_type_ack_leg_state_and_divergence_kind);
    tcase_add_test(tc, summary_filters_by_time_and_feed);
    tcase_add_test(tc, divergences_are_listed_with_filters_on_kind_type_sender_and_feed);
    tcase_add_test(tc, sql_in_filters_is_a_literal_and_changes_nothing);
    tcase_add_test(tc, a_reader_in_the_middle_of_a_query_does_not_block_the_writer);
    tcase_add_test(tc, the_reader_refuses_a_missing_file_a_symlink_and_a_foreign_database);
    tcase_add_test(tc, times_parse_as_iso_8601_dates_date_times_or_unix_milliseconds);
    return tc;
}
