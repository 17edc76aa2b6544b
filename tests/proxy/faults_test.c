/* The EHR misbehaves (RELIABILITY B5, B7): too slow, a late ACK, closing mid-ACK, negative
 * ACKs, and ACKs that are malformed or do not echo the control id. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tcases.h"

#define SQL_LEG_STATE                                                                              \
    "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"                              \
    " WHERE m.control_id = ?1 AND l.leg = 'legacy' AND l.state = "
#define SQL_DIVERGENCE                                                                             \
    "SELECT count(*) FROM divergences d JOIN messages m ON m.id = d.message"                       \
    " WHERE m.control_id = ?1 AND d.kind = "
#define SQL_LEG_ACK                                                                                \
    "SELECT l.ack FROM legs l JOIN messages m ON m.id = l.message"                                 \
    " WHERE m.control_id = ?1 AND l.leg = 'legacy'"

static pxt_bytes send_one(pxt_client *c, const char *ctl, unsigned timeout_ms)
{
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), ctl, NULL, NULL);
    pxt_client_send(c, msg, len);
    return pxt_client_ack(c, timeout_ms);
}

START_TEST(ack_timeout_answers_ar_207_and_leaves_the_leg_unknown)
{
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--delay-ms", "1500", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, "\"ack_timeout_ms\": 300, \"breaker_failures\": 0", NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    uint64_t t0 = pxt_now_ms();
    pxt_bytes ack = send_one(&c, "SLOWMOCK1", 5000);
    uint64_t took = pxt_now_ms() - t0;
    pxt_assert_ack(&ack, "AR", "SLOWMOCK1");
    pxt_assert_err_code(&ack, "207");
    ck_assert(pxt_ack_id_starts(&ack, "PX"));
    ck_assert_msg(took >= 250 && took < 1400, "the AR came after %llu ms (ACK timeout 300 ms)",
                  (unsigned long long)took);
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE "'unknown'", "SLOWMOCK1", 1, 5000), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_DIVERGENCE "'unknown_outcome'", "SLOWMOCK1"), 1);
    /* The EHR did get it (it may have filed it): that is why the leg is unknown. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 2000), 1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_late_ack_is_never_matched_to_the_next_message)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_fake_opts fo = {.slow_ms = 1500};
    pxt_fake_start(&e.mock, e.dir, "fake", e.ehr_port, &fo);
    pxt_env_config(&e, "\"ack_timeout_ms\": 400, \"breaker_failures\": 0", NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "SLOW0001", 5000);
    pxt_assert_ack(&ack, "AR", "SLOW0001");
    pxt_assert_err_code(&ack, "207");
    pxt_bytes_free(&ack);
    /* Sent while the EHR still owes the first ACK: it must get its own answer. */
    for (int i = 0; i < 3; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "NEXT%04d", i);
        ack = send_one(&c, ctl, 5000);
        pxt_assert_ack(&ack, "AA", ctl);
        ck_assert(pxt_ack_id_starts(&ack, "FAKE"));
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    /* Wait for the late ACK's moment, then check where everything went. */
    pxt_sleep_ms(1500);
    ck_assert_uint_eq(pxt_file_count(e.mock.out_path, "\nconn=1 ctl=SLOW0001\n"), 1);
    ck_assert_msg(pxt_file_count(e.mock.out_path, "\nconn=1 ctl=NEXT") == 0,
                  "the next message went out on the connection that still owed an ACK");
    ck_assert_uint_eq(pxt_file_count(e.mock.out_path, "\nconn=2 ctl=NEXT0000\n"), 1);
    ck_assert_msg(pxt_file_count(e.mock.out_path, "late conn=1 ctl=SLOW0001 written=0") == 1,
                  "the connection with the late ACK was not reset");
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE "'unknown'", "SLOW0001", 1, 5000), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_LEG_STATE "'delivered'", "NEXT0000"), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(*) FROM divergences d JOIN messages m"
                                 " ON m.id = d.message WHERE m.control_id LIKE 'NEXT%'",
                                 NULL),
                     0);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(ehr_closing_mid_ack_answers_ar_207_and_leaves_the_leg_unknown)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_fake_opts fo = {0};
    pxt_fake_start(&e.mock, e.dir, "fake", e.ehr_port, &fo);
    pxt_env_config(&e, "\"breaker_failures\": 0", NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "HALF0001", 5000);
    pxt_assert_ack(&ack, "AR", "HALF0001");
    pxt_assert_err_code(&ack, "207");
    pxt_bytes_free(&ack);
    ack = send_one(&c, "AFTER001", 5000);
    pxt_assert_ack(&ack, "AA", "AFTER001");
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE "'unknown'", "HALF0001", 1, 5000), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_DIVERGENCE "'unknown_outcome'", "HALF0001"), 1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(an_ae_from_the_ehr_is_relayed_byte_for_byte)
{
    static const char raw[] = "MSH|^~\\&|EHRAPP|EHRFAC|LABSYS|LABFAC|20240101120002||ACK^R01^ACK|"
                              "EHR-ACK-77|P|2.5.1\r"
                              "MSA|AE|RAW00001|odd text kept as is\r"
                              "ERR||OBX^1^5|103^Table value not found^HL70357|E||||x \\T\\ y\r"
                              "ZXX|vendor segment\r";
    pxt_env e;
    pxt_env_init(&e);
    pxt_fake_opts fo = {.raw_ack = raw, .raw_ack_len = sizeof(raw) - 1};
    pxt_fake_start(&e.mock, e.dir, "fake", e.ehr_port, &fo);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "RAW00001", 5000);
    ck_assert_msg(ack.len == sizeof(raw) - 1 && memcmp(ack.ptr, raw, ack.len) == 0,
                  "the EHR's AE was not relayed unchanged; got: %.*s", (int)ack.len, ack.ptr);
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE "'rejected'", "RAW00001", 1, 5000), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"
                                 " WHERE m.control_id = ?1 AND l.ack_code = 'AE'",
                                 "RAW00001"),
                     1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(mock_ehr_negative_acks_are_relayed_unchanged)
{
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--nak-rate", "1", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < 3; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "AE%05d", i);
        pxt_bytes ack = send_one(&c, ctl, 5000);
        pxt_assert_ack(&ack, "AE", ctl);
        ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
        ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_LEG_STATE "'rejected'", ctl, 1, 5000), 1);
        pxt_bytes leg;
        ck_assert(pxt_sql_blob(e.db_path, SQL_LEG_ACK, ctl, &leg));
        ck_assert_msg(leg.len == ack.len && memcmp(leg.ptr, ack.ptr, ack.len) == 0,
                      "the sender's AE differs from the EHR's");
        pxt_bytes_free(&leg);
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    pxt_env_finish(&e);
}
END_TEST

