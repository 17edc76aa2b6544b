/* Transparency (ARCHITECTURE principle 1, RELIABILITY (c)): odd but readable messages go to
 * the EHR byte for byte and its answer comes back; frames that cannot be read, or whose
 * MSH-10 is empty, are refused, recorded, and never forwarded. */
#define _GNU_SOURCE /* memmem */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"
#include "tcases.h"

#define SQL_LEG_ACK                                                                                \
    "SELECT l.ack FROM legs l JOIN messages m ON m.id = l.message"                                 \
    " WHERE m.control_id = ?1 AND l.leg = 'legacy'"

typedef struct odd_case {
    const char *name;
    const char *ctl;
    const char *bytes;
} odd_case;

static const odd_case odd_cases[] = {
    {"unknown type", "ODD-ZZZ",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ZZZ^Z01|ODD-ZZZ|P|2.5.1\r"
     "ZZ1|1|anything at all\r"},
    {"version 2.9", "ODD-V29",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ADT^A01^ADT_A01|ODD-V29|P|2.9\r"
     "EVN|A01|20240101120000\rPID|1||T0002^^^HOSP^MR||TEST^PATIENT\r"},
    {"bad escapes", "ODD-ESC",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01^ORU_R01|ODD-ESC|P|2.5.1\r"
     "OBX|1|TX|NOTE^Note^L||an \\Q\\ unknown escape, a \\X4G\\ bad hex and \\H unterminated\r"},
    {"undeclared Latin-1", "ODD-LATIN1",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ADT^A08^ADT_A01|ODD-LATIN1|P|2.3\r"
     "PID|1||T0003^^^HOSP^MR||M\xfcLLER^REN\xe9||19700101|U\r"},
    {"LF separators", "ODD-LF",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01^ORU_R01|ODD-LF|P|2.5.1\n"
     "PID|1||T0004^^^HOSP^MR\nOBX|1|NM|GLU^Glucose^L||5.1|mmol/L\n"},
    {"CRLF separators", "ODD-CRLF",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01^ORU_R01|ODD-CRLF|P|2.5.1\r\n"
     "PID|1||T0005^^^HOSP^MR\r\n"},
    {"query (legacy only)", "QRY-0001",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||QBP^Q11^QBP_Q11|QRY-0001|P|2.5.1\r"
     "QPD|Q11^Query^HL7|Q0001|T0001\rRCP|I\r"},
    {"master file (legacy only)", "MFN-0001",
     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||MFN^M02^MFN_M02|MFN-0001|P|2.5.1\r"
     "MFI|PRA^Practitioner^HL70175||UPD|||AL\rMFE|MAD|U0001||D0001^DOC^TEST\r"},
};

#define ODD_COUNT (sizeof(odd_cases) / sizeof(odd_cases[0]))

START_TEST(odd_but_readable_messages_reach_the_ehr_byte_for_byte)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (size_t i = 0; i < ODD_COUNT; i++) {
        const odd_case *oc = &odd_cases[i];
        pxt_client_send(&c, oc->bytes, strlen(oc->bytes));
        pxt_bytes ack;
        pxt_read r = pxt_client_read(&c, 5000, &ack);
        ck_assert_msg(r == PXT_READ_FRAME, "%s: no answer (%s)", oc->name,
                      r == PXT_READ_CLOSED ? "closed" : "timeout");
        ck_assert_msg(pxt_ack_id_starts(&ack, "MOCK"), "%s: not the EHR's answer: %.*s", oc->name,
                      (int)ack.len, ack.ptr);
        char msa2[64];
        ck_assert_msg(
            pxt_field(ack.ptr, ack.len, "MSA", 2, msa2, sizeof(msa2)) && strcmp(msa2, oc->ctl) == 0,
            "%s: the answer does not echo %s: %.*s", oc->name, oc->ctl, (int)ack.len, ack.ptr);
        pxt_bytes leg;
        ck_assert_msg(pxt_sql_wait(e.db_path,
                                   "SELECT count(*) FROM legs l JOIN messages m"
                                   " ON m.id = l.message WHERE m.control_id = ?1"
                                   " AND l.leg = 'legacy' AND l.ack IS NOT NULL",
                                   oc->ctl, 1, 5000) == 1,
                      "%s: the legacy leg was not recorded", oc->name);
        ck_assert(pxt_sql_blob(e.db_path, SQL_LEG_ACK, oc->ctl, &leg));
        ck_assert_msg(leg.len == ack.len && memcmp(leg.ptr, ack.ptr, ack.len) == 0,
                      "%s: the answer relayed differs from the EHR's", oc->name);
        pxt_bytes_free(&leg);
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);

    pxt_bytes *frames;
    ck_assert_uint_eq(pxt_record_wait(e.record_path, ODD_COUNT, 5000), ODD_COUNT);
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, ODD_COUNT);
    for (size_t i = 0; i < ODD_COUNT; i++)
        ck_assert_msg(frames[i].len == strlen(odd_cases[i].bytes) &&
                          memcmp(frames[i].ptr, odd_cases[i].bytes, frames[i].len) == 0,
                      "%s: the EHR did not get the original bytes", odd_cases[i].name);
    pxt_frames_free(frames, n);
    ck_assert_int_eq(
        pxt_sql_int(e.db_path, "SELECT count(*) FROM messages WHERE state = 'received'", NULL),
        (int64_t)ODD_COUNT);
    pxt_env_finish(&e);
}
END_TEST

typedef struct bad_frame {
    const char *name;
    const char *bytes; /* NULL: built by the test */
    bool half_close;   /* shut down our side after writing */
} bad_frame;

