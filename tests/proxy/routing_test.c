/* Routing on the wire: batches forwarded whole, ordering per key across connections, filters
 * that refuse or keep messages off the FHIR leg, and message classes that are legacy-only. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tcases.h"

#define SQL_LEG                                                                                    \
    "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"                              \
    " WHERE m.control_id = ?1 AND l.leg = '%s' AND l.state = '%s' AND l.error = '%s'"

/* A v2.5.1 message of type (e.g. "ORU^R01^ORU_R01") with MSH-10 ctl, MSH-11 proc and
 * PID-3.1 mrn into buf; returns its length. */
static size_t build_msg(char *buf, size_t size, const char *type, const char *ctl, const char *proc,
                        const char *mrn)
{
    int n = snprintf(buf, size,
                     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||%s|%s|%s|2.5.1\r"
                     "PID|1||%s^^^HOSP^MR||TEST^PATIENT||19700101|U\r"
                     "OBR|1|ORD1|FIL1|GLU^Glucose^L|||20240101120000\r"
                     "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|3.9-5.5|N|||F\r",
                     type, ctl, proc, mrn);
    ck_assert(n > 0 && (size_t)n < size);
    return (size_t)n;
}

/* The number of legs of message ctl on leg in state with exactly this error text. */
static int64_t leg_count(const pxt_env *e, const char *ctl, const char *leg, const char *state,
                         const char *error)
{
    char sql[512];
    snprintf(sql, sizeof(sql), SQL_LEG, leg, state, error);
    return pxt_sql_wait(e->db_path, sql, ctl, 1, 5000);
}

