/* send: loading messages from files and directories, and the one-at-a-time conversation. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proxy/send.h"
#include "tools/harness.h"
#include "tools/tcases.h"

static proxy_send_list_t *new_list(void)
{
    proxy_send_list_t *l = NULL;
    ck_assert_int_eq(proxy_send_list_create(&l, NULL), PX_OK);
    return l;
}

static bool has_byte(px_str s, char c)
{
    return memchr(s.ptr, c, s.len) != NULL;
}

START_TEST(send_list_splits_a_file_and_normalises_separators_to_cr)
{
    char *dir = tools_tmpdir();
    char *path = tools_path(dir, "two.hl7");
    char a[1024], b[1024], both[2048];
    size_t na = tools_make_msg(a, sizeof(a), "LF-1", "\n");
    size_t nb = tools_make_msg(b, sizeof(b), "CRLF-2", "\r\n");
    memcpy(both, a, na);
    both[na] = '\n'; /* a blank line between the two */
    memcpy(both + na + 1, b, nb);
    tools_write_file(path, both, na + 1 + nb);
    proxy_send_list_t *l = new_list();
    ck_assert_int_eq(proxy_send_list_add_path(l, path, false, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), 2);
    char expect[1024];
    size_t ne = tools_make_msg(expect, sizeof(expect), "LF-1", "\r");
    px_str m0 = proxy_send_list_message(l, 0);
    ck_assert_uint_eq(m0.len, ne);
    ck_assert_mem_eq(m0.ptr, expect, ne);
    px_str m1 = proxy_send_list_message(l, 1);
    ck_assert(!has_byte(m1, '\n'));
    ck_assert_int_eq(m1.ptr[m1.len - 1], '\r');
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 0), "LF-1"));
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 1), "CRLF-2"));
    size_t off, len;
    ck_assert(proxy_send_list_control_id_span(l, 1, &off, &len));
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(m1.ptr + off, "CRLF-2", 6);
    ck_assert_str_eq(proxy_send_list_source(l, 1) + strlen(path), "#2");
    proxy_send_list_destroy(l);
    free(path);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

static const char batch_text[] = "FHS|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||||F1\r"
                                 "BHS|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||||B1\r"
                                 "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01|M1|P|2.5\r"
                                 "OBX|1|NM|GLU||5.5\r"
                                 "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01|M2|P|2.5\r"
                                 "OBX|1|NM|GLU||6.1\r"
                                 "BTS|2\r"
                                 "FTS|1\r";

