/* The EHR is down (nothing listens on its port): on_upstream_down hold, nak and queue
 * (RELIABILITY B4), and what happens when it comes back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tcases.h"

#define UPSTREAM_FAST "\"connect_timeout_ms\": 500, \"breaker_open_ms\": 200"
#define SQL_LEG_STATE_IS                                                                           \
    "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"                              \
    " WHERE m.control_id = ?1 AND l.leg = 'legacy' AND l.state = "

START_TEST(hold_sends_no_ack_and_closes_the_sender_after_the_bound)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_env_config(&e, UPSTREAM_FAST,
                   "\"on_upstream_down\": \"hold\", \"hold_close_after_ms\": 1000", NULL);
    pxt_serve_start(&e);

    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "HOLD0001", NULL, NULL);
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    uint64_t t0 = pxt_now_ms();
    pxt_client_send(&c, msg, len);
    pxt_bytes ack;
    pxt_read r = pxt_client_read(&c, 6000, &ack);
    uint64_t took = pxt_now_ms() - t0;
    ck_assert_msg(r != PXT_READ_FRAME, "hold must not answer; got: %.*s", (int)ack.len, ack.ptr);
    ck_assert_msg(r == PXT_READ_CLOSED, "the held connection was not closed within 6 s");
    ck_assert_msg(took >= 900 && took <= 4000,
                  "the held connection closed after %llu ms; the bound is 1000 ms",
                  (unsigned long long)took);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE_IS "'failed'", "HOLD0001", 1, 5000), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM sender_acks", NULL), 0);

    /* The EHR comes back: the sender's resend (a new MSH-7) is forwarded, not answered from
     * the retransmission window, and gets the EHR's own ACK. */
    pxt_mock_start(&e, NULL);
    pxt_serve_wait_log(&e, "\"event\":\"upstream_connected\"", 1, 10000);
    len = pxt_msg(msg, sizeof(msg), "HOLD0001", "20240101120500", NULL);
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    ack = pxt_client_ack(&c, 10000);
    pxt_assert_ack(&ack, "AA", "HOLD0001");
    ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 5000), 1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(nak_answers_ar_with_err_207_while_the_ehr_is_down)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_env_config(&e, UPSTREAM_FAST, "\"on_upstream_down\": \"nak\"", NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < 3; i++) {
        char ctl[32], msg[1024];
        snprintf(ctl, sizeof(ctl), "NAK%04d", i);
        size_t len = pxt_msg(msg, sizeof(msg), ctl, NULL, NULL);
        pxt_client_send(&c, msg, len);
        pxt_bytes ack = pxt_client_ack(&c, 10000);
        pxt_assert_ack(&ack, "AR", ctl);
        pxt_assert_err_code(&ack, "207");
        ck_assert(pxt_ack_id_starts(&ack, "PX"));
        ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE_IS "'failed'", ctl, 1, 5000), 1);
        pxt_bytes stored;
        ck_assert(pxt_sql_blob(e.db_path,
                               "SELECT a.ack FROM sender_acks a JOIN messages m"
                               " ON m.id = a.message WHERE m.control_id = ?1 AND a.code = 'AR'",
                               ctl, &stored));
        ck_assert(stored.len == ack.len && memcmp(stored.ptr, ack.ptr, ack.len) == 0);
        pxt_bytes_free(&stored);
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(queue_acks_once_durable_and_delivers_in_order_when_the_ehr_returns)
{
    enum { N = 8 };
    pxt_env e;
    pxt_env_init(&e);
    pxt_env_config(&e, UPSTREAM_FAST, "\"on_upstream_down\": \"queue\"", NULL);
    pxt_serve_start(&e);

    char *msgs[N];
    size_t lens[N];
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "QUEUE%03d", i);
        msgs[i] = malloc(1024);
        ck_assert_ptr_nonnull(msgs[i]);
        lens[i] = pxt_msg(msgs[i], 1024, ctl, NULL, NULL);
        pxt_client_send(&c, msgs[i], lens[i]);
        pxt_bytes ack = pxt_client_ack(&c, 10000);
        pxt_assert_ack(&ack, "AA", ctl);
        ck_assert(pxt_ack_id_starts(&ack, "PX"));
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    /* Durable before the ACK: every message and its queue row are in the ledger. */
    ck_assert_int_eq(
        pxt_sql_int(e.db_path, "SELECT count(*) FROM messages WHERE state = 'received'", NULL), N);
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM outbox", NULL), N);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 300), 0);

    pxt_mock_start(&e, NULL);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, N, 20000), N);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(frames[i].len == lens[i] && memcmp(frames[i].ptr, msgs[i], lens[i]) == 0,
                      "message %d reached the EHR out of order or changed", i);
    pxt_frames_free(frames, n);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM outbox", NULL, 0, 10000), 0);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM legs WHERE leg = 'legacy'"
                                  " AND state = 'delivered'",
                                  NULL, N, 10000),
                     N);
    for (int i = 0; i < N; i++)
        free(msgs[i]);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_upstream_down(void)
{
    TCase *tc = tcase_create("upstream_down");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hold_sends_no_ack_and_closes_the_sender_after_the_bound);
    tcase_add_test(tc, nak_answers_ar_with_err_207_while_the_ehr_is_down);
    tcase_add_test(tc, queue_acks_once_durable_and_delivers_in_order_when_the_ehr_returns);
    return tc;
}