START_TEST(a_batch_is_forwarded_whole_and_recorded_one_row_per_message)
{
    enum { N = 3 };
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char msgs[N][512], batch[4096];
    size_t lens[N];
    int off = snprintf(batch, sizeof(batch),
                       "FHS|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||||FILE-0001\r"
                       "BHS|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||||BATCH-0001\r");
    for (int i = 0; i < N; i++) {
        char ctl[32], mrn[16];
        snprintf(ctl, sizeof(ctl), "BATCHMSG%d", i);
        snprintf(mrn, sizeof(mrn), "T%04d", i);
        lens[i] = build_msg(msgs[i], sizeof(msgs[i]), "ORU^R01^ORU_R01", ctl, "P", mrn);
        off += snprintf(batch + off, sizeof(batch) - (size_t)off, "%s", msgs[i]);
    }
    off += snprintf(batch + off, sizeof(batch) - (size_t)off, "BTS|%d\rFTS|1\r", N);
    ck_assert((size_t)off < sizeof(batch));

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, batch, (size_t)off);
    pxt_bytes answer = pxt_client_ack(&c, 10000);
    ck_assert_msg(pxt_ack_id_starts(&answer, "MOCK"), "the batch answer is not the EHR's: %.*s",
                  (int)answer.len, answer.ptr);
    /* Nothing else comes back: one frame in, one answer out. */
    pxt_bytes extra;
    ck_assert_int_eq(pxt_client_read(&c, 300, &extra), PXT_READ_TIMEOUT);
    pxt_client_close(&c);

    /* The EHR got exactly the batch frame, byte for byte. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 5000), 1);
    pxt_bytes rec;
    ck_assert(pxt_file_read(e.record_path, &rec));
    ck_assert_msg(rec.len == (size_t)off + 3 && rec.ptr[0] == 0x0b &&
                      memcmp(rec.ptr + 1, batch, (size_t)off) == 0 && rec.ptr[off + 1] == 0x1c &&
                      rec.ptr[off + 2] == 0x0d,
                  "the EHR did not get the batch whole (%zu bytes recorded, want %d)", rec.len,
                  off + 3);
    pxt_bytes_free(&rec);

    /* One row per message, each with its own body and a delivered legacy leg. */
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM legs WHERE leg = 'legacy'"
                                  " AND state = 'delivered'",
                                  NULL, N, 10000),
                     N);
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM messages", NULL), N);
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "BATCHMSG%d", i);
        ck_assert_int_eq(pxt_sql_int(e.db_path,
                                     "SELECT count(*) FROM messages WHERE control_id = ?1"
                                     " AND state = 'received' AND reason = 'in a batch'"
                                     " AND type = 'ORU' AND feed = 'lab'",
                                     ctl),
                         1);
        pxt_bytes body;
        ck_assert(pxt_sql_blob(e.db_path,
                               "SELECT b.body FROM bodies b JOIN messages m ON m.id = b.message"
                               " WHERE m.control_id = ?1",
                               ctl, &body));
        /* The message without its trailing segment separator. */
        ck_assert_msg(body.len == lens[i] - 1 && memcmp(body.ptr, msgs[i], body.len) == 0,
                      "the ledger's body of %s is not that message of the batch", ctl);
        pxt_bytes_free(&body);
        /* The leg's ACK is the batch answer the sender got. */
        pxt_bytes leg_ack;
        ck_assert(pxt_sql_blob(e.db_path,
                               "SELECT l.ack FROM legs l JOIN messages m ON m.id = l.message"
                               " WHERE m.control_id = ?1 AND l.leg = 'legacy'",
                               ctl, &leg_ack));
        ck_assert_msg(leg_ack.len == answer.len && memcmp(leg_ack.ptr, answer.ptr, answer.len) == 0,
                      "%s: the stored EHR answer differs from what the sender got", ctl);
        pxt_bytes_free(&leg_ack);
    }
    pxt_bytes stored;
    ck_assert(pxt_sql_blob(e.db_path,
                           "SELECT a.ack FROM sender_acks a JOIN messages m ON m.id = a.message"
                           " WHERE m.control_id = 'BATCHMSG0'",
                           NULL, &stored));
    ck_assert(stored.len == answer.len && memcmp(stored.ptr, answer.ptr, answer.len) == 0);
    pxt_bytes_free(&stored);
    pxt_bytes_free(&answer);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(an_ordering_key_keeps_each_patient_in_order_across_connections)
{
    /* KEYS patients with MSGS messages each from two interfaces: a busy one carries all of
     * patient 0 and every other message of the others, a light one the rest, so under FIFO
     * per connection the light one's messages would overtake the busy one's queue. The EHR
     * takes DELAY_MS per message. */
    enum { KEYS = 4, MSGS = 8, CONNS = 2, DELAY_MS = 50 };
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--delay-ms", "50", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, "\"pool\": 4", "\"ordering\": {\"key\": \"PID-3.1\"}", NULL);
    pxt_serve_start(&e);
    pxt_serve_wait_log(&e, "\"event\":\"upstream_connected\"", 4, 10000);

    pxt_client c[CONNS];
    for (int i = 0; i < CONNS; i++)
        pxt_client_open(&c[i], e.feed_port);
    /* The control ids each connection expects back, in its own order. */
    char expect[CONNS][KEYS * MSGS][16];
    unsigned nexp[CONNS] = {0};
    uint64_t t0 = pxt_now_ms();
    for (int j = 0; j < MSGS; j++) {
        for (int k = 0; k < KEYS; k++) {
            int conn = k == 0 || j % 2 == 0 ? 0 : 1;
            char ctl[16], mrn[16], msg[1024];
            if (j > 0) {
                /* The send order of one patient's messages is the order the proxy read them
                 * in: the previous one must have arrived (it has a ledger row) first. */
                snprintf(ctl, sizeof(ctl), "K%d-%d", k, j - 1);
                ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                              "SELECT count(*) FROM messages"
                                              " WHERE control_id = ?1",
                                              ctl, 1, 5000),
                                 1);
            }
            snprintf(ctl, sizeof(ctl), "K%d-%d", k, j);
            snprintf(mrn, sizeof(mrn), "MRN%d", k);
            size_t len = build_msg(msg, sizeof(msg), "ORU^R01^ORU_R01", ctl, "P", mrn);
            pxt_client_send(&c[conn], msg, len);
            snprintf(expect[conn][nexp[conn]++], sizeof(expect[0][0]), "%s", ctl);
        }
    }
    for (int i = 0; i < CONNS; i++) {
        for (unsigned n = 0; n < nexp[i]; n++) {
            pxt_bytes ack = pxt_client_ack(&c[i], 20000);
            pxt_assert_ack(&ack, "AA", expect[i][n]);
            pxt_bytes_free(&ack);
        }
    }
    uint64_t took = pxt_now_ms() - t0;
    for (int i = 0; i < CONNS; i++)
        pxt_client_close(&c[i]);

    /* Per patient in send order at the EHR, whatever connection each message came on. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, KEYS * MSGS, 5000), KEYS * MSGS);
    pxt_assert_sender_order(e.record_path, "K", KEYS, MSGS);
    /* Patients in parallel: one at a time would take KEYS * MSGS * DELAY_MS. */
    unsigned sequential = KEYS * MSGS * DELAY_MS;
    ck_assert_msg(took < sequential / 2,
                  "%d messages took %llu ms; one at a time takes %u ms: the keys did not run "
                  "in parallel",
                  KEYS * MSGS, (unsigned long long)took, sequential);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM legs WHERE leg = 'legacy'"
                                  " AND state = 'delivered'",
                                  NULL, KEYS * MSGS, 10000),
                     KEYS * MSGS);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(filters_refuse_or_keep_messages_off_the_fhir_leg_and_queries_are_legacy_only)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL,
                   "\"filters\": ["
                   "{\"path\": \"MSH-11\", \"equals\": \"T\", \"action\": \"refuse\"},"
                   " {\"path\": \"PID-3.1\", \"glob\": \"TESTPAT*\", \"action\": \"legacy_only\"}]",
                   NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    char msg[1024];
    size_t len;

    /* MSH-11 = T: refused by parallax itself, on a connection that stays open. */
    len = build_msg(msg, sizeof(msg), "ORU^R01^ORU_R01", "FILT-TEST", "T", "MRN1");
    pxt_client_send(&c, msg, len);
    pxt_bytes ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AR", "FILT-TEST");
    pxt_assert_err_code(&ack, "207");
    ck_assert_msg(pxt_ack_id_starts(&ack, "PX"), "the refusal is not parallax's own: %.*s",
                  (int)ack.len, ack.ptr);
    pxt_bytes_free(&ack);

    /* A test patient: to the EHR, kept off the FHIR leg. */
    len = build_msg(msg, sizeof(msg), "ORU^R01^ORU_R01", "FILT-LEGACY", "P", "TESTPAT7");
    pxt_client_send(&c, msg, len);
    ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AA", "FILT-LEGACY");
    ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
    pxt_bytes_free(&ack);

    /* A query: legacy-only by class. */
    static const char query[] =
        "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||QBP^Q11^QBP_Q11|FILT-QBP|P|2.5.1\r"
        "QPD|Q11^Query^HL7|Q0001|MRN1\rRCP|I\r";
    pxt_client_send(&c, query, sizeof(query) - 1);
    ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AA", "FILT-QBP");
    ck_assert(pxt_ack_id_starts(&ack, "MOCK"));
    pxt_bytes_free(&ack);

    /* An ordinary message matches no filter and has no class. */
    len = build_msg(msg, sizeof(msg), "ORU^R01^ORU_R01", "FILT-PLAIN", "P", "MRN1");
    pxt_client_send(&c, msg, len);
    ack = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&ack, "AA", "FILT-PLAIN");
    pxt_bytes_free(&ack);
    pxt_client_close(&c);

    /* The EHR got all but the refused one, in order. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 3, 5000), 3);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, 3);
    static const char *const forwarded[] = {"FILT-LEGACY", "FILT-QBP", "FILT-PLAIN"};
    for (size_t i = 0; i < n; i++) {
        char ctl[64];
        ck_assert(pxt_field(frames[i].ptr, frames[i].len, "MSH", 10, ctl, sizeof(ctl)));
        ck_assert_str_eq(ctl, forwarded[i]);
    }
    pxt_frames_free(frames, n);

    /* The refusal: a rejected row naming the filter, its NAK stored, no legs. */
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM messages WHERE control_id = ?1"
                                  " AND state = 'rejected'"
                                  " AND reason = 'refused by the feed''s filter on MSH-11'",
                                  "FILT-TEST", 1, 5000),
                     1);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM sender_acks a JOIN messages m"
                                  " ON m.id = a.message WHERE m.control_id = ?1 AND a.code = 'AR'",
                                  "FILT-TEST", 1, 5000),
                     1);
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"
                                 " WHERE m.control_id = ?1",
                                 "FILT-TEST"),
                     0);

    /* Kept off the FHIR leg, and saying why. */
    ck_assert_int_eq(leg_count(&e, "FILT-LEGACY", "fhir", "skipped", "legacy only: legacy_only"),
                     1);
    ck_assert_int_eq(leg_count(&e, "FILT-QBP", "fhir", "skipped", "legacy only: query"), 1);
    ck_assert_int_eq(leg_count(&e, "FILT-LEGACY", "legacy", "delivered", ""), 1);
    ck_assert_int_eq(leg_count(&e, "FILT-QBP", "legacy", "delivered", ""), 1);
    ck_assert_int_eq(leg_count(&e, "FILT-PLAIN", "legacy", "delivered", ""), 1);
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(*) FROM legs l JOIN messages m ON m.id = l.message"
                                 " WHERE m.control_id = ?1 AND l.leg = 'fhir'",
                                 "FILT-PLAIN"),
                     0);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_routing(void)
{
    TCase *tc = tcase_create("routing");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_batch_is_forwarded_whole_and_recorded_one_row_per_message);
    tcase_add_test(tc, an_ordering_key_keeps_each_patient_in_order_across_connections);
    tcase_add_test(tc,
                   filters_refuse_or_keep_messages_off_the_fhir_leg_and_queries_are_legacy_only);
    return tc;
}
