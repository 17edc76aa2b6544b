/* Operations: SIGHUP reloads (a new generation for new messages, the old one for messages in
 * flight, a bad or incompatible config refused and the old one kept, every reload a ledger
 * row) and the admin endpoint (/healthz, /readyz, /metrics). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tcases.h"

#define SQL_CONFIG_VERSION "SELECT config_version FROM messages WHERE control_id = ?1"
/* The version the proxy started with and the one a successful SIGHUP swapped in. */
#define SQL_START_VERSION "SELECT version FROM config_reloads WHERE ok = 1 AND reason = 'start'"
#define SQL_RELOAD_VERSION                                                                         \
    "SELECT version FROM config_reloads WHERE ok = 1 AND who = 'SIGHUP'"                           \
    " AND reason = ''"
#define SQL_DELIVERED "SELECT count(*) FROM legs WHERE leg = 'legacy' AND state = 'delivered'"
#define REFUSED_EVENT "\"event\":\"reload_refused\""

/* The value of one series ("name{labels}") in Prometheus text, or -1 when it is missing. */
static long long metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static long long metric(unsigned admin_port, const char *series)
{
    pxt_bytes body;
    int status = pxt_http(admin_port, "GET", "/metrics", &body);
    ck_assert_msg(status == 200, "GET /metrics answered %d", status);
    long long v = metric_value(body.ptr, series);
    ck_assert_msg(v >= 0, "/metrics has no series %s:\n%s", series, body.ptr);
    pxt_bytes_free(&body);
    return v;
}

/* Polls GET path until it answers want (or 5 s passed); returns the last status, the last
 * body in *body (owned). */
static int http_wait(unsigned port, const char *path, int want, pxt_bytes *body)
{
    uint64_t until = pxt_now_ms() + 5000;
    for (;;) {
        int status = pxt_http(port, "GET", path, body);
        if (status == want || pxt_now_ms() >= until)
            return status;
        pxt_bytes_free(body);
        pxt_sleep_ms(50);
    }
}

/* The reason of the n-th (1-based) reload_refused line of the serve log, into out. */
static void refused_reason(const pxt_env *e, size_t n, char *out, size_t size)
{
    pxt_bytes log;
    ck_assert(pxt_file_read(e->serve.err_path, &log));
    const char *p = log.ptr;
    for (size_t i = 0; i < n && p != NULL; i++) {
        p = strstr(p, REFUSED_EVENT);
        if (p != NULL && i + 1 < n)
            p += strlen(REFUSED_EVENT);
    }
    ck_assert_msg(p != NULL, "no reload_refused line #%zu in the log", n);
    const char *eol = strchr(p, '\n');
    size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
    if (len >= size)
        len = size - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    pxt_bytes_free(&log);
}

/* Sends one message on c and returns its answer, asserting AA for ctl. */
static pxt_bytes send_one(pxt_client *c, const char *ctl, unsigned timeout_ms)
{
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), ctl, NULL, NULL);
    pxt_client_send(c, msg, len);
    pxt_bytes ack = pxt_client_ack(c, timeout_ms);
    pxt_assert_ack(&ack, "AA", ctl);
    return ack;
}

