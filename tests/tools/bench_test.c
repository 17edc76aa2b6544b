/* bench: message counts, control ids, MSA-2 checks, timeouts and the acked log, against an
 * in-process mock EHR. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/bench.h"
#include "proxy/send.h"
#include "tools/harness.h"
#include "tools/tcases.h"

#define EXTRA "NTE|1||second message"

/* The input: two different synthetic messages, the second with LF separators and an NTE. */
static proxy_send_list_t *bench_input(const char *dir)
{
    char *path = tools_path(dir, "input.hl7");
    char buf[2048];
    size_t n = tools_make_msg(buf, sizeof(buf), "TEMPLATE-1", "\r");
    n += tools_make_msg(buf + n, sizeof(buf) - n, "T2", "\n");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, EXTRA "\n");
    tools_write_file(path, buf, n);
    proxy_send_list_t *l = NULL;
    ck_assert_int_eq(proxy_send_list_create(&l, NULL), PX_OK);
    ck_assert_int_eq(proxy_send_list_add_path(l, path, false, NULL), PX_OK);
    ck_assert_uint_eq(proxy_send_list_count(l), 2);
    free(path);
    return l;
}

typedef struct bench_case {
    proxy_bench_result *res;
    px_err rc;
    px_error err;
    tools_mock mock;
} bench_case;

