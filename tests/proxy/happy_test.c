/* The normal flow: the legacy and commit policies, pipelining, many senders over pools of
 * one and four upstream connections, and an independent MLLP client (python3-hl7). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tcases.h"

#define SQL_RECEIVED  "SELECT count(*) FROM messages WHERE state = 'received'"
#define SQL_DELIVERED "SELECT count(*) FROM legs WHERE leg = 'legacy' AND state = 'delivered'"
#define SQL_SENDER_ACK                                                                             \
    "SELECT a.ack FROM sender_acks a JOIN messages m ON m.id = a.message"                          \
    " WHERE m.control_id = ?1 AND m.state = 'received'"
#define SQL_LEG_ACK                                                                                \
    "SELECT l.ack FROM legs l JOIN messages m ON m.id = l.message"                                 \
    " WHERE m.control_id = ?1 AND l.leg = 'legacy'"

/* Asserts that the record file holds exactly the given messages, framed, in this order. */
static void assert_record_is(const char *path, char *const *msgs, const size_t *lens, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lens[i] + 3;
    char *want = malloc(total + 1);
    ck_assert_ptr_nonnull(want);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        want[off++] = 0x0b;
        memcpy(want + off, msgs[i], lens[i]);
        off += lens[i];
        want[off++] = 0x1c;
        want[off++] = 0x0d;
    }
    pxt_bytes got;
    ck_assert_msg(pxt_file_read(path, &got), "the EHR recorded nothing (%s)", path);
    ck_assert_msg(got.len == total, "the EHR received %zu bytes, want %zu (the messages framed)",
                  got.len, total);
    ck_assert_msg(memcmp(got.ptr, want, total) == 0,
                  "the EHR's bytes differ from the messages sent, or their order");
    pxt_bytes_free(&got);
    free(want);
}

static void assert_ledger_ack(const pxt_env *e, const char *sql, const char *ctl,
                              const pxt_bytes *ack, const char *what)
{
    pxt_bytes stored;
    uint64_t until = pxt_now_ms() + 5000;
    while (!pxt_sql_blob(e->db_path, sql, ctl, &stored)) {
        ck_assert_msg(pxt_now_ms() < until, "no %s stored for %s", what, ctl);
        pxt_sleep_ms(10);
    }
    ck_assert_msg(stored.len == ack->len && memcmp(stored.ptr, ack->ptr, ack->len) == 0,
                  "%s stored for %s differs from the ACK the sender got:\n%.*s\nvs\n%.*s", what,
                  ctl, (int)stored.len, stored.ptr, (int)ack->len, ack->ptr);
    pxt_bytes_free(&stored);
}

/* The count on the line naming key in section ("by leg state:") of `parallax ledger
 * summary`, or -1 when the line is missing. */
static long summary_count(const char *out, const char *section, const char *key)
{
    const char *p = strstr(out, section);
    if (p == NULL)
        return -1;
    p = strchr(p, '\n');
    while (p != NULL && p[1] == ' ') {
        char line[256], name[200];
        long count;
        const char *eol = strchr(p + 1, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p - 1) : strlen(p + 1);
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, p + 1, len);
        line[len] = '\0';
        if (sscanf(line, " %199s %ld", name, &count) == 2 && strcmp(name, key) == 0)
            return count;
        p = eol;
    }
    return -1;
}

