/* The writer groups queued ops into one transaction each, completes them in submit order
 * and assigns ids at submit. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
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

static ledger_t *open_ledger(const char *name)
{
    ledger_options opt;
    lt_options(&opt, name);
    ledger_t *l = NULL;
    px_error err;
    ck_assert_msg(ledger_open(&opt, &l, &err) == PX_OK, "%s", err.msg);
    return l;
}

START_TEST(ten_thousand_messages_are_grouped_durable_and_completed_in_submit_order)
{
    enum { N = 10000 };
    ledger_t *l = open_ledger("ledger.db");
    ledger_op_t **done = calloc(N, sizeof(*done));
    size_t taken = 0;
    for (size_t i = 0; i < N; i++) {
        char cid[32];
        snprintf(cid, sizeof(cid), "C%zu", i);
        ledger_op_t *op = lt_message_op(i % 2 ? "lab" : "adt", cid, 1000 + (int64_t)i, 2048,
                                        (void *)(uintptr_t)(i + 1));
        int64_t id = ledger_submit(l, op);
        ck_assert_int_eq(id, (int64_t)i + 1);
        /* Drain as the event loop would, while submitting. */
        for (ledger_op_t *c = ledger_take_completed(l); c != NULL; c = ledger_op_next(c))
            done[taken++] = c;
    }
    lt_take(l, done + taken, N - taken);
    for (size_t i = 0; i < N; i++) {
        px_error err;
        ck_assert_uint_eq((uintptr_t)ledger_op_user(done[i]), i + 1);
        ck_assert_int_eq(ledger_op_message_id(done[i], 0), (int64_t)i + 1);
        ck_assert_msg(ledger_op_result(done[i], &err) == PX_OK, "%s", err.msg);
    }
    for (size_t i = 0; i < N; i++)
        ledger_op_destroy(done[i]);
    free(done);

    ledger_stats st;
    ledger_stats_get(l, &st);
    ck_assert_uint_eq(st.ops_ok, N);
    ck_assert_uint_eq(st.ops_failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_gt(st.max_group, 1);
    ck_assert_uint_lt(st.commits, N);
    ck_assert_uint_eq(st.commit_failures, 0);
    ck_assert_uint_le(st.commit_p50_us, st.commit_p99_us);
    ck_assert_uint_gt(st.commit_p99_us, 0);
    ck_assert_int_eq(st.last_message_id, N);
    int notified = atomic_load(&lt_notified);
    ck_assert_int_ge(notified, 1);
    ck_assert_uint_le((uint64_t)notified, st.commits);
    ledger_close(l);

    const char *path = lt_path("ledger.db");
    ck_assert_int_eq(lt_count(path, "messages"), N);
    ck_assert_int_eq(lt_count(path, "bodies"), N);
    ck_assert_int_eq(lt_count(path, "legs"), 2 * N);
    ck_assert_int_eq(lt_count(path, "outbox"), N);
    sqlite3 *db = lt_db(path);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM messages WHERE instance = 'test-1'"), N);
    ck_assert_int_eq(lt_int(db, "SELECT min(length(body)) FROM bodies"), 2048);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM messages WHERE length(hash) = 32"), N);
    sqlite3_close(db);
    lt_assert_integrity(path);
}
END_TEST

static ledger_op_t *divergence_op(const char *detail)
{
    ledger_op_t *op = lt_message_op("lab", "D", 5, 64, NULL);
    ledger_divergence_rec d = {.message = LEDGER_OP_MESSAGE(0),
                               .kind = LEDGER_DIV_CONVERSION_GAP,
                               .detail = px_str_from_cstr(detail),
                               .at_ms = 5};
    ck_assert_int_eq(ledger_op_add_divergence(op, &d, NULL), PX_OK);
    return op;
}