static void run_bench(bench_case *bc, const proxy_mock_ehr_opts *mo, proxy_bench_opts *bo,
                      const char *dir)
{
    proxy_send_list_t *input = bench_input(dir);
    tools_mock_start(&bc->mock, mo);
    bo->host = "127.0.0.1";
    bo->port = bc->mock.port;
    bc->res = malloc(sizeof(*bc->res));
    ck_assert_ptr_nonnull(bc->res);
    bc->rc = proxy_bench_run(bo, input, bc->res, &bc->err);
    tools_mock_stop(&bc->mock);
    proxy_send_list_destroy(input);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(bench_sends_m_messages_with_unique_ids_and_counts_m_matching_acks)
{
    char *dir = tools_tmpdir();
    char *rec = tools_path(dir, "record.mllp");
    char *acked = tools_path(dir, "acked.txt");
    proxy_mock_ehr_opts mo = {.seed = 1, .record_path = rec};
    proxy_bench_opts bo = {
        .conns = 4, .pipeline = 8, .messages = 2000, .acked_log = acked, .id_prefix = "T"};
    bench_case bc;
    run_bench(&bc, &mo, &bo, dir);
    proxy_bench_result *r = bc.res;
    ck_assert_int_eq(bc.rc, PX_OK);
    ck_assert_uint_eq(r->sent, 2000);
    ck_assert_uint_eq(r->answered, 2000);
    ck_assert_uint_eq(r->aa, 2000);
    ck_assert_uint_eq(r->errors, 0);
    ck_assert_uint_eq(r->conn_failures, 0);
    ck_assert_uint_eq(r->measured, 2000);
    ck_assert_uint_eq(r->latency.total, 2000);
    ck_assert(r->msgs_per_sec > 0);
    ck_assert(proxy_bench_result_ok(r));
    ck_assert_uint_eq(bc.mock.stats.received, 2000);

    /* The record: 2000 frames, unique control ids T<conn>-<seq>, sequence numbers rising
     * per connection, and apart from MSH-10 the bytes of the input messages in turn (odd
     * sequence numbers the first, even ones the second, normalised to CR). */
    char t1[2048], t2[2048];
    size_t n1 = tools_make_msg(t1, sizeof(t1), "@", "\r");
    size_t n2 = tools_make_msg(t2, sizeof(t2), "@", "\r");
    n2 += (size_t)snprintf(t2 + n2, sizeof(t2) - n2, EXTRA "\r");
    size_t len;
    char *data = tools_read_file(rec, &len);
    ck_assert_ptr_nonnull(data);
    char **ids = calloc(2000, sizeof(char *));
    ck_assert_ptr_nonnull(ids);
    unsigned long last_seq[5] = {0};
    size_t frames = 0, pos = 0;
    while (pos < len) {
        ck_assert_int_eq(data[pos], 0x0b);
        char *end = memchr(data + pos, 0x1c, len - pos);
        ck_assert_ptr_nonnull(end);
        size_t flen = (size_t)(end - data - pos - 1);
        const char *f = data + pos + 1;
        char id[64];
        tools_field(f, flen, "MSH", 10, 0, id, sizeof(id));
        unsigned conn;
        unsigned long seq;
        ck_assert_int_eq(sscanf(id, "T%u-%lu", &conn, &seq), 2);
        ck_assert(conn >= 1 && conn <= 4);
        ck_assert_uint_gt(seq, last_seq[conn]);
        last_seq[conn] = seq;
        /* Splice the id out and compare with the template around "@". */
        const char *at = strstr(f, id);
        ck_assert_ptr_nonnull(at);
        size_t pre = (size_t)(at - f), post = flen - pre - strlen(id);
        const char *tmpl = seq % 2 == 1 ? t1 : t2;
        ck_assert_uint_eq(pre + 1 + post, seq % 2 == 1 ? n1 : n2);
        ck_assert_mem_eq(f, tmpl, pre);
        ck_assert_mem_eq(at + strlen(id), tmpl + pre + 1, post);
        ck_assert_uint_lt(frames, 2000);
        ids[frames++] = strdup(id);
        pos += flen + 3;
        ck_assert_int_eq(data[pos - 1], 0x0d);
    }
    ck_assert_uint_eq(frames, 2000);
    qsort(ids, frames, sizeof(char *), cmp_str);
    for (size_t i = 1; i < frames; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);

    /* The acked log: 2000 lines, exactly the ids the EHR received. */
    char *log = tools_read_file(acked, &len);
    ck_assert_ptr_nonnull(log);
    char **lines = calloc(2001, sizeof(char *));
    ck_assert_ptr_nonnull(lines);
    size_t nl = 0;
    for (char *p = log; *p != '\0';) {
        char *e = strchr(p, '\n');
        ck_assert_ptr_nonnull(e);
        *e = '\0';
        ck_assert_uint_lt(nl, 2001);
        lines[nl++] = p;
        p = e + 1;
    }
    ck_assert_uint_eq(nl, 2000);
    qsort(lines, nl, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nl; i++)
        ck_assert_str_eq(lines[i], ids[i]);
    for (size_t i = 0; i < frames; i++)
        free(ids[i]);
    free(ids);
    free(lines);
    free(log);
    free(data);
    free(r);
    free(rec);
    free(acked);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_reports_every_wrong_msa2_as_an_error)
{
    char *dir = tools_tmpdir();
    char *acked = tools_path(dir, "acked.txt");
    proxy_mock_ehr_opts mo = {.seed = 1, .bad_ack = PROXY_MOCK_ACK_WRONG_MSA2};
    proxy_bench_opts bo = {.conns = 2, .pipeline = 2, .messages = 100, .acked_log = acked};
    bench_case bc;
    run_bench(&bc, &mo, &bo, dir);
    ck_assert_int_eq(bc.rc, PX_OK);
    ck_assert_uint_eq(bc.res->sent, 100);
    ck_assert_uint_eq(bc.res->mismatches, 100);
    ck_assert_uint_eq(bc.res->errors, 100);
    ck_assert(!proxy_bench_result_ok(bc.res));
    /* A mismatched ACK acknowledges nothing we sent: the acked log stays empty. */
    size_t len = 99;
    char *log = tools_read_file(acked, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_uint_eq(len, 0);
    free(log);
    free(bc.res);
    free(acked);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_counts_unreadable_acks_as_errors)
{
    char *dir = tools_tmpdir();
    proxy_mock_ehr_opts mo = {.seed = 1, .bad_ack = PROXY_MOCK_ACK_NO_MSA};
    proxy_bench_opts bo = {.conns = 1, .pipeline = 4, .messages = 50};
    bench_case bc;
    run_bench(&bc, &mo, &bo, dir);
    ck_assert_uint_eq(bc.res->unreadable, 50);
    ck_assert_uint_eq(bc.res->errors, 50);
    ck_assert(!proxy_bench_result_ok(bc.res));
    free(bc.res);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_counts_ae_separately_from_errors)
{
    char *dir = tools_tmpdir();
    char *acked = tools_path(dir, "acked.txt");
    proxy_mock_ehr_opts mo = {.seed = 1, .nak_rate = 1.0};
    proxy_bench_opts bo = {.conns = 2, .pipeline = 1, .messages = 40, .acked_log = acked};
    bench_case bc;
    run_bench(&bc, &mo, &bo, dir);
    ck_assert_uint_eq(bc.res->ae, 40);
    ck_assert_uint_eq(bc.res->aa, 0);
    ck_assert_uint_eq(bc.res->errors, 0);
    ck_assert(proxy_bench_result_ok(bc.res));
    size_t len = 99;
    char *log = tools_read_file(acked, &len);
    ck_assert_uint_eq(len, 0);
    free(log);
    free(bc.res);
    free(acked);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_fails_every_connection_when_nothing_listens)
{
    char *dir = tools_tmpdir();
    proxy_send_list_t *input = bench_input(dir);
    tools_mock m;
    proxy_mock_ehr_opts mo = {.seed = 1};
    tools_mock_start(&m, &mo);
    unsigned port = m.port;
    tools_mock_stop(&m);
    proxy_bench_opts bo = {
        .host = "127.0.0.1", .port = port, .conns = 3, .pipeline = 1, .messages = 10};
    proxy_bench_result *r = malloc(sizeof(*r));
    double t0 = tools_now_ms();
    ck_assert_int_eq(proxy_bench_run(&bo, input, r, NULL), PX_OK);
    ck_assert(tools_now_ms() - t0 < 3000.0);
    ck_assert_uint_eq(r->conn_failures, 3);
    ck_assert_uint_eq(r->sent, 0);
    ck_assert(!proxy_bench_result_ok(r));
    free(r);
    proxy_send_list_destroy(input);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_fails_a_connection_whose_acks_stop_and_counts_its_messages)
{
    char *dir = tools_tmpdir();
    proxy_mock_ehr_opts mo = {.seed = 1, .drop_ack_rate = 1.0};
    proxy_bench_opts bo = {.conns = 2, .pipeline = 3, .messages = 100, .timeout_ms = 300};
    bench_case bc;
    double t0 = tools_now_ms();
    run_bench(&bc, &mo, &bo, dir);
    ck_assert(tools_now_ms() - t0 < 5000.0);
    ck_assert_uint_eq(bc.res->timeouts, 2);
    ck_assert_uint_eq(bc.res->conn_failures, 2);
    ck_assert_uint_eq(bc.res->sent, 6);
    ck_assert_uint_eq(bc.res->unanswered, 6);
    ck_assert_uint_eq(bc.res->errors, 6);
    ck_assert(!proxy_bench_result_ok(bc.res));
    free(bc.res);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_runs_for_a_duration_after_the_warmup_then_drains)
{
    char *dir = tools_tmpdir();
    proxy_mock_ehr_opts mo = {.seed = 1, .delay_ms = 2};
    proxy_bench_opts bo = {.conns = 2, .pipeline = 2, .duration_ms = 300, .warmup_ms = 200};
    bench_case bc;
    double t0 = tools_now_ms();
    run_bench(&bc, &mo, &bo, dir);
    double ms = tools_now_ms() - t0;
    ck_assert_msg(ms >= 500.0 && ms < 3000.0, "ran %.1f ms", ms);
    proxy_bench_result *r = bc.res;
    ck_assert_uint_eq(r->answered, r->sent);
    ck_assert_uint_gt(r->sent, 20);
    /* The warm-up's ACKs count as answered but are neither timed nor rated. */
    ck_assert_uint_lt(r->measured, r->answered);
    ck_assert_uint_gt(r->measured, 0);
    ck_assert_uint_eq(r->latency.total, r->measured);
    ck_assert_msg(r->seconds >= 0.25 && r->seconds < 1.5, "measured %.3f s", r->seconds);
    /* The mock holds each ACK 2 ms. */
    ck_assert_uint_ge(proxy_hist_percentile(&r->latency, 50), 2000);
    ck_assert(proxy_bench_result_ok(r));
    free(r);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_counts_commit_acks_and_application_acks_in_enhanced_mode)
{
    char *dir = tools_tmpdir();
    proxy_mock_ehr_opts mo = {.seed = 1, .enhanced = true};
    proxy_bench_opts bo = {.conns = 2, .pipeline = 2, .messages = 200};
    bench_case bc;
    run_bench(&bc, &mo, &bo, dir);
    ck_assert_uint_eq(bc.res->ca, 200);
    ck_assert_uint_eq(bc.res->errors, 0);
    ck_assert_uint_gt(bc.res->app_acks, 0);
    ck_assert_uint_le(bc.res->app_acks, 200);
    ck_assert(proxy_bench_result_ok(bc.res));
    free(bc.res);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(bench_refuses_input_without_msh10_and_bad_options)
{
    char *dir = tools_tmpdir();
    char *path = tools_path(dir, "short.hl7");
    static const char short_msh[] = "MSH|^~\\&|A|B|C|D\r";
    tools_write_file(path, short_msh, sizeof(short_msh) - 1);
    proxy_send_list_t *l = NULL;
    ck_assert_int_eq(proxy_send_list_create(&l, NULL), PX_OK);
    ck_assert_int_eq(proxy_send_list_add_path(l, path, false, NULL), PX_OK);
    proxy_bench_opts bo = {
        .host = "127.0.0.1", .port = 9, .conns = 1, .pipeline = 1, .messages = 1};
    proxy_bench_result *r = malloc(sizeof(*r));
    px_error err;
    ck_assert_int_eq(proxy_bench_run(&bo, l, r, &err), PX_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "MSH-10"));
    proxy_send_list_destroy(l);
    l = bench_input(dir);
    bo.messages = 0;
    ck_assert_int_eq(proxy_bench_run(&bo, l, r, &err), PX_ERR_INVAL);
    bo.messages = 1;
    bo.pipeline = 0;
    ck_assert_int_eq(proxy_bench_run(&bo, l, r, &err), PX_ERR_INVAL);
    free(r);
    proxy_send_list_destroy(l);
    free(path);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

TCase *tools_tcase_bench(void)
{
    TCase *tc = tcase_create("bench");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bench_sends_m_messages_with_unique_ids_and_counts_m_matching_acks);
    tcase_add_test(tc, bench_reports_every_wrong_msa2_as_an_error);
    tcase_add_test(tc, bench_counts_unreadable_acks_as_errors);
    tcase_add_test(tc, bench_counts_ae_separately_from_errors);
    tcase_add_test(tc, bench_fails_every_connection_when_nothing_listens);
    tcase_add_test(tc, bench_fails_a_connection_whose_acks_stop_and_counts_its_messages);
    tcase_add_test(tc, bench_runs_for_a_duration_after_the_warmup_then_drains);
    tcase_add_test(tc, bench_counts_commit_acks_and_application_acks_in_enhanced_mode);
    tcase_add_test(tc, bench_refuses_input_without_msh10_and_bad_options);
    return tc;
}
