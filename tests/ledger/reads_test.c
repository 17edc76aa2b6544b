/* Reads served by the reader thread: the retransmission window, outbox pages streamed a
 * page at a time (RELIABILITY A7), unsettled legs and recovery at open, checkpoints. */
#include <check.h>
#include <stdint.h>
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

static ledger_t *open_opts(ledger_options *opt)
{
    ledger_t *l = NULL;
    px_error err;
    ck_assert_msg(ledger_open(opt, &l, &err) == PX_OK, "%s", err.msg);
    return l;
}

static ledger_t *open_ledger(void)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    return open_opts(&opt);
}

static void must_complete(ledger_t *l)
{
    ledger_flush(l);
    ledger_op_t *op = ledger_take_completed(l);
    while (op != NULL) {
        ledger_op_t *next = ledger_op_next(op);
        px_error err;
        ck_assert_msg(ledger_op_result(op, &err) == PX_OK, "%s", err.msg);
        ledger_op_destroy(op);
        op = next;
    }
}

START_TEST(window_refill_returns_the_newest_messages_per_feed_with_their_acks)
{
    ledger_t *l = open_ledger();
    const char *feeds[] = {"lab", "adt", "rx"};
    for (int i = 0; i < 60; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "M%d", i);
        ledger_op_t *op = lt_message_op(feeds[i % 3], cid, 1000 + i, 100, NULL);
        if (i % 2 == 0) {
            ledger_sender_ack_rec a = {.message = LEDGER_OP_MESSAGE(0),
                                       .code = PX_LIT("AA"),
                                       .bytes = PX_LIT("MSH|^~\\&|ACK\rMSA|AA|x\r"),
                                       .sent_at_ms = 1};
            ck_assert_int_eq(ledger_op_add_sender_ack(op, &a, NULL), PX_OK);
        }
        ledger_submit(l, op);
    }
    must_complete(l);

    ledger_read_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_read_window(5, 1000, 0, NULL, &r, &err), PX_OK);
    ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
    ck_assert_uint_eq(ledger_read_count(r), 15);
    int per_feed[3] = {0};
    int64_t prev = INT64_MAX;
    for (size_t i = 0; i < ledger_read_count(r); i++) {
        const ledger_window_row *w = ledger_read_window_row(r, i);
        ck_assert_int_lt(w->message, prev); /* newest first */
        prev = w->message;
        int i_msg = (int)w->message - 1;
        ck_assert_int_ge(i_msg, 45); /* only the newest five of each feed */
        ck_assert(px_str_eq_cstr(w->feed, feeds[i_msg % 3]));
        per_feed[i_msg % 3]++;
        char cid[16];
        snprintf(cid, sizeof(cid), "M%d", i_msg);
        ck_assert(px_str_eq_cstr(w->control_id, cid));
        ck_assert(px_str_eq_cstr(w->sending_app, "LAB"));
        ck_assert(px_str_eq_cstr(w->sending_facility, "HOSP"));
        ck_assert(w->has_hash);
        ck_assert_int_eq(w->hash[0], (unsigned char)cid[0]);
        ck_assert_int_eq(w->has_ack, i_msg % 2 == 0);
        if (w->has_ack) {
            ck_assert(px_str_eq_cstr(w->ack_code, "AA"));
            ck_assert(px_str_eq_cstr(w->ack, "MSH|^~\\&|ACK\rMSA|AA|x\r"));
        }
    }
    ck_assert_int_eq(per_feed[0], 5);
    ck_assert_int_eq(per_feed[1], 5);
    ck_assert_int_eq(per_feed[2], 5);
    ck_assert_ptr_null(ledger_read_outbox_row(r, 0)); /* wrong kind */
    ck_assert_ptr_null(ledger_read_window_row(r, 15));
    ledger_read_destroy(r);

    /* since and max_scan bound the walk. */
    ck_assert_int_eq(ledger_read_window(100, 1000, 1050, NULL, &r, &err), PX_OK);
    ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
    ck_assert_uint_eq(ledger_read_count(r), 10);
    ledger_read_destroy(r);
    ck_assert_int_eq(ledger_read_window(100, 7, 0, NULL, &r, &err), PX_OK);
    ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
    ck_assert_uint_eq(ledger_read_count(r), 7);
    ledger_read_destroy(r);
    ck_assert_int_eq(ledger_read_window(0, 7, 0, NULL, &r, &err), PX_ERR_INVAL);
    ledger_close(l);
}
END_TEST