START_TEST(a_record_that_breaks_a_constraint_fails_only_its_own_op)
{
    ledger_t *l = open_ledger("ledger.db");
    ledger_op_t *ops[4];
    int64_t a = ledger_submit(l, lt_message_op("lab", "A", 1, 64, NULL));
    int64_t b = ledger_submit(l, divergence_op("{not json"));
    ledger_op_t *c = NULL;
    ck_assert_int_eq(ledger_op_create(NULL, &c, NULL), PX_OK);
    ledger_leg_rec leg = {.message = 999999,
                          .leg = LEDGER_LEG_FHIR,
                          .state = LEDGER_LEG_DELIVERED,
                          .updated_at_ms = 1};
    ck_assert_int_eq(ledger_op_add_leg(c, &leg, NULL), PX_OK);
    ledger_submit(l, c);
    int64_t d = ledger_submit(l, divergence_op("{\"segments\": [\"ZPD\"]}"));
    lt_take(l, ops, 4);
    px_error err;
    ck_assert_int_eq(ledger_op_result(ops[0], &err), PX_OK);
    ck_assert_int_eq(ledger_op_result(ops[1], &err), PX_ERR_DB);
    ck_assert_int_eq(err.detail & 0xff, SQLITE_CONSTRAINT);
    ck_assert_int_eq(ledger_op_result(ops[2], &err), PX_ERR_DB);
    ck_assert_int_eq(err.detail, SQLITE_CONSTRAINT_FOREIGNKEY);
    ck_assert_int_eq(ledger_op_result(ops[3], &err), PX_OK);
    for (int i = 0; i < 4; i++)
        ledger_op_destroy(ops[i]);
    ledger_close(l);

    sqlite3 *db = lt_db(lt_path("ledger.db"));
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages WHERE id IN (%lld, %lld)",
             (long long)a, (long long)d);
    ck_assert_int_eq(lt_int(db, sql), 2);
    /* The failed op left nothing behind: its message went with its divergence. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages WHERE id = %lld", (long long)b);
    ck_assert_int_eq(lt_int(db, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM legs WHERE message = %lld", (long long)b);
    ck_assert_int_eq(lt_int(db, sql), 0);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM divergences"), 1);
    sqlite3_close(db);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(close_with_pending_ops_commits_them_all)
{
    enum { N = 3000 };
    ledger_t *l = open_ledger("ledger.db");
    for (int i = 0; i < N; i++)
        ledger_submit(l, lt_message_op("lab", "P", i, 512, NULL));
    ledger_close(l); /* no flush first */
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "messages"), N);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "outbox"), N);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(one_op_carries_a_batch_of_messages_with_consecutive_ids)
{
    ledger_t *l = open_ledger("ledger.db");
    ledger_submit(l, lt_message_op("lab", "FIRST", 1, 10, NULL));
    px_msg_t *frame = NULL;
    static const char batch[] = "BHS|^~\\&\rMSH|one\rMSH|two\rMSH|three\rBTS|3\r";
    ck_assert_int_eq(px_msg_create(batch, sizeof(batch) - 1, &frame, NULL), PX_OK);
    ledger_op_t *op = NULL;
    ck_assert_int_eq(ledger_op_create(NULL, &op, NULL), PX_OK);
    const char *parts[] = {"MSH|one", "MSH|two", "MSH|three"};
    for (int k = 0; k < 3; k++) {
        const char *at = strstr(px_msg_bytes(frame).ptr, parts[k]);
        ledger_message_rec m = {.received_at_ms = 2,
                                .feed = PX_LIT("lab"),
                                .control_id = PX_LIT("B"),
                                .state = LEDGER_MSG_RECEIVED,
                                .body = frame,
                                .body_part = px_str_make(at, strlen(parts[k]))};
        int64_t ref;
        ck_assert_int_eq(ledger_op_add_message(op, &m, &ref, NULL), PX_OK);
        ck_assert_int_eq(ref, LEDGER_OP_MESSAGE(k));
    }
    ledger_leg_rec leg = {.message = LEDGER_OP_MESSAGE(2),
                          .leg = LEDGER_LEG_LEGACY,
                          .state = LEDGER_LEG_DELIVERED,
                          .ack_code = PX_LIT("AA")};
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, NULL), PX_OK);
    ck_assert_int_eq(px_msg_refcount(frame), 4);
    ck_assert_int_eq(ledger_submit(l, op), 2);
    ck_assert_int_eq(ledger_op_message_id(op, 2), 4);
    ck_assert_int_eq(ledger_op_message_id(op, 3), 0);
    ledger_flush(l);
    /* The writer dropped its body references once the group was done. */
    ck_assert_int_eq(px_msg_refcount(frame), 1);
    px_msg_unref(frame);
    ledger_close(l);
    sqlite3 *db = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM bodies WHERE message = 3 AND"
                                " body = CAST('MSH|two' AS BLOB)"),
                     1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs WHERE message = 4 AND"
                                " ack_code = 'AA' AND state = 'delivered'"),
                     1);
    sqlite3_close(db);
}
END_TEST