START_TEST(legacy_policy_relays_each_ehr_ack_and_records_every_message)
{
    enum { N = 20 };
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, "\"ack_policy\": \"legacy\"", NULL);
    pxt_serve_start(&e);

    char *msgs[N];
    size_t lens[N];
    pxt_bytes acks[N];
    char ctl[N][32];
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char value[16];
        snprintf(ctl[i], sizeof(ctl[i]), "HAPPY%03d", i);
        snprintf(value, sizeof(value), "%d.%d", 4 + i % 5, i);
        msgs[i] = malloc(1024);
        ck_assert_ptr_nonnull(msgs[i]);
        lens[i] = pxt_msg(msgs[i], 1024, ctl[i], NULL, value);
        pxt_client_send(&c, msgs[i], lens[i]);
        acks[i] = pxt_client_ack(&c, 10000);
        pxt_assert_ack(&acks[i], "AA", ctl[i]);
        ck_assert_msg(pxt_ack_id_starts(&acks[i], "MOCK"),
                      "the sender did not get the EHR's own ACK: %.*s", (int)acks[i].len,
                      acks[i].ptr);
    }
    pxt_client_close(&c);

    ck_assert_uint_eq(pxt_record_wait(e.record_path, N, 10000), N);
    assert_record_is(e.record_path, msgs, lens, N);

    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, N, 10000), N);
    ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_RECEIVED, NULL), N);
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM messages", NULL), N);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM sender_acks", NULL, N, 10000),
                     N);
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM divergences", NULL), 0);

    /* What reviewers see agrees. */
    char *argv[] = {(char *)e.parallax, "ledger", "summary", "--db", e.db_path, NULL};
    pxt_proc cli;
    pxt_proc_spawn(&cli, e.dir, "summary", argv);
    ck_assert(pxt_proc_stop(&cli, 0, 20000));
    pxt_bytes out;
    ck_assert(pxt_file_read(cli.out_path, &out));
    ck_assert_msg(WIFEXITED(cli.status) && WEXITSTATUS(cli.status) == 0,
                  "parallax ledger summary failed: %s", out.ptr);
    ck_assert_msg(strstr(out.ptr, "messages: 20\n") != NULL, "summary: %s", out.ptr);
    ck_assert_int_eq(summary_count(out.ptr, "by message state:", "received"), N);
    ck_assert_int_eq(summary_count(out.ptr, "by ACK code returned to the sender:", "AA"), N);
    ck_assert_int_eq(summary_count(out.ptr, "by leg state:", "legacy/delivered"), N);
    ck_assert_int_eq(summary_count(out.ptr, "by type:", "ORU^R01"), N);
    pxt_bytes_free(&out);
    for (int i = 0; i < N; i++) {
        assert_ledger_ack(&e, SQL_SENDER_ACK, ctl[i], &acks[i], "the sender's ACK");
        /* Relayed unchanged: what the EHR answered is what the sender got. */
        assert_ledger_ack(&e, SQL_LEG_ACK, ctl[i], &acks[i], "the EHR's ACK");
        pxt_bytes body;
        ck_assert(pxt_sql_blob(e.db_path,
                               "SELECT b.body FROM bodies b JOIN messages m ON m.id = b.message"
                               " WHERE m.control_id = ?1",
                               ctl[i], &body));
        ck_assert_msg(body.len == lens[i] && memcmp(body.ptr, msgs[i], lens[i]) == 0,
                      "the ledger's body of %s differs from the message", ctl[i]);
        pxt_bytes_free(&body);
        pxt_bytes_free(&acks[i]);
        free(msgs[i]);
    }
    pxt_env_finish(&e);
}
END_TEST