static const bad_frame bad_frames[] = {
    {"no MSH", "\x0bPID|1||T0001^^^HOSP^MR||TEST^PATIENT\rOBX|1|NM|A||1\r\x1c\r", false},
    {"HTTP instead of MLLP", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", false},
    {"oversize", NULL, false},
    {"truncated then closed",
     "\x0bMSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01|TRUNC01|P|2.5.1\rPID|1",
     true},
};

/* Writes what it can: the proxy may close while a large frame is still going out. */
static void write_tolerant(pxt_client *c, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

START_TEST(unreadable_frames_are_refused_recorded_and_never_forwarded)
{
    const bad_frame *bf = &bad_frames[_i];
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, "\"max_message_bytes\": 2048",
                   "\"limits\": {\"frame_deadline_ms\": 1500}");
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    if (bf->bytes != NULL) {
        write_tolerant(&c, bf->bytes, strlen(bf->bytes));
    } else {
        char big[8192];
        size_t len = pxt_msg(big + 1, sizeof(big) - 3, "BIG00001", NULL, NULL);
        big[0] = 0x0b;
        while (len + 3 < sizeof(big) - 100)
            big[1 + len++] = 'X';
        big[1 + len++] = '\r';
        big[1 + len] = 0x1c;
        big[2 + len] = 0x0d;
        write_tolerant(&c, big, len + 3);
    }
    if (bf->half_close)
        pxt_client_shutdown(&c);
    pxt_bytes ack;
    pxt_read r = pxt_client_read(&c, 5000, &ack);
    ck_assert_msg(r != PXT_READ_FRAME, "%s: answered instead of refused: %.*s", bf->name,
                  (int)ack.len, ack.ptr);
    ck_assert_msg(r == PXT_READ_CLOSED, "%s: the connection was not closed within 5 s", bf->name);
    pxt_client_close(&c);
    ck_assert_msg(pxt_sql_wait(e.db_path, "SELECT count(*) FROM messages WHERE state = 'rejected'",
                               NULL, 1, 5000) == 1,
                  "%s: no ledger row for the refusal", bf->name);

    /* The proxy still serves, and the refused bytes never reached the EHR. */
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "GOOD0001", NULL, NULL);
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, len);
    ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AA", "GOOD0001");
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_msg(n == 1, "%s: the EHR got %zu messages, want only the good one", bf->name, n);
    ck_assert(frames[0].len == len && memcmp(frames[0].ptr, msg, len) == 0);
    pxt_frames_free(frames, n);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(an_empty_msh10_gets_ar_naming_msh10_and_is_not_forwarded)
{
    static const char msg[] =
        "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01^ORU_R01||P|2.5.1\r"
        "PID|1||T0001^^^HOSP^MR\r";
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, sizeof(msg) - 1);
    pxt_bytes ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AR", "");
    ck_assert(pxt_ack_id_starts(&ack, "PX"));
    const char *err = memmem(ack.ptr, ack.len, "\rERR|", 5);
    ck_assert_msg(err != NULL, "no ERR segment: %.*s", (int)ack.len, ack.ptr);
    ck_assert_msg(memmem(err, ack.len - (size_t)(err - ack.ptr), "MSH-10", 6) != NULL ||
                      memmem(err, ack.len - (size_t)(err - ack.ptr), "MSH^1^10", 8) != NULL,
                  "the ERR segment does not name MSH-10: %.*s", (int)ack.len, ack.ptr);
    pxt_bytes_free(&ack);

    /* The connection stays usable; only the good message reaches the EHR. */
    char good[1024];
    size_t len = pxt_msg(good, sizeof(good), "GOOD0002", NULL, NULL);
    pxt_client_send(&c, good, len);
    ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AA", "GOOD0002");
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, 1);
    ck_assert(frames[0].len == len && memcmp(frames[0].ptr, good, len) == 0);
    pxt_frames_free(frames, n);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM messages WHERE state = 'rejected'"
                                  " AND control_id = '' AND reason LIKE '%MSH-10%'",
                                  NULL, 1, 5000),
                     1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(blank_bytes_between_frames_are_tolerated_past_the_frame_deadline)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, "\"limits\": {\"frame_deadline_ms\": 300}");
    pxt_serve_start(&e);

    /* Some senders end every frame with CR LF; an idle pause after that is not a stalled
     * frame. */
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < 2; i++) {
        char ctl[32], msg[1024];
        snprintf(ctl, sizeof(ctl), "CRLF%04d", i);
        size_t len = pxt_msg(msg, sizeof(msg), ctl, NULL, NULL);
        pxt_client_send(&c, msg, len);
        pxt_client_write(&c, "\r\n", 2);
        pxt_bytes ack = pxt_client_ack(&c, 5000);
        pxt_assert_ack(&ack, "AA", ctl);
        pxt_bytes_free(&ack);
        pxt_sleep_ms(800);
    }
    pxt_client_close(&c);
    ck_assert_int_eq(
        pxt_sql_int(e.db_path, "SELECT count(*) FROM messages WHERE state = 'rejected'", NULL), 0);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_transparency(void)
{
    TCase *tc = tcase_create("transparency");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, odd_but_readable_messages_reach_the_ehr_byte_for_byte);
    tcase_add_loop_test(tc, unreadable_frames_are_refused_recorded_and_never_forwarded, 0,
                        (int)(sizeof(bad_frames) / sizeof(bad_frames[0])));
    tcase_add_test(tc, an_empty_msh10_gets_ar_naming_msh10_and_is_not_forwarded);
    tcase_add_test(tc, blank_bytes_between_frames_are_tolerated_past_the_frame_deadline);
    return tc;
}