START_TEST(send_list_splits_batches_unless_told_to_keep_them_whole)
{
    char *dir = tools_tmpdir();
    char *path = tools_path(dir, "batch.hl7");
    tools_write_file(path, batch_text, sizeof(batch_text) - 1);
    proxy_send_list_t *l = new_list();
    ck_assert_int_eq(proxy_send_list_add_path(l, path, false, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), 2);
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 0), "M1"));
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 1), "M2"));
    ck_assert(px_str_starts_with(proxy_send_list_message(l, 1), PX_LIT("MSH|")));
    proxy_send_list_destroy(l);
    l = new_list();
    ck_assert_int_eq(proxy_send_list_add_path(l, path, true, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), 1);
    px_str whole = proxy_send_list_message(l, 0);
    ck_assert_uint_eq(whole.len, sizeof(batch_text) - 1);
    ck_assert_mem_eq(whole.ptr, batch_text, whole.len);
    proxy_send_list_destroy(l);
    free(path);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(send_list_walks_directories_in_sorted_order_skipping_dot_files)
{
    char *dir = tools_tmpdir();
    char *sub = tools_path(dir, "m-sub");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    const char *names[] = {"z.hl7", "a.hl7", "m-sub/b.hl7", ".hidden.hl7"};
    const char *ids[] = {"Z", "A", "B", "HIDDEN"};
    for (int i = 0; i < 4; i++) {
        char msg[1024];
        size_t n = tools_make_msg(msg, sizeof(msg), ids[i], "\r");
        char *p = tools_path(dir, names[i]);
        tools_write_file(p, msg, n);
        free(p);
    }
    proxy_send_list_t *l = new_list();
    ck_assert_int_eq(proxy_send_list_add_path(l, dir, false, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), 3);
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 0), "A"));
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 1), "B"));
    ck_assert(px_str_eq_cstr(proxy_send_list_control_id(l, 2), "Z"));
    proxy_send_list_destroy(l);
    free(sub);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(send_list_refuses_missing_empty_and_stray_content)
{
    char *dir = tools_tmpdir();
    char *missing = tools_path(dir, "missing.hl7");
    char *empty = tools_path(dir, "empty.hl7");
    char *stray = tools_path(dir, "stray.hl7");
    tools_write_file(empty, "\r\n\r\n", 4);
    static const char stray_text[] = "hello\rMSH|^~\\&|A|B|C|D|20240101||ADT^A01|X|P|2.5\r";
    tools_write_file(stray, stray_text, sizeof(stray_text) - 1);
    proxy_send_list_t *l = new_list();
    px_error err;
    ck_assert_int_eq(proxy_send_list_add_path(l, missing, false, &err), PX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.hl7"));
    ck_assert_int_eq(proxy_send_list_add_path(l, empty, false, &err), PX_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "no HL7 message"));
    ck_assert_int_eq(proxy_send_list_add_path(l, stray, false, &err), PX_ERR_PARSE);
    ck_assert_uint_eq(proxy_send_list_count(l), 0);
    proxy_send_list_destroy(l);
    free(missing);
    free(empty);
    free(stray);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

/* A list of n synthetic messages with control ids ID-1 … ID-n, from one file. */
static proxy_send_list_t *make_list(const char *dir, int n)
{
    char *path = tools_path(dir, "msgs.hl7");
    char *all = malloc((size_t)n * 1024);
    ck_assert_ptr_nonnull(all);
    size_t len = 0;
    for (int i = 1; i <= n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ID-%d", i);
        len += tools_make_msg(all + len, 1024, id, "\r");
    }
    tools_write_file(path, all, len);
    proxy_send_list_t *l = new_list();
    ck_assert_int_eq(proxy_send_list_add_path(l, path, false, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), (size_t)n);
    free(all);
    free(path);
    return l;
}

typedef struct send_case {
    proxy_send_result res;
    px_err rc;
    px_error err;
    char *out;
    double ms;
} send_case;

/* Runs send for n messages against a mock configured by o (or against `port` when o is
 * NULL). */
static void run_send(send_case *sc, const proxy_mock_ehr_opts *o, int n, unsigned timeout_ms,
                     unsigned port)
{
    char *dir = tools_tmpdir();
    proxy_send_list_t *l = make_list(dir, n);
    tools_mock m;
    if (o != NULL) {
        tools_mock_start(&m, o);
        port = m.port;
    }
    size_t outlen = 0;
    FILE *out = open_memstream(&sc->out, &outlen);
    ck_assert_ptr_nonnull(out);
    proxy_send_opts so = {.host = "127.0.0.1", .port = port, .timeout_ms = timeout_ms, .out = out};
    double t0 = tools_now_ms();
    sc->rc = proxy_send_run(&so, l, &sc->res, &sc->err);
    sc->ms = tools_now_ms() - t0;
    fclose(out);
    if (o != NULL)
        tools_mock_stop(&m);
    proxy_send_list_destroy(l);
    tools_rmdir(dir);
    free(dir);
}

static size_t count_text(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(send_reports_every_message_accepted_by_an_aa_server)
{
    proxy_mock_ehr_opts o = {.seed = 1};
    send_case sc;
    run_send(&sc, &o, 3, 5000, 0);
    ck_assert_int_eq(sc.rc, PX_OK);
    ck_assert_uint_eq(sc.res.sent, 3);
    ck_assert_uint_eq(sc.res.answered, 3);
    ck_assert_uint_eq(sc.res.accepted, 3);
    ck_assert(proxy_send_result_ok(&sc.res));
    ck_assert_uint_eq(count_text(sc.out, "result=accepted\n"), 3);
    ck_assert_ptr_nonnull(strstr(sc.out, "msgs.hl7#2 control_id=ID-2 msa1=AA msa2=ID-2 "));
    free(sc.out);
}
END_TEST

START_TEST(send_counts_ae_as_negative_and_prints_the_error_text)
{
    proxy_mock_ehr_opts o = {.seed = 1, .nak_rate = 1.0};
    send_case sc;
    run_send(&sc, &o, 2, 5000, 0);
    ck_assert_int_eq(sc.rc, PX_OK);
    ck_assert_uint_eq(sc.res.answered, 2);
    ck_assert_uint_eq(sc.res.negative, 2);
    ck_assert_uint_eq(sc.res.accepted, 0);
    ck_assert(!proxy_send_result_ok(&sc.res));
    ck_assert_uint_eq(count_text(sc.out, "msa1=AE"), 2);
    ck_assert_uint_eq(count_text(sc.out, "err=\"mock-ehr negative acknowledgement\""), 2);
    ck_assert_uint_eq(count_text(sc.out, "result=negative"), 2);
    free(sc.out);
}
END_TEST

START_TEST(send_flags_an_ack_that_does_not_echo_msh10)
{
    proxy_mock_ehr_opts o = {.seed = 1, .bad_ack = PROXY_MOCK_ACK_WRONG_MSA2};
    send_case sc;
    run_send(&sc, &o, 2, 5000, 0);
    ck_assert_int_eq(sc.rc, PX_OK);
    ck_assert_uint_eq(sc.res.mismatched, 2);
    ck_assert_uint_eq(sc.res.accepted, 0);
    ck_assert(!proxy_send_result_ok(&sc.res));
    ck_assert_ptr_nonnull(strstr(sc.out, "msa2=WRONG-ID-1"));
    ck_assert_uint_eq(count_text(sc.out, "result=msa2-mismatch"), 2);
    free(sc.out);
}
END_TEST

START_TEST(send_flags_acks_without_a_readable_msa)
{
    for (int k = 0; k < 2; k++) {
        proxy_mock_ehr_opts o = {.seed = 1};
        o.bad_ack = k == 0 ? PROXY_MOCK_ACK_GARBAGE : PROXY_MOCK_ACK_NO_MSA;
        send_case sc;
        run_send(&sc, &o, 2, 5000, 0);
        ck_assert_int_eq(sc.rc, PX_OK);
        ck_assert_uint_eq(sc.res.unreadable, 2);
        ck_assert(!proxy_send_result_ok(&sc.res));
        ck_assert_uint_eq(count_text(sc.out, "result=unreadable-ack"), 2);
        free(sc.out);
    }
}
END_TEST

START_TEST(send_fails_with_an_io_error_when_nothing_listens)
{
    /* A port that was just free: bind a mock, note its port, stop it. */
    tools_mock m;
    proxy_mock_ehr_opts o = {.seed = 1};
    tools_mock_start(&m, &o);
    unsigned port = m.port;
    tools_mock_stop(&m);
    send_case sc;
    run_send(&sc, NULL, 1, 5000, port);
    ck_assert_int_eq(sc.rc, PX_ERR_IO);
    ck_assert_ptr_nonnull(strstr(sc.err.msg, "connect"));
    ck_assert_uint_eq(sc.res.sent, 0);
    ck_assert(sc.ms < 2000.0);
    free(sc.out);
}
END_TEST

START_TEST(send_times_out_when_no_ack_comes)
{
    proxy_mock_ehr_opts o = {.seed = 1, .drop_ack_rate = 1.0};
    send_case sc;
    run_send(&sc, &o, 2, 300, 0);
    ck_assert_int_eq(sc.rc, PX_ERR_TIMEOUT);
    ck_assert_uint_eq(sc.res.sent, 1);
    ck_assert_uint_eq(sc.res.answered, 0);
    ck_assert_msg(sc.ms >= 300.0 && sc.ms < 3000.0, "timed out after %.1f ms", sc.ms);
    free(sc.out);
}
END_TEST

START_TEST(send_reports_a_connection_closed_by_the_peer)
{
    proxy_mock_ehr_opts o = {.seed = 1, .close_after = 1};
    send_case sc;
    run_send(&sc, &o, 3, 5000, 0);
    /* EOF, or a reset when the second message reached the closing socket first. */
    ck_assert_msg(sc.rc == PX_ERR_CLOSED || sc.rc == PX_ERR_IO, "rc %d", sc.rc);
    ck_assert_uint_le(sc.res.sent, 2);
    ck_assert_uint_eq(sc.res.answered, 1);
    ck_assert_uint_eq(sc.res.accepted, 1);
    free(sc.out);
}
END_TEST

START_TEST(send_accepts_ca_and_reports_application_acks_that_arrive_meanwhile)
{
    proxy_mock_ehr_opts o = {.seed = 1, .enhanced = true};
    send_case sc;
    run_send(&sc, &o, 3, 5000, 0);
    ck_assert_int_eq(sc.rc, PX_OK);
    ck_assert_uint_eq(sc.res.accepted, 3);
    ck_assert_uint_eq(sc.res.mismatched, 0);
    /* Each CA and its application AA leave together, so the AA of messages 1 and 2 arrive
     * while 2 and 3 wait; the last one is not waited for. */
    ck_assert_uint_eq(sc.res.app_acks, 2);
    ck_assert(proxy_send_result_ok(&sc.res));
    ck_assert_uint_eq(count_text(sc.out, "msa1=CA"), 3);
    ck_assert_ptr_nonnull(strstr(sc.out, "app-ack msa1=AA msa2=ID-1\n"));
    free(sc.out);
}
END_TEST

START_TEST(send_resolves_a_host_name)
{
    char *dir = tools_tmpdir();
    proxy_send_list_t *l = make_list(dir, 1);
    tools_mock m;
    proxy_mock_ehr_opts o = {.seed = 1};
    tools_mock_start(&m, &o);
    proxy_send_opts so = {.host = "localhost", .port = m.port, .timeout_ms = 5000};
    proxy_send_result res;
    px_error err;
    ck_assert_int_eq(proxy_send_run(&so, l, &res, &err), PX_OK);
    ck_assert_uint_eq(res.accepted, 1);
    /* Resolution fails (PX_ERR_IO) or, with a slow resolver, the timer fires first. */
    so.host = "no-such-host.invalid";
    so.timeout_ms = 2000;
    ck_assert_int_ne(proxy_send_run(&so, l, &res, &err), PX_OK);
    ck_assert_uint_eq(res.sent, 0);
    tools_mock_stop(&m);
    proxy_send_list_destroy(l);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

TCase *tools_tcase_send(void)
{
    TCase *tc = tcase_create("send");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, send_list_splits_a_file_and_normalises_separators_to_cr);
    tcase_add_test(tc, send_list_splits_batches_unless_told_to_keep_them_whole);
    tcase_add_test(tc, send_list_walks_directories_in_sorted_order_skipping_dot_files);
    tcase_add_test(tc, send_list_refuses_missing_empty_and_stray_content);
    tcase_add_test(tc, send_reports_every_message_accepted_by_an_aa_server);
    tcase_add_test(tc, send_counts_ae_as_negative_and_prints_the_error_text);
    tcase_add_test(tc, send_flags_an_ack_that_does_not_echo_msh10);
    tcase_add_test(tc, send_flags_acks_without_a_readable_msa);
    tcase_add_test(tc, send_fails_with_an_io_error_when_nothing_listens);
    tcase_add_test(tc, send_times_out_when_no_ack_comes);
    tcase_add_test(tc, send_reports_a_connection_closed_by_the_peer);
    tcase_add_test(tc, send_accepts_ca_and_reports_application_acks_that_arrive_meanwhile);
    tcase_add_test(tc, send_resolves_a_host_name);
    return tc;
}
