/* Retransmissions (ARCHITECTURE data flow step 3, RELIABILITY B3): a resend of an answered
 * message gets the stored ACK bytes and is not forwarded again — also after a restart; a
 * resend while the original is in flight waits for it; the same control id with other
 * content is forwarded and recorded as a `duplicate`. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tcases.h"

static bool same(const pxt_bytes *a, const pxt_bytes *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static size_t record_count_of(const char *path, const char *ctl)
{
    pxt_bytes *frames;
    size_t n = pxt_record_read(path, &frames), count = 0;
    for (size_t i = 0; i < n; i++) {
        char id[64];
        if (pxt_field(frames[i].ptr, frames[i].len, "MSH", 10, id, sizeof(id)) &&
            strcmp(id, ctl) == 0)
            count++;
    }
    pxt_frames_free(frames, n);
    return count;
}

/* Rows of resends answered from the window whose stored ACK is the original's, byte for byte. */
static const char SQL_RESEND_ACKS[] =
    "SELECT count(*) FROM messages r JOIN sender_acks ra ON ra.message = r.id"
    " JOIN messages o ON o.control_id = r.control_id AND o.state = 'received'"
    " JOIN sender_acks oa ON oa.message = o.id"
    " WHERE r.control_id = ?1 AND r.state = 'filtered' AND ra.ack = oa.ack";

START_TEST(a_resend_after_the_ack_gets_the_stored_ack_and_is_not_forwarded)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "RESEND01", "20240101120000", NULL);
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    pxt_bytes first = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&first, "AA", "RESEND01");
    /* The sender resends with a new MSH-7, on a new connection, as senders do. */
    pxt_client_close(&c);
    len = pxt_msg(msg, sizeof(msg), "RESEND01", "20240101120109", NULL);
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    pxt_bytes second = pxt_client_ack(&c, 5000);
    ck_assert_msg(same(&first, &second), "the resend was not answered with the stored ACK:\n%.*s",
                  (int)second.len, second.ptr);
    pxt_client_close(&c);
    pxt_sleep_ms(200);
    ck_assert_uint_eq(record_count_of(e.record_path, "RESEND01"), 1);
    /* The resend is a ledger row too, with the exact ACK bytes it was given. */
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_RESEND_ACKS, "RESEND01", 1, 5000), 1);
    pxt_bytes_free(&first);
    pxt_bytes_free(&second);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_resend_while_the_original_is_in_flight_waits_and_is_forwarded_once)
{
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--delay-ms", "500", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char a[1024], b[1024];
    size_t alen = pxt_msg(a, sizeof(a), "INFLIGHT1", "20240101120000", NULL);
    size_t blen = pxt_msg(b, sizeof(b), "INFLIGHT1", "20240101120002", NULL);
    pxt_client c1, c2;
    pxt_client_open(&c1, e.feed_port);
    pxt_client_open(&c2, e.feed_port);
    pxt_client_send(&c1, a, alen);
    pxt_sleep_ms(100);
    pxt_client_send(&c2, b, blen); /* while the EHR still holds the original */
    pxt_bytes ack1 = pxt_client_ack(&c1, 5000);
    pxt_bytes ack2 = pxt_client_ack(&c2, 5000);
    pxt_assert_ack(&ack1, "AA", "INFLIGHT1");
    ck_assert(pxt_ack_id_starts(&ack1, "MOCK"));
    ck_assert_msg(same(&ack1, &ack2), "the waiting resend got another answer:\n%.*s", (int)ack2.len,
                  ack2.ptr);
    pxt_client_close(&c1);
    pxt_client_close(&c2);
    pxt_sleep_ms(700);
    ck_assert_uint_eq(record_count_of(e.record_path, "INFLIGHT1"), 1);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_RESEND_ACKS, "INFLIGHT1", 1, 5000), 1);
    pxt_bytes_free(&ack1);
    pxt_bytes_free(&ack2);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(the_same_control_id_with_other_content_is_forwarded_as_a_duplicate)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char a[1024], b[1024];
    size_t alen = pxt_msg(a, sizeof(a), "DUPL0001", NULL, "5.5");
    size_t blen = pxt_msg(b, sizeof(b), "DUPL0001", NULL, "9.9");
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, a, alen);
    pxt_bytes ack1 = pxt_client_ack(&c, 5000);
    pxt_client_send(&c, b, blen);
    pxt_bytes ack2 = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack1, "AA", "DUPL0001");
    pxt_assert_ack(&ack2, "AA", "DUPL0001");
    ck_assert_msg(!same(&ack1, &ack2), "the different message was answered from the window");
    ck_assert(pxt_ack_id_starts(&ack2, "MOCK"));
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 2, 5000), 2);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, 2);
    ck_assert(frames[1].len == blen && memcmp(frames[1].ptr, b, blen) == 0);
    pxt_frames_free(frames, n);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM divergences d JOIN messages m"
                                  " ON m.id = d.message WHERE m.control_id = 'DUPL0001'"
                                  " AND d.kind = 'duplicate'",
                                  NULL, 1, 5000),
                     1);
    pxt_bytes_free(&ack1);
    pxt_bytes_free(&ack2);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(after_a_restart_a_resend_is_answered_from_the_refilled_window)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "RESTART1", "20240101120000", NULL);
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    pxt_bytes first = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&first, "AA", "RESTART1");
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM sender_acks", NULL, 1, 5000), 1);

    pxt_serve_stop(&e);
    pxt_serve_start(&e);
    len = pxt_msg(msg, sizeof(msg), "RESTART1", "20240101123000", NULL);
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    pxt_bytes second = pxt_client_ack(&c, 5000);
    ck_assert_msg(same(&first, &second),
                  "after the restart the resend was not answered with the stored ACK:\n%.*s",
                  (int)second.len, second.ptr);
    pxt_client_close(&c);
    pxt_sleep_ms(200);
    ck_assert_uint_eq(record_count_of(e.record_path, "RESTART1"), 1);
    pxt_bytes_free(&first);
    pxt_bytes_free(&second);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_retransmissions(void)
{
    TCase *tc = tcase_create("retransmissions");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_resend_after_the_ack_gets_the_stored_ack_and_is_not_forwarded);
    tcase_add_test(tc, a_resend_while_the_original_is_in_flight_waits_and_is_forwarded_once);
    tcase_add_test(tc, the_same_control_id_with_other_content_is_forwarded_as_a_duplicate);
    tcase_add_test(tc, after_a_restart_a_resend_is_answered_from_the_refilled_window);
    return tc;
}