START_TEST(commit_policy_acks_once_durable_before_the_ehr_answers)
{
    enum { N = 5 };
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--delay-ms", "500", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, NULL, "\"ack_policy\": \"commit\"", NULL);
    pxt_serve_start(&e);

    char *msgs[N];
    size_t lens[N];
    char ctl[N][32];
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        snprintf(ctl[i], sizeof(ctl[i]), "COMMIT%02d", i);
        msgs[i] = malloc(1024);
        ck_assert_ptr_nonnull(msgs[i]);
        lens[i] = pxt_msg(msgs[i], 1024, ctl[i], NULL, NULL);
        uint64_t t0 = pxt_now_ms();
        pxt_client_send(&c, msgs[i], lens[i]);
        pxt_bytes ack = pxt_client_ack(&c, 10000);
        uint64_t took = pxt_now_ms() - t0;
        pxt_assert_ack(&ack, "AA", ctl[i]);
        ck_assert_msg(pxt_ack_id_starts(&ack, "PX"), "the commit ACK should be parallax's own");
        ck_assert_msg(took < 500, "%s: the commit ACK took %llu ms; the EHR answers after 500",
                      ctl[i], (unsigned long long)took);
        assert_ledger_ack(&e, SQL_SENDER_ACK, ctl[i], &ack, "the sender's ACK");
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);

    /* Store and forward: the EHR still gets everything, in order, and the outbox drains. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, N, 20000), N);
    assert_record_is(e.record_path, msgs, lens, N);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, N, 10000), N);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM outbox", NULL, 0, 10000), 0);
    for (int i = 0; i < N; i++)
        free(msgs[i]);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(pipelined_burst_of_200_frames_gets_200_acks_in_order)
{
    enum { N = 200 };
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char *burst = malloc(N * 1024);
    ck_assert_ptr_nonnull(burst);
    char *msgs[N];
    size_t lens[N], off = 0;
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "BURST%03d", i);
        msgs[i] = malloc(1024);
        ck_assert_ptr_nonnull(msgs[i]);
        lens[i] = pxt_msg(msgs[i], 1024, ctl, NULL, NULL);
        burst[off++] = 0x0b;
        memcpy(burst + off, msgs[i], lens[i]);
        off += lens[i];
        burst[off++] = 0x1c;
        burst[off++] = 0x0d;
    }
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_write(&c, burst, off); /* all 200 frames back to back, in one write */
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "BURST%03d", i);
        pxt_bytes ack = pxt_client_ack(&c, 15000);
        pxt_assert_ack(&ack, "AA", ctl);
        pxt_bytes_free(&ack);
    }
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, N, 10000), N);
    assert_record_is(e.record_path, msgs, lens, N);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, N, 10000), N);
    for (int i = 0; i < N; i++)
        free(msgs[i]);
    free(burst);
    pxt_env_finish(&e);
}
END_TEST