/* Spoiled ACKs under require_msa2_echo (the default): AR 207 and an ack_anomaly. */
static const char *const bad_acks[] = {"wrong-msa2", "garbage", "no-msa", "blank-msa2"};

START_TEST(a_spoiled_ehr_ack_answers_ar_207_and_records_an_ack_anomaly)
{
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--bad-ack", bad_acks[_i], NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, "\"breaker_failures\": 0", NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < 2; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "BAD%d-%s", i, bad_acks[_i]);
        pxt_bytes ack = send_one(&c, ctl, 5000);
        pxt_assert_ack(&ack, "AR", ctl);
        pxt_assert_err_code(&ack, "207");
        ck_assert(pxt_ack_id_starts(&ack, "PX"));
        pxt_bytes_free(&ack);
        ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DIVERGENCE "'ack_anomaly'", ctl, 1, 5000), 1);
        ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_LEG_STATE "'delivered'", ctl), 0);
    }
    pxt_client_close(&c);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_blank_msa2_is_relayed_when_the_echo_is_not_required)
{
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--bad-ack", "blank-msa2", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, "\"require_msa2_echo\": false", NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "BLANK001", 5000);
    pxt_assert_ack(&ack, "AA", "");
    ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DIVERGENCE "'ack_anomaly'", "BLANK001", 1, 5000),
                     1);
    pxt_bytes leg;
    ck_assert(pxt_sql_blob(e.db_path, SQL_LEG_ACK, "BLANK001", &leg));
    ck_assert_msg(leg.len == ack.len && memcmp(leg.ptr, ack.ptr, ack.len) == 0,
                  "the relayed ACK differs from the EHR's");
    pxt_bytes_free(&leg);
    pxt_bytes_free(&ack);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_upstream_faults(void)
{
    TCase *tc = tcase_create("upstream_faults");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ack_timeout_answers_ar_207_and_leaves_the_leg_unknown);
    tcase_add_test(tc, a_late_ack_is_never_matched_to_the_next_message);
    tcase_add_test(tc, ehr_closing_mid_ack_answers_ar_207_and_leaves_the_leg_unknown);
    tcase_add_test(tc, an_ae_from_the_ehr_is_relayed_byte_for_byte);
    tcase_add_test(tc, mock_ehr_negative_acks_are_relayed_unchanged);
    tcase_add_loop_test(tc, a_spoiled_ehr_ack_answers_ar_207_and_records_an_ack_anomaly, 0,
                        (int)(sizeof(bad_acks) / sizeof(bad_acks[0])));
    tcase_add_test(tc, a_blank_msa2_is_relayed_when_the_echo_is_not_required);
    return tc;
}