START_TEST(outbox_of_100k_rows_streams_in_bounded_pages_in_order)
{
    enum { N = 100000, PAGE = 1000 };
    ledger_t *l = open_ledger();
    ledger_close(l);
    /* Fill the outbox directly: the point here is reading it back. */
    sqlite3 *db = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "BEGIN;"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                     " WHERE i < 100000)"
                     " INSERT INTO messages (id, received_at, feed, peer, sending_app,"
                     " sending_facility, receiving_app, receiving_facility, type,"
                     " trigger_event, control_id, version, config_version, state, reason)"
                     " SELECT i, i, 'lab', '', 'LAB', 'H', 'EHR', 'H', 'ORU', 'R01',"
                     " 'C' || i, '2.5', 1, 'received', '' FROM n;"
                     "INSERT INTO bodies SELECT id, CAST('MSH|body ' || id AS BLOB) FROM messages;"
                     "INSERT INTO outbox (leg, seq, message, ordering_key, attempts, queued_at)"
                     " SELECT 'fhir', id, id, 'k' || (id % 97), 0, id FROM messages;"
                     "INSERT INTO outbox (leg, seq, message, ordering_key, attempts, queued_at)"
                     " SELECT 'legacy', id, id, 'k', 0, id FROM messages WHERE id % 10 = 0;"
                     "COMMIT",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    atomic_store(&lt_notified, 0);
    l = open_ledger();
    int64_t after = 0;
    size_t total = 0, pages = 0, max_page = 0;
    px_error err;
    for (;;) {
        ledger_read_t *r = NULL;
        ck_assert_int_eq(ledger_read_outbox(LEDGER_LEG_FHIR, after, PAGE, true,
                                            (void *)(uintptr_t)pages, &r, &err),
                         PX_OK);
        /* The asynchronous path, as the event loop uses it. */
        ledger_read_submit(l, r);
        ledger_read_t *got = NULL;
        for (int spin = 0; got == NULL && spin < 10000; spin++) {
            got = ledger_take_completed_reads(l);
            if (got == NULL)
                usleep(1000);
        }
        ck_assert_ptr_eq(got, r);
        ck_assert_ptr_null(ledger_read_next(got));
        ck_assert_uint_eq((uintptr_t)ledger_read_user(got), pages);
        ck_assert_int_eq(ledger_read_kind_of(got), LEDGER_READ_OUTBOX);
        ck_assert_int_eq(ledger_read_result(got, &err), PX_OK);
        size_t n = ledger_read_count(got);
        ck_assert_uint_le(n, PAGE);
        if (n > max_page)
            max_page = n;
        for (size_t i = 0; i < n; i++) {
            const ledger_outbox_row *row = ledger_read_outbox_row(got, i);
            ck_assert_int_eq(row->seq, after + 1);
            ck_assert_int_eq(row->message, row->seq);
            ck_assert_int_eq(row->leg, LEDGER_LEG_FHIR);
            ck_assert(px_str_eq_cstr(row->feed, "lab"));
            char want[40];
            snprintf(want, sizeof(want), "MSH|body %lld", (long long)row->seq);
            ck_assert(px_str_eq_cstr(px_msg_bytes(row->body), want));
            after = row->seq;
        }
        total += n;
        pages++;
        bool more = ledger_read_more(got);
        ledger_read_destroy(got);
        if (!more)
            break;
        ck_assert_uint_lt(pages, N / PAGE + 2);
    }
    ck_assert_uint_eq(total, N);
    ck_assert_uint_eq(max_page, PAGE);
    ck_assert_uint_eq(pages, N / PAGE);
    ck_assert_int_ge(atomic_load(&lt_notified), (int)pages);

    /* The other leg is paged separately; a huge limit is capped. */
    ledger_read_t *r = NULL;
    ck_assert_int_eq(ledger_read_outbox(LEDGER_LEG_LEGACY, 0, 1000000, false, NULL, &r, &err),
                     PX_OK);
    ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
    ck_assert_uint_eq(ledger_read_count(r), LEDGER_PAGE_MAX_ROWS);
    ck_assert(ledger_read_more(r));
    ck_assert_int_eq(ledger_read_outbox_row(r, 0)->seq, 10);
    ck_assert_ptr_null(ledger_read_outbox_row(r, 0)->body); /* not asked for */
    ledger_read_destroy(r);
    ledger_close(l);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(an_outbox_page_stops_once_its_bodies_reach_the_byte_limit)
{
    ledger_t *l = open_ledger();
    for (int i = 0; i < 20; i++)
        ledger_submit(l, lt_message_op("lab", "BIG", i, 1024 * 1024, NULL));
    must_complete(l);
    ledger_read_t *r = NULL;
    px_error err;
    ck_assert_int_eq(ledger_read_outbox(LEDGER_LEG_FHIR, 0, 100, true, NULL, &r, &err), PX_OK);
    ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
    ck_assert_uint_eq(ledger_read_count(r), LEDGER_PAGE_MAX_BYTES / (1024 * 1024));
    ck_assert(ledger_read_more(r));
    ledger_read_destroy(r);
    ledger_close(l);
}
END_TEST

static void set_leg(ledger_t *l, int64_t id, ledger_leg_kind leg, ledger_leg_state state)
{
    ledger_op_t *op = NULL;
    ck_assert_int_eq(ledger_op_create(NULL, &op, NULL), PX_OK);
    ledger_leg_rec g = {
        .message = id, .leg = leg, .state = state, .attempts = 1, .updated_at_ms = 7};
    ck_assert_int_eq(ledger_op_add_leg(op, &g, NULL), PX_OK);
    ledger_submit(l, op);
}

START_TEST(recovery_marks_in_flight_legacy_legs_unknown_and_unsettled_legs_page)
{
    ledger_t *l = open_ledger();
    for (int i = 0; i < 10; i++)
        ledger_submit(l, lt_message_op("lab", "U", i, 50, NULL));
    must_complete(l);
    /* 1, 2: legacy in flight; 3: fhir in flight; 4: legacy held; 5..10: delivered both. */
    set_leg(l, 1, LEDGER_LEG_LEGACY, LEDGER_LEG_IN_FLIGHT);
    set_leg(l, 2, LEDGER_LEG_LEGACY, LEDGER_LEG_IN_FLIGHT);
    set_leg(l, 3, LEDGER_LEG_FHIR, LEDGER_LEG_IN_FLIGHT);
    set_leg(l, 4, LEDGER_LEG_LEGACY, LEDGER_LEG_HELD);
    for (int id = 1; id <= 10; id++) {
        if (id >= 5)
            set_leg(l, id, LEDGER_LEG_LEGACY, LEDGER_LEG_DELIVERED);
        if (id != 3)
            set_leg(l, id, LEDGER_LEG_FHIR, LEDGER_LEG_DELIVERED);
    }
    must_complete(l);
    ledger_close(l);

    ledger_options opt;
    lt_options(&opt, "ledger.db");
    opt.recover_in_flight = true;
    l = open_opts(&opt);
    ledger_stats st;
    ledger_stats_get(l, &st);
    ck_assert_uint_eq(st.recovered_unknown, 2);
    ck_assert_uint_eq(st.recovered_pending, 1);

    /* Unsettled: 3/fhir pending (recovered), 4/legacy held; page of one row at a time. */
    int64_t after = 0;
    int64_t want_msg[] = {3, 4};
    ledger_leg_kind want_leg[] = {LEDGER_LEG_FHIR, LEDGER_LEG_LEGACY};
    ledger_leg_state want_state[] = {LEDGER_LEG_PENDING, LEDGER_LEG_HELD};
    for (int i = 0; i < 2; i++) {
        ledger_read_t *r = NULL;
        px_error err;
        ck_assert_int_eq(ledger_read_unsettled(after, 1, NULL, &r, &err), PX_OK);
        ck_assert_int_eq(ledger_read_run(l, r, &err), PX_OK);
        ck_assert_uint_eq(ledger_read_count(r), 1);
        const ledger_leg_row *g = ledger_read_leg_row(r, 0);
        ck_assert_int_eq(g->message, want_msg[i]);
        ck_assert_int_eq(g->leg, want_leg[i]);
        ck_assert_int_eq(g->state, want_state[i]);
        ck_assert(px_str_eq_cstr(g->feed, "lab"));
        ck_assert(px_str_eq_cstr(g->control_id, "U"));
        ck_assert_int_eq(ledger_read_more(r), i == 0);
        after = g->message;
        ledger_read_destroy(r);
    }
    ledger_close(l);

    sqlite3 *db = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs WHERE leg = 'legacy' AND"
                                " state = 'unknown' AND message IN (1, 2)"),
                     2);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM divergences WHERE kind ="
                                " 'unknown_outcome' AND message IN (1, 2)"),
                     2);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs WHERE state = 'in_flight'"), 0);
    sqlite3_close(db);

    /* Without the option nothing changes (a reviewer's tool must not recover). */
    lt_options(&opt, "ledger.db");
    l = open_opts(&opt);
    ledger_stats_get(l, &st);
    ck_assert_uint_eq(st.recovered_unknown, 0);
    ledger_close(l);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "divergences"), 2);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(the_reader_checkpoints_as_the_wal_grows)
{
    ledger_options opt;
    lt_options(&opt, "ledger.db");
    opt.checkpoint_bytes = 256 * 1024;
    opt.journal_size_limit = 1024 * 1024;
    ledger_t *l = open_opts(&opt);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 20; i++)
            ledger_submit(l, lt_message_op("lab", "K", i, 8192, NULL));
        must_complete(l);
    }
    /* Checkpoints run on the reader thread: give it a moment after the last commit. */
    ledger_stats st;
    for (int i = 0; i < 200; i++) {
        ledger_stats_get(l, &st);
        if (st.checkpoints >= 2)
            break;
        usleep(10 * 1000);
    }
    ck_assert_uint_ge(st.checkpoints, 2);
    ck_assert_uint_gt(st.wal_bytes, 0);
    struct stat sb;
    ck_assert_int_eq(stat(lt_path("ledger.db"), &sb), 0);
    ck_assert_int_gt(sb.st_size, 16384 * 10); /* pages reached the database file */
    ck_assert_int_eq(stat(lt_path("ledger.db-wal"), &sb), 0);
    /* Reset and truncated to journal_size_limit, not grown without bound (400 × 8 KiB
     * bodies would need several MiB of WAL). */
    ck_assert_int_le(sb.st_size, 4 * 1024 * 1024);
    ledger_close(l);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

TCase *ledger_tcase_reads(void)
{
    TCase *tc = tcase_create("reads");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, window_refill_returns_the_newest_messages_per_feed_with_their_acks);
    tcase_add_test(tc, outbox_of_100k_rows_streams_in_bounded_pages_in_order);
    tcase_add_test(tc, an_outbox_page_stops_once_its_bodies_reach_the_byte_limit);
    tcase_add_test(tc, recovery_marks_in_flight_legacy_legs_unknown_and_unsettled_legs_page);
    tcase_add_test(tc, the_reader_checkpoints_as_the_wal_grows);
    return tc;
}