START_TEST(op_builders_refuse_bad_references_and_leave_the_op_unchanged)
{
    ledger_op_t *op = NULL;
    px_error err;
    ck_assert_int_eq(ledger_op_create(NULL, &op, &err), PX_OK);
    ledger_leg_rec leg = {.message = LEDGER_OP_MESSAGE(0), .leg = LEDGER_LEG_LEGACY};
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, &err), PX_ERR_INVAL);
    leg.message = 0;
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, &err), PX_ERR_INVAL);
    leg.message = 5;
    leg.state = (ledger_leg_state)42;
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, &err), PX_ERR_INVAL);
    ledger_divergence_rec d = {.message = 5, .kind = (ledger_divergence_kind)LEDGER_DIV_KIND_COUNT};
    ck_assert_int_eq(ledger_op_add_divergence(op, &d, &err), PX_ERR_INVAL);
    px_msg_t *m1 = NULL, *m2 = NULL;
    ck_assert_int_eq(px_msg_create("MSH|a", 5, &m1, NULL), PX_OK);
    ck_assert_int_eq(px_msg_create("MSH|b", 5, &m2, NULL), PX_OK);
    ledger_message_rec m = {
        .state = LEDGER_MSG_RECEIVED, .body = m1, .body_part = px_msg_bytes(m2)};
    ck_assert_int_eq(ledger_op_add_message(op, &m, NULL, &err), PX_ERR_INVAL);
    ck_assert_int_eq(px_msg_refcount(m1), 1);
    m.body_part = px_str_sub(px_msg_bytes(m1), 2, 10);
    m.body_part.len = 10; /* runs past the end */
    ck_assert_int_eq(ledger_op_add_message(op, &m, NULL, &err), PX_ERR_INVAL);
    m.state = (ledger_msg_state)9;
    m.body_part = PX_STR_NULL;
    ck_assert_int_eq(ledger_op_add_message(op, &m, NULL, &err), PX_ERR_INVAL);

    ledger_t *l = open_ledger("ledger.db");
    ck_assert_int_eq(ledger_submit(l, op), 0); /* no message in it */
    ledger_flush(l);
    ledger_op_t *done = ledger_take_completed(l);
    ck_assert_ptr_eq(done, op);
    ck_assert_int_eq(ledger_op_result(done, &err), PX_OK);
    ledger_op_destroy(done);
    ledger_close(l);
    ck_assert_int_eq(lt_count(lt_path("ledger.db"), "messages"), 0);
    px_msg_unref(m1);
    px_msg_unref(m2);
}
END_TEST

START_TEST(every_record_kind_lands_with_its_values)
{
    ledger_t *l = open_ledger("ledger.db");
    int64_t id = ledger_submit(l, lt_message_op("lab", "R", 10, 32, NULL));
    ledger_op_t *op = NULL;
    ck_assert_int_eq(ledger_op_create(NULL, &op, NULL), PX_OK);
    ledger_leg_rec leg = {.message = id,
                          .leg = LEDGER_LEG_LEGACY,
                          .state = LEDGER_LEG_DELIVERED,
                          .attempts = 2,
                          .ack_code = PX_LIT("AE"),
                          .ack = PX_LIT("MSH|ack\r"),
                          .error = PX_LIT("late"),
                          .latency_us = 1234,
                          .updated_at_ms = 11};
    ck_assert_int_eq(ledger_op_add_leg(op, &leg, NULL), PX_OK);
    ledger_sender_ack_rec ack = {
        .message = id, .code = PX_LIT("AA"), .bytes = PX_LIT("MSH|first"), .sent_at_ms = 12};
    ck_assert_int_eq(ledger_op_add_sender_ack(op, &ack, NULL), PX_OK);
    ack.code = PX_LIT("AE");
    ack.bytes = PX_LIT("MSH|second");
    ck_assert_int_eq(ledger_op_add_sender_ack(op, &ack, NULL), PX_OK);
    ledger_outbox_rec ob = {.action = LEDGER_OUTBOX_UPDATE,
                            .message = id,
                            .leg = LEDGER_LEG_FHIR,
                            .attempts = 3,
                            .next_attempt_ms = 99};
    ck_assert_int_eq(ledger_op_add_outbox(op, &ob, NULL), PX_OK);
    ledger_divergence_rec d = {.message = id,
                               .kind = LEDGER_DIV_ACK_ANOMALY,
                               .detail = PX_LIT("{\"msa2\":\"\"}"),
                               .at_ms = 13};
    ck_assert_int_eq(ledger_op_add_divergence(op, &d, NULL), PX_OK);
    ledger_config_reload_rec rl = {.version = 4,
                                   .hash = PX_LIT("abcd"),
                                   .who = PX_LIT("ops"),
                                   .ok = false,
                                   .reason = PX_LIT("feeds[0]: bad"),
                                   .at_ms = 14};
    ck_assert_int_eq(ledger_op_add_config_reload(op, &rl, NULL), PX_OK);
    ledger_audit_rec au = {.at_ms = 15,
                           .actor = PX_LIT("rev"),
                           .action = PX_LIT("show"),
                           .target = PX_LIT("message:1"),
                           .detail = PX_LIT("cli")};
    ck_assert_int_eq(ledger_op_add_audit(op, &au, NULL), PX_OK);
    ledger_submit(l, op);
    ledger_flush(l);
    ledger_op_t *done = ledger_take_completed(l);
    int n = 0;
    while (done != NULL) {
        ledger_op_t *next = ledger_op_next(done);
        ck_assert_int_eq(ledger_op_result(done, NULL), PX_OK);
        ledger_op_destroy(done);
        done = next;
        n++;
    }
    ck_assert_int_eq(n, 2);

    ck_assert_int_eq(ledger_op_create(NULL, &op, NULL), PX_OK);
    ledger_resolution_rec res = {
        .divergence = 1, .who = PX_LIT("rev"), .reason = PX_LIT("expected"), .at_ms = 16};
    ck_assert_int_eq(ledger_op_add_resolution(op, &res, NULL), PX_OK);
    ob.action = LEDGER_OUTBOX_DELETE;
    ck_assert_int_eq(ledger_op_add_outbox(op, &ob, NULL), PX_OK);
    ledger_submit(l, op);
    ledger_close(l);

    sqlite3 *db = lt_db(lt_path("ledger.db"));
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs WHERE leg = 'legacy' AND"
                                " state = 'delivered' AND attempts = 2 AND ack_code = 'AE' AND"
                                " ack = CAST('MSH|ack' || char(13) AS BLOB) AND error = 'late'"
                                " AND latency_us = 1234 AND updated_at = 11"),
                     1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM legs"), 2);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM sender_acks WHERE code = 'AE' AND"
                                " ack = CAST('MSH|second' AS BLOB)"),
                     1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM sender_acks"), 1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM outbox"), 0);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM divergences WHERE kind = 'ack_anomaly'"
                                " AND json_extract(detail, '$.msa2') = ''"),
                     1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM config_reloads WHERE version = 4 AND"
                                " ok = 0 AND reason = 'feeds[0]: bad'"),
                     1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM audit WHERE action = 'show'"), 1);
    ck_assert_int_eq(lt_int(db, "SELECT count(*) FROM resolutions WHERE divergence = 1"), 1);
    sqlite3_close(db);
    lt_assert_integrity(lt_path("ledger.db"));
}
END_TEST