START_TEST(sighup_with_a_changed_config_applies_it_to_new_messages_only)
{
    enum { EHR_DELAY_MS = 1000 };
    pxt_env e;
    pxt_env_init(&e);
    const char *const mock_args[] = {"--delay-ms", "1000", NULL};
    pxt_mock_start(&e, mock_args);
    pxt_env_config(&e, NULL, "\"ack_policy\": \"legacy\"", NULL);
    pxt_serve_start(&e);
    pxt_serve_wait_log(&e, "\"event\":\"upstream_connected\"", 1, 10000);

    /* A message in flight at the EHR while the reload happens. */
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "GEN-OLD", NULL, NULL);
    uint64_t t0 = pxt_now_ms();
    pxt_client_send(&c, msg, len);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 1, 5000), 1);

    pxt_serve_reload(&e, NULL, "\"ack_policy\": \"commit\"", NULL);
    pxt_serve_wait_log(&e, "\"event\":\"reloaded\"", 1, 5000);
    ck_assert_msg(pxt_now_ms() - t0 < EHR_DELAY_MS,
                  "the reload took so long that GEN-OLD was answered first; the test proves "
                  "nothing about messages in flight");

    /* It finishes under the generation it started with: the EHR's own ACK, relayed. */
    pxt_bytes old_ack = pxt_client_ack(&c, 10000);
    pxt_assert_ack(&old_ack, "AA", "GEN-OLD");
    ck_assert_msg(pxt_ack_id_starts(&old_ack, "MOCK"),
                  "the message in flight was not answered by the legacy policy: %.*s",
                  (int)old_ack.len, old_ack.ptr);
    ck_assert_msg(pxt_now_ms() - t0 >= EHR_DELAY_MS - 50,
                  "GEN-OLD was answered before the EHR answered it");
    pxt_bytes_free(&old_ack);

    /* The same connection, the new generation: commit answers once durable, long before
     * the EHR does. */
    uint64_t t1 = pxt_now_ms();
    pxt_bytes new_ack = send_one(&c, "GEN-NEW", 10000);
    uint64_t took = pxt_now_ms() - t1;
    ck_assert_msg(pxt_ack_id_starts(&new_ack, "PX"),
                  "after the reload the sender still got the EHR's ACK: %.*s", (int)new_ack.len,
                  new_ack.ptr);
    ck_assert_msg(took < EHR_DELAY_MS, "the commit ACK took %llu ms; the EHR answers after %d",
                  (unsigned long long)took, EHR_DELAY_MS);
    pxt_bytes_free(&new_ack);
    pxt_client_close(&c);

    /* Both reached the EHR; each message records the generation it ran under. */
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 2, 10000), 2);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, SQL_DELIVERED, NULL, 2, 10000), 2);
    /* The reload is a ledger record next to the start's, with another version and hash. */
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM config_reloads", NULL, 2, 5000),
                     2);
    ck_assert_int_eq(
        pxt_sql_int(e.db_path,
                    "SELECT count(*) FROM config_reloads WHERE ok = 1 AND who = 'SIGHUP'"
                    " AND reason = ''",
                    NULL),
        1);
    ck_assert_int_eq(pxt_sql_int(e.db_path,
                                 "SELECT count(DISTINCT hash) FROM config_reloads WHERE ok = 1",
                                 NULL),
                     2);
    int64_t start_version = pxt_sql_int(e.db_path, SQL_START_VERSION, NULL);
    int64_t reload_version = pxt_sql_int(e.db_path, SQL_RELOAD_VERSION, NULL);
    ck_assert_msg(start_version != reload_version, "the reload recorded the old version");
    ck_assert_msg(pxt_sql_int(e.db_path, SQL_CONFIG_VERSION, "GEN-OLD") == start_version,
                  "the message in flight does not record the version it started under");
    ck_assert_msg(pxt_sql_int(e.db_path, SQL_CONFIG_VERSION, "GEN-NEW") == reload_version,
                  "the message after the reload does not record the new version");
    ck_assert_uint_eq(pxt_file_count(e.serve.err_path, REFUSED_EVENT), 0);

    /* A setting only a restart applies is accepted, but the reload says so, in the log and
     * in its ledger row. */
    pxt_serve_reload(&e, NULL, "\"ack_policy\": \"commit\", \"retransmit_window\": 77", NULL);
    pxt_serve_wait_log(&e, "\"event\":\"reload_partial\"", 1, 5000);
    ck_assert_int_eq(pxt_sql_wait(e.db_path,
                                  "SELECT count(*) FROM config_reloads WHERE ok = 1"
                                  " AND reason LIKE '%retransmit_window%'",
                                  NULL, 1, 5000),
                     1);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_broken_or_incompatible_config_is_refused_and_the_old_one_keeps_serving)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    pxt_bytes ack = send_one(&c, "KEEP-0", 5000);
    pxt_bytes_free(&ack);
    char line[1024];

    /* 1. Not JSON. */
    static const char truncated[] = "{\"instance\": \"px-test\",\n  \"ledger\": {";
    pxt_file_write(e.cfg_path, truncated, sizeof(truncated) - 1);
    pxt_serve_hup(&e);
    pxt_serve_wait_log(&e, REFUSED_EVENT, 1, 5000);
    refused_reason(&e, 1, line, sizeof(line));
    ck_assert_msg(strstr(line, "\"reason\":\"2:") != NULL,
                  "the refusal does not name where the JSON breaks (line 2): %s", line);
    ack = send_one(&c, "KEEP-1", 5000);
    ck_assert_msg(pxt_ack_id_starts(&ack, "MOCK"), "not the EHR's ACK after a refused reload");
    pxt_bytes_free(&ack);

    /* 2. Valid JSON with an unknown key next to a real change: nothing of it applies. */
    pxt_serve_reload(&e, NULL, "\"ack_policy\": \"commit\", \"colour\": \"blue\"", NULL);
    pxt_serve_wait_log(&e, REFUSED_EVENT, 2, 5000);
    refused_reason(&e, 2, line, sizeof(line));
    ck_assert_msg(strstr(line, "feeds[0].colour") != NULL,
                  "the refusal does not name the unknown key: %s", line);
    ack = send_one(&c, "KEEP-2", 5000);
    ck_assert_msg(pxt_ack_id_starts(&ack, "MOCK"),
                  "the commit policy of a refused config was applied: %.*s", (int)ack.len, ack.ptr);
    pxt_bytes_free(&ack);

    /* 3. A new listener port cannot be swapped in. */
    unsigned old_port = e.feed_port, new_port;
    do {
        new_port = pxt_free_port();
    } while (new_port == e.feed_port || new_port == e.ehr_port);
    e.feed_port = new_port;
    pxt_serve_reload(&e, NULL, "\"ack_policy\": \"commit\"", NULL);
    e.feed_port = old_port;
    pxt_serve_wait_log(&e, REFUSED_EVENT, 3, 5000);
    refused_reason(&e, 3, line, sizeof(line));
    ck_assert_msg(strstr(line, "restart needed") != NULL,
                  "a port change was not refused as needing a restart: %s", line);
    ck_assert_msg(pxt_port_refuses(new_port), "the refused config's port %u was opened", new_port);
    ack = send_one(&c, "KEEP-3", 5000);
    ck_assert_msg(pxt_ack_id_starts(&ack, "MOCK"),
                  "the commit policy of a refused config was applied: %.*s", (int)ack.len, ack.ptr);
    pxt_bytes_free(&ack);
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_file_count(e.serve.err_path, "\"event\":\"reloaded\""), 0);

    /* Every refusal is a ledger row with its reason; every message ran under the first
     * version. */
    ck_assert_int_eq(
        pxt_sql_wait(e.db_path, "SELECT count(*) FROM config_reloads WHERE ok = 0", NULL, 3, 5000),
        3);
    ck_assert_int_eq(
        pxt_sql_int(e.db_path, "SELECT count(*) FROM config_reloads WHERE ok = 1", NULL), 1);
    static const char *const reasons[] = {"reason GLOB '2:*'", "reason GLOB 'feeds[[]0].colour*'",
                                          "reason LIKE '%restart needed%'"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM config_reloads WHERE ok = 0 AND %s",
                 reasons[i]);
        ck_assert_msg(pxt_sql_int(e.db_path, sql, NULL) == 1, "no refused reload row with %s",
                      reasons[i]);
    }
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM messages", NULL, 4, 5000), 4);
    ck_assert_int_eq(
        pxt_sql_int(e.db_path,
                    "SELECT count(*) FROM messages WHERE config_version <> (" SQL_START_VERSION ")",
                    NULL),
        0);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(sigterm_while_a_reload_is_loading_waits_for_it_and_exits_0)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, NULL);
    pxt_serve_start(&e);

    /* A config file whose open blocks until a writer comes: the reload's load stays in the
     * thread pool while the proxy stops. */
    ck_assert_int_eq(unlink(e.cfg_path), 0);
    ck_assert_int_eq(mkfifo(e.cfg_path, 0600), 0);
    pxt_serve_hup(&e);
    /* Signals may reach the loop out of order (any thread can take them): HUP first. */
    pxt_sleep_ms(100);
    ck_assert_int_eq(kill(e.serve.pid, SIGTERM), 0);
    pxt_serve_wait_log(&e, "\"event\":\"stopping\"", 1, 5000);
    pxt_sleep_ms(300);
    ck_assert_msg(pxt_proc_running(&e.serve), "parallax serve exited with a reload pending");
    ck_assert_msg(pxt_file_count(e.serve.err_path, "\"event\":\"stopped\"") == 0,
                  "the proxy was torn down while its reload was still loading");

    /* Let the load finish (it fails: not a regular file); the stop then completes. */
    int fd = open(e.cfg_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "the reload is not reading the config file: %s", strerror(errno));
    close(fd);
    /* Not pxt_serve_stop: a second SIGTERM after the handlers closed would kill it. */
    ck_assert_msg(pxt_proc_stop(&e.serve, 0, 20000), "parallax serve did not exit");
    pxt_assert_no_sanitizer_report(e.serve.err_path);
    ck_assert_msg(WIFEXITED(e.serve.status) && WEXITSTATUS(e.serve.status) == 0,
                  "parallax serve: exit status %d after SIGTERM", e.serve.status);
    pxt_bytes log;
    ck_assert(pxt_file_read(e.serve.err_path, &log));
    const char *refused = strstr(log.ptr, REFUSED_EVENT);
    const char *stopped = strstr(log.ptr, "\"event\":\"stopped\"");
    ck_assert_msg(refused != NULL && stopped != NULL && refused < stopped,
                  "the reload did not end before the proxy was torn down:\n%s", log.ptr);
    pxt_bytes_free(&log);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(the_admin_endpoint_reports_health_readiness_and_counts)
{
    enum { N = 5 };
    pxt_env e;
    pxt_env_init(&e);
    unsigned admin;
    do {
        admin = pxt_free_port();
    } while (admin == e.feed_port || admin == e.ehr_port);
    char top[128];
    snprintf(top, sizeof(top), "\"admin\": {\"listen\": \"127.0.0.1\", \"port\": %u}", admin);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, NULL, NULL, top);
    pxt_serve_start(&e);
    pxt_serve_wait_log(&e, "\"event\":\"upstream_connected\"", 1, 10000);

    pxt_bytes body;
    ck_assert_int_eq(pxt_http(admin, "GET", "/healthz", &body), 200);
    ck_assert_str_eq(body.ptr, "ok\n");
    pxt_bytes_free(&body);
    ck_assert_int_eq(http_wait(admin, "/readyz", 200, &body), 200);
    pxt_bytes_free(&body);

    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "ADMIN%02d", i);
        pxt_bytes ack = send_one(&c, ctl, 5000);
        pxt_bytes_free(&ack);
    }
    /* A resend of the first message is answered from the retransmission window: that
     * answer is an ACK sent too. */
    pxt_bytes again = send_one(&c, "ADMIN00", 5000);
    pxt_assert_ack(&again, "AA", "ADMIN00");
    pxt_bytes_free(&again);
    pxt_client_close(&c);
    ck_assert_int_eq(metric(admin, "parallax_messages_received_total{feed=\"lab\"}"), N + 1);
    ck_assert_int_eq(metric(admin, "parallax_retransmissions_total{feed=\"lab\"}"), 1);
    ck_assert_int_eq(metric(admin, "parallax_acks_sent_total{feed=\"lab\",code=\"AA\"}"), N + 1);
    ck_assert_int_eq(metric(admin, "parallax_acks_sent_total{feed=\"lab\",code=\"AR\"}"), 0);
    ck_assert_int_eq(metric(admin, "parallax_refusals_total{reason=\"no_msh\"}"), 0);
    ck_assert_int_eq(metric(admin, "parallax_upstream_connected{upstream=\"ehr\"}"), 1);

    /* A frame without MSH: refused and closed, and counted by its reason. */
    static const char no_msh[] = "PID|1||T0001^^^HOSP^MR||TEST^PATIENT\r";
    pxt_client_open(&c, e.feed_port);
    pxt_client_send(&c, no_msh, sizeof(no_msh) - 1);
    pxt_bytes f;
    ck_assert_int_eq(pxt_client_read(&c, 5000, &f), PXT_READ_CLOSED);
    pxt_client_close(&c);
    ck_assert_int_eq(metric(admin, "parallax_refusals_total{reason=\"no_msh\"}"), 1);
    ck_assert_int_eq(metric(admin, "parallax_messages_received_total{feed=\"lab\"}"), N + 2);
    ck_assert_int_eq(metric(admin, "parallax_acks_sent_total{feed=\"lab\",code=\"AA\"}"), N + 1);

    ck_assert_int_eq(pxt_http(admin, "GET", "/nowhere", NULL), 404);
    ck_assert_int_eq(pxt_http(admin, "POST", "/metrics", NULL), 405);
    ck_assert_int_eq(pxt_http(admin, "POST", "/healthz", NULL), 405);

    /* The EHR goes away: not ready, naming the upstream; back once it returns. */
    pxt_mock_stop(&e);
    ck_assert_int_eq(http_wait(admin, "/readyz", 503, &body), 503);
    ck_assert_msg(strstr(body.ptr, "upstream ehr") != NULL,
                  "/readyz does not name the upstream: %s", body.ptr);
    pxt_bytes_free(&body);
    ck_assert_int_eq(metric(admin, "parallax_upstream_connected{upstream=\"ehr\"}"), 0);
    ck_assert_int_eq(pxt_http(admin, "GET", "/healthz", NULL), 200);
    pxt_mock_start(&e, NULL);
    ck_assert_int_eq(http_wait(admin, "/readyz", 200, &body), 200);
    ck_assert_str_eq(body.ptr, "ready\n");
    pxt_bytes_free(&body);
    ck_assert_int_eq(metric(admin, "parallax_upstream_connected{upstream=\"ehr\"}"), 1);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_operations(void)
{
    TCase *tc = tcase_create("operations");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sighup_with_a_changed_config_applies_it_to_new_messages_only);
    tcase_add_test(tc, a_broken_or_incompatible_config_is_refused_and_the_old_one_keeps_serving);
    tcase_add_test(tc, sigterm_while_a_reload_is_loading_waits_for_it_and_exits_0);
    tcase_add_test(tc, the_admin_endpoint_reports_health_readiness_and_counts);
    return tc;
}