/* _i = 0: a pool of one upstream connection; 1: a pool of four. */
START_TEST(many_concurrent_senders_keep_their_own_order_at_the_ehr)
{
    enum { CONNS = 16, MSGS = 50 };
    unsigned pool = _i == 0 ? 1 : 4;
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    char up[64];
    snprintf(up, sizeof(up), "\"pool\": %u", pool);
    pxt_env_config(&e, up, NULL, NULL);
    pxt_serve_start(&e);
    pxt_serve_wait_log(&e, "\"event\":\"upstream_connected\"", pool, 10000);

    pxt_run_senders(e.feed_port, CONNS, MSGS, "S", 60000);

    ck_assert_uint_eq(pxt_record_wait(e.record_path, CONNS * MSGS, 10000), CONNS * MSGS);
    pxt_assert_sender_order(e.record_path, "S", CONNS, MSGS);
    /* The pool really is that many connections to the EHR. */
    ck_assert_uint_eq(pxt_file_count(e.mock.err_path, "\"event\":\"conn_open\""), pool);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, CONNS * MSGS, 10000),
                     CONNS * MSGS);
    ck_assert_int_eq(pxt_sql_int(e.db_path, SQL_RECEIVED, NULL), CONNS * MSGS);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(python_hl7_mllp_send_gets_the_ehr_ack_through_the_proxy)
{
    static const char tool[] = "/usr/bin/mllp_send";
    ck_assert_msg(access(tool, X_OK) == 0,
                  "%s is missing: install Debian's python3-hl7 (scripts/setup does)", tool);
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    char msg[1024], framed[1100], path[PXT_PATH], port[16];
    size_t len = pxt_msg(msg, sizeof(msg), "PYHL7001", NULL, NULL);
    framed[0] = 0x0b;
    memcpy(framed + 1, msg, len);
    framed[len + 1] = 0x1c;
    framed[len + 2] = 0x0d;
    snprintf(path, sizeof(path), "%s/python.hl7", e.dir);
    pxt_file_write(path, framed, len + 3);
    snprintf(port, sizeof(port), "%u", e.feed_port);
    /* Debian's interpreter: the python3 first on PATH may not see Debian's hl7 module. */
    char *argv[] = {"/usr/bin/python3", (char *)tool, "-p", port, "-f", path, "127.0.0.1", NULL};
    pxt_proc py;
    pxt_proc_spawn(&py, e.dir, "mllp_send", argv);
    ck_assert_msg(pxt_proc_stop(&py, 0, 30000), "mllp_send did not finish within 30 s");
    pxt_bytes out;
    ck_assert(pxt_file_read(py.out_path, &out));
    ck_assert_msg(WIFEXITED(py.status) && WEXITSTATUS(py.status) == 0,
                  "mllp_send failed (status %d): %s", py.status, out.ptr);
    ck_assert_msg(strstr(out.ptr, "MSA|AA|PYHL7001") != NULL, "mllp_send printed: %s", out.ptr);
    /* The ACK it printed is the EHR's own, relayed. */
    ck_assert_msg(strstr(out.ptr, "|ACK") != NULL && strstr(out.ptr, "|MOCK") != NULL,
                  "mllp_send printed: %s", out.ptr);
    pxt_bytes_free(&out);

    /* python-hl7 strips the trailing CR; the EHR gets exactly what it sent. */
    pxt_bytes *frames;
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 5000), 1);
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(frames[0].len, len - 1);
    ck_assert(memcmp(frames[0].ptr, msg, len - 1) == 0);
    pxt_frames_free(frames, n);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(enhanced_mode_relays_the_commit_ack_then_carries_the_application_ack_back)
{
    static const char msg[] =
        "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120000||ORU^R01^ORU_R01|ENH00001|P|2.5.1|||"
        "AL|AL\r"
        "PID|1||T0001^^^HOSP^MR||TEST^PATIENT\rOBX|1|NM|GLU^Glucose^L||6.1|mmol/L\r";
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--enhanced", "--app-ack-delay-ms", "300", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, NULL, "\"ack_mode\": \"from-MSH\"", NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, msg, sizeof(msg) - 1);
    pxt_bytes commit = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&commit, "CA", "ENH00001");
    ck_assert(pxt_ack_id_starts(&commit, "MOCK"));
    /* The application ACK arrives later as a message of its own. */
    pxt_bytes app = pxt_client_ack(&c, 5000);
    pxt_assert_ack(&app, "AA", "ENH00001");
    ck_assert(pxt_ack_id_starts(&app, "MOCK"));
    ck_assert_msg(!(commit.len == app.len && memcmp(commit.ptr, app.ptr, app.len) == 0),
                  "the commit ACK was sent twice instead of the application ACK");

    /* The sender's commit ACK for it goes back to the EHR. */
    char app_id[64], ack[512];
    ck_assert(pxt_field(app.ptr, app.len, "MSH", 10, app_id, sizeof(app_id)));
    int n = snprintf(ack, sizeof(ack),
                     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|20240101120001||ACK^R01^ACK|SNDACK01|P|"
                     "2.5.1|||NE|NE\rMSA|CA|%s\r",
                     app_id);
    pxt_client_send(&c, ack, (size_t)n);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 2, 5000), 2);
    pxt_bytes *frames;
    size_t nf = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(nf, 2);
    ck_assert(frames[0].len == sizeof(msg) - 1 && memcmp(frames[0].ptr, msg, frames[0].len) == 0);
    ck_assert_msg(frames[1].len == (size_t)n && memcmp(frames[1].ptr, ack, (size_t)n) == 0,
                  "the sender's commit ACK did not reach the EHR unchanged");
    pxt_frames_free(frames, nf);
    pxt_client_close(&c);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, 1, 5000), 1);
    pxt_bytes_free(&commit);
    pxt_bytes_free(&app);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_happy_path(void)
{
    TCase *tc = tcase_create("happy_path");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, legacy_policy_relays_each_ehr_ack_and_records_every_message);
    tcase_add_test(tc, commit_policy_acks_once_durable_before_the_ehr_answers);
    tcase_add_test(tc, enhanced_mode_relays_the_commit_ack_then_carries_the_application_ack_back);
    tcase_add_test(tc, pipelined_burst_of_200_frames_gets_200_acks_in_order);
    tcase_add_loop_test(tc, many_concurrent_senders_keep_their_own_order_at_the_ehr, 0, 2);
    tcase_add_test(tc, python_hl7_mllp_send_gets_the_ehr_ack_through_the_proxy);
    return tc;
}