START_TEST(op_builders_report_allocation_failures_and_stay_consistent)
{
    px_msg_t *body = NULL;
    ck_assert_int_eq(px_msg_create("MSH|x", 5, &body, NULL), PX_OK);
    ledger_message_rec m = {.feed = PX_LIT("lab"), .control_id = PX_LIT("A"), .body = body};
    ledger_leg_rec leg = {.message = LEDGER_OP_MESSAGE(0), .error = PX_LIT("e")};
    int failures = 0;
    for (long n = 0; n < 10; n++) {
        px_alloc_fail_after(n);
        ledger_op_t *op = NULL;
        px_error err;
        px_err e = ledger_op_create(NULL, &op, &err);
        if (e == PX_OK) {
            e = ledger_op_add_message(op, &m, NULL, &err);
            if (e == PX_OK)
                e = ledger_op_add_leg(op, &leg, &err);
        }
        px_alloc_fail_after(-1);
        if (e != PX_OK) {
            ck_assert_int_eq(e, PX_ERR_NOMEM);
            ck_assert_int_eq(err.code, PX_ERR_NOMEM);
            failures++;
        }
        /* Whatever was added holds exactly one body reference; destroy drops it. */
        ck_assert_uint_le(px_msg_refcount(body), 2);
        ledger_op_destroy(op);
        ck_assert_uint_eq(px_msg_refcount(body), 1);
    }
    ck_assert_int_eq(failures, 3); /* op, message record, leg record */
    px_msg_unref(body);
}
END_TEST

TCase *ledger_tcase_group_commit(void)
{
    TCase *tc = tcase_create("group_commit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ten_thousand_messages_are_grouped_durable_and_completed_in_submit_order);
    tcase_add_test(tc, a_record_that_breaks_a_constraint_fails_only_its_own_op);
    tcase_add_test(tc, close_with_pending_ops_commits_them_all);
    tcase_add_test(tc, one_op_carries_a_batch_of_messages_with_consecutive_ids);
    tcase_add_test(tc, op_builders_refuse_bad_references_and_leave_the_op_unchanged);
    tcase_add_test(tc, every_record_kind_lands_with_its_values);
    tcase_add_test(tc, op_builders_report_allocation_failures_and_stay_consistent);
    return tc;
}
