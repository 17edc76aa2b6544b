/* mock-ehr: the answers it builds and the faults it injects, over real sockets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mock_ehr.h"
#include "tools/harness.h"
#include "tools/tcases.h"

#define WAIT_MS 3000

static proxy_mock_ehr_opts default_opts(void)
{
    proxy_mock_ehr_opts o;
    memset(&o, 0, sizeof(o));
    o.seed = 1;
    return o;
}

/* Sends a synthetic message with control id `id` and returns the answer (free it). */
static char *send_and_recv(tools_conn *c, const char *id, size_t *len)
{
    char msg[1024];
    size_t n = tools_make_msg(msg, sizeof(msg), id, "\r");
    tools_conn_send(c, msg, n);
    char *ack = tools_conn_recv(c, WAIT_MS, len);
    ck_assert_msg(ack != NULL, "no answer to %s", id);
    return ack;
}

#define FIELD(msg, seg, f, c) tools_field((msg), strlen(msg), (seg), (f), (c), buf, sizeof(buf))

START_TEST(mock_answers_aa_echoing_msh10_with_applications_swapped)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[256];
    char *ack = send_and_recv(&c, "CTL-0001", NULL);
    ck_assert_str_eq(FIELD(ack, "MSH", 9, 1), "ACK");
    ck_assert_str_eq(FIELD(ack, "MSA", 1, 0), "AA");
    ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), "CTL-0001");
    ck_assert_str_eq(FIELD(ack, "MSH", 3, 0), "RECVAPP");
    ck_assert_str_eq(FIELD(ack, "MSH", 4, 0), "RECVFAC");
    ck_assert_str_eq(FIELD(ack, "MSH", 5, 0), "SENDAPP");
    ck_assert_str_eq(FIELD(ack, "MSH", 6, 0), "SENDFAC");
    ck_assert_str_ne(FIELD(ack, "MSH", 10, 0), "CTL-0001");
    ck_assert_str_ne(FIELD(ack, "MSH", 10, 0), "");
    ck_assert_str_eq(FIELD(ack, "MSH", 12, 0), "2.5.1");
    ck_assert_ptr_null(strstr(ack, "\rERR|"));
    free(ack);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.received, 1);
    ck_assert_uint_eq(m.stats.acked, 1);
    ck_assert_uint_eq(m.stats.naked, 0);
}
END_TEST

START_TEST(mock_answers_ae_with_an_err_segment_at_nak_rate_one)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.nak_rate = 1.0;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[256], id[32];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "NAK-%d", i);
        char *ack = send_and_recv(&c, id, NULL);
        ck_assert_str_eq(FIELD(ack, "MSA", 1, 0), "AE");
        ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), id);
        ck_assert_ptr_nonnull(strstr(ack, "\rERR|"));
        free(ack);
    }
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.received, 5);
    ck_assert_uint_eq(m.stats.naked, 5);
    ck_assert_uint_eq(m.stats.acked, 0);
}
END_TEST

/* The AA/AE sequence of 40 messages under nak_rate 0.5 with a seed, as a string. */
static void nak_pattern(uint64_t seed, char *out)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.nak_rate = 0.5;
    o.seed = seed;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[64], id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "S%d", i);
        char *ack = send_and_recv(&c, id, NULL);
        out[i] = FIELD(ack, "MSA", 1, 0)[1];
        free(ack);
    }
    out[40] = '\0';
    tools_conn_close(&c);
    tools_mock_stop(&m);
}

START_TEST(mock_nak_choices_repeat_with_the_same_seed)
{
    char a[41], b[41], c[41];
    nak_pattern(42, a);
    nak_pattern(42, b);
    nak_pattern(43, c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_ptr_nonnull(strchr(a, 'A'));
    ck_assert_ptr_nonnull(strchr(a, 'E'));
}
END_TEST

START_TEST(mock_holds_each_ack_for_delay_ms_and_keeps_them_in_order)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.delay_ms = 150;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char msg[1024], buf[64], id[32];
    double sent[10];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "D%d", i);
        size_t n = tools_make_msg(msg, sizeof(msg), id, "\r");
        sent[i] = tools_now_ms();
        tools_conn_send(&c, msg, n);
    }
    for (int i = 0; i < 10; i++) {
        char *ack = tools_conn_recv(&c, WAIT_MS, NULL);
        double got = tools_now_ms();
        ck_assert_ptr_nonnull(ack);
        snprintf(id, sizeof(id), "D%d", i);
        ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), id);
        ck_assert_msg(got - sent[i] >= 150.0, "ACK %d after %.1f ms", i, got - sent[i]);
        ck_assert_msg(got - sent[i] < 150.0 + 1500.0, "ACK %d after %.1f ms", i, got - sent[i]);
        free(ack);
    }
    tools_conn_close(&c);
    tools_mock_stop(&m);
}
END_TEST

START_TEST(mock_closes_a_connection_after_n_messages_once_their_acks_are_out)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.close_after = 3;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char msg[1024], buf[64], id[32];
    /* Five at once: the fourth and fifth must be neither read nor answered. */
    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof(id), "C%d", i);
        size_t n = tools_make_msg(msg, sizeof(msg), id, "\r");
        tools_conn_send(&c, msg, n);
    }
    for (int i = 1; i <= 3; i++) {
        char *ack = tools_conn_recv(&c, WAIT_MS, NULL);
        ck_assert_ptr_nonnull(ack);
        snprintf(id, sizeof(id), "C%d", i);
        ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), id);
        free(ack);
    }
    ck_assert(tools_conn_wait_closed(&c, WAIT_MS));
    tools_conn_close(&c);
    /* The server itself keeps accepting. */
    tools_conn_open(&c, m.port);
    char *ack = send_and_recv(&c, "AGAIN", NULL);
    ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), "AGAIN");
    free(ack);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.received, 4);
}
END_TEST

START_TEST(mock_enhanced_sends_ca_at_once_then_an_application_ack)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.enhanced = true;
    o.app_ack_delay_ms = 500;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[64], ca_id[64];
    double t0 = tools_now_ms();
    char *ca = send_and_recv(&c, "ENH-1", NULL);
    double t_ca = tools_now_ms();
    ck_assert_str_eq(FIELD(ca, "MSA", 1, 0), "CA");
    ck_assert_str_eq(FIELD(ca, "MSA", 2, 0), "ENH-1");
    ck_assert_msg(t_ca - t0 < 400.0, "commit ACK took %.1f ms", t_ca - t0);
    snprintf(ca_id, sizeof(ca_id), "%s", FIELD(ca, "MSH", 10, 0));
    char *app = tools_conn_recv(&c, WAIT_MS, NULL);
    double t_app = tools_now_ms();
    ck_assert_ptr_nonnull(app);
    ck_assert_msg(t_app - t0 >= 500.0, "application ACK after %.1f ms", t_app - t0);
    ck_assert_str_eq(FIELD(app, "MSH", 9, 1), "ACK");
    ck_assert_str_eq(FIELD(app, "MSA", 1, 0), "AA");
    ck_assert_str_eq(FIELD(app, "MSA", 2, 0), "ENH-1");
    ck_assert_str_ne(FIELD(app, "MSH", 10, 0), ca_id);
    ck_assert_str_ne(FIELD(app, "MSH", 10, 0), "");
    free(ca);
    free(app);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.acked, 1);
}
END_TEST

START_TEST(mock_enhanced_with_nak_rate_one_sends_ca_then_application_ae)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.enhanced = true;
    o.nak_rate = 1.0;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[64];
    char *ca = send_and_recv(&c, "ENH-2", NULL);
    ck_assert_str_eq(FIELD(ca, "MSA", 1, 0), "CA");
    char *app = tools_conn_recv(&c, WAIT_MS, NULL);
    ck_assert_ptr_nonnull(app);
    ck_assert_str_eq(FIELD(app, "MSA", 1, 0), "AE");
    ck_assert_str_eq(FIELD(app, "MSA", 2, 0), "ENH-2");
    free(ca);
    free(app);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.naked, 1);
}
END_TEST

static const proxy_mock_bad_ack bad_kinds[] = {
    PROXY_MOCK_ACK_WRONG_MSA2,
    PROXY_MOCK_ACK_BLANK_MSA2,
    PROXY_MOCK_ACK_GARBAGE,
    PROXY_MOCK_ACK_NO_MSA,
};

START_TEST(mock_bad_ack_spoils_every_ack_as_named)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.bad_ack = bad_kinds[_i];
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char buf[64];
    for (int k = 0; k < 2; k++) {
        char *ack = send_and_recv(&c, k == 0 ? "BAD-1" : "BAD-2", NULL);
        const char *id = k == 0 ? "BAD-1" : "BAD-2";
        char wrong[32];
        snprintf(wrong, sizeof(wrong), "WRONG-%s", id);
        switch (o.bad_ack) {
        case PROXY_MOCK_ACK_WRONG_MSA2:
            ck_assert_str_eq(FIELD(ack, "MSA", 1, 0), "AA");
            ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), wrong);
            break;
        case PROXY_MOCK_ACK_BLANK_MSA2:
            ck_assert_str_eq(FIELD(ack, "MSA", 1, 0), "AA");
            ck_assert_ptr_nonnull(strstr(ack, "\rMSA|AA"));
            ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), "");
            ck_assert_str_eq(FIELD(ack, "MSH", 9, 1), "ACK");
            break;
        case PROXY_MOCK_ACK_GARBAGE:
            ck_assert_str_eq(ack, proxy_mock_garbage_ack);
            ck_assert_ptr_null(strstr(ack, "MSH|"));
            break;
        case PROXY_MOCK_ACK_NO_MSA:
            ck_assert_str_eq(FIELD(ack, "MSH", 9, 1), "ACK");
            ck_assert_ptr_null(strstr(ack, "MSA|"));
            ck_assert_ptr_nonnull(strstr(ack, "MSH|"));
            break;
        default:
            ck_abort_msg("unexpected kind");
        }
        free(ack);
    }
    tools_conn_close(&c);
    tools_mock_stop(&m);
}
END_TEST

START_TEST(mock_bad_ack_names_parse_and_unknown_names_do_not)
{
    proxy_mock_bad_ack k;
    ck_assert(proxy_mock_bad_ack_parse("wrong-msa2", &k) && k == PROXY_MOCK_ACK_WRONG_MSA2);
    ck_assert(proxy_mock_bad_ack_parse("blank-msa2", &k) && k == PROXY_MOCK_ACK_BLANK_MSA2);
    ck_assert(proxy_mock_bad_ack_parse("garbage", &k) && k == PROXY_MOCK_ACK_GARBAGE);
    ck_assert(proxy_mock_bad_ack_parse("no-msa", &k) && k == PROXY_MOCK_ACK_NO_MSA);
    ck_assert(!proxy_mock_bad_ack_parse("wrong", &k));
    ck_assert(!proxy_mock_bad_ack_parse("", &k));
}
END_TEST

START_TEST(mock_drops_every_ack_at_drop_rate_one)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.drop_ack_rate = 1.0;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char msg[1024];
    size_t n = tools_make_msg(msg, sizeof(msg), "DROP-1", "\r");
    tools_conn_send(&c, msg, n);
    tools_conn_send(&c, msg, n);
    ck_assert_ptr_null(tools_conn_recv(&c, 400, NULL));
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.received, 2);
    ck_assert_uint_eq(m.stats.dropped, 2);
    ck_assert_uint_eq(m.stats.acked, 0);
}
END_TEST

START_TEST(mock_records_every_frame_byte_for_byte_in_arrival_order)
{
    char *dir = tools_tmpdir();
    char *rec = tools_path(dir, "record.mllp");
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.record_path = rec;
    tools_mock_start(&m, &o);
    tools_conn a, b;
    tools_conn_open(&a, m.port);
    tools_conn_open(&b, m.port);
    /* LF separators, a trailing blank and bytes above 0x7f must all survive unchanged. */
    char m1[1024], m2[1024], m3[1024];
    size_t n1 = tools_make_msg(m1, sizeof(m1), "REC-A1", "\n");
    size_t n2 = tools_make_msg(m2, sizeof(m2), "REC-B1", "\r");
    size_t n3 = tools_make_msg(m3, sizeof(m3), "REC-A2", "\r\n");
    m3[n3++] = (char)0xe9;
    m3[n3++] = ' ';
    char expect[4096];
    size_t e = 0;
    const char *msgs[3] = {m1, m2, m3};
    size_t lens[3] = {n1, n2, n3};
    tools_conn *conns[3] = {&a, &b, &a};
    for (int i = 0; i < 3; i++) {
        tools_conn_send(conns[i], msgs[i], lens[i]);
        /* Wait for the ACK so the order across the two connections is known. */
        char *ack = tools_conn_recv(conns[i], WAIT_MS, NULL);
        ck_assert_ptr_nonnull(ack);
        free(ack);
        expect[e++] = 0x0b;
        memcpy(expect + e, msgs[i], lens[i]);
        e += lens[i];
        expect[e++] = 0x1c;
        expect[e++] = 0x0d;
    }
    /* Written before the ACK left: readable now, while the mock still runs. */
    size_t got_len;
    char *got = tools_read_file(rec, &got_len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got_len, e);
    ck_assert_mem_eq(got, expect, e);
    free(got);
    tools_conn_close(&a);
    tools_conn_close(&b);
    tools_mock_stop(&m);
    free(rec);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(mock_closes_a_connection_on_unframeable_input)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    static const char bad[] = "\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\r\x0bMSH|";
    tools_conn_write(&c, bad, sizeof(bad) - 1);
    ck_assert(tools_conn_wait_closed(&c, WAIT_MS));
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.unframeable, 1);
    ck_assert_uint_eq(m.stats.received, 0);
}
END_TEST

START_TEST(mock_rejects_a_frame_without_msh_with_ar)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    tools_conn_send(&c, "HELLO THERE\r", 12);
    char *ack = tools_conn_recv(&c, WAIT_MS, NULL);
    ck_assert_ptr_nonnull(ack);
    char buf[64];
    ck_assert_str_eq(FIELD(ack, "MSA", 1, 0), "AR");
    ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), "");
    free(ack);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.naked, 1);
}
END_TEST

START_TEST(mock_logs_connections_without_message_content)
{
    char *dir = tools_tmpdir();
    char *path = tools_path(dir, "log.jsonl");
    FILE *log = fopen(path, "w");
    ck_assert_ptr_nonnull(log);
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.log = log;
    o.nak_rate = 1.0;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char *ack = send_and_recv(&c, "LOG-1", NULL);
    free(ack);
    tools_conn_send(&c, "\x0b", 1); /* and a truncated frame at close */
    tools_conn_close(&c);
    tools_conn_open(&c, m.port);
    tools_conn_close(&c);
    tools_mock_stop(&m);
    fclose(log);
    char *text = tools_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "{\"event\":\"conn_open\",\"conn\":1}"));
    ck_assert_ptr_nonnull(strstr(text, "\"event\":\"conn_close\",\"conn\":1"));
    ck_assert_ptr_nonnull(strstr(text, "\"event\":\"conn_close\",\"conn\":2"));
    ck_assert_ptr_null(strstr(text, "ZZTESTNAME"));
    ck_assert_ptr_null(strstr(text, "900001"));
    ck_assert_ptr_null(strstr(text, "19700101"));
    /* One JSON object per line. */
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; lines++) {
        const char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_int_eq(p[0], '{');
        ck_assert_int_eq(nl[-1], '}');
        p = nl + 1;
    }
    ck_assert_uint_eq(lines, 4);
    free(text);
    free(path);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(mock_answers_many_pipelining_connections_each_in_order)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    tools_mock_start(&m, &o);
    enum { CONNS = 8, MSGS = 25 };
    tools_conn c[CONNS];
    char msg[1024], buf[64], id[32];
    for (int k = 0; k < CONNS; k++)
        tools_conn_open(&c[k], m.port);
    for (int i = 0; i < MSGS; i++)
        for (int k = 0; k < CONNS; k++) {
            snprintf(id, sizeof(id), "P%d-%d", k, i);
            size_t n = tools_make_msg(msg, sizeof(msg), id, "\r");
            tools_conn_send(&c[k], msg, n);
        }
    for (int k = 0; k < CONNS; k++) {
        for (int i = 0; i < MSGS; i++) {
            char *ack = tools_conn_recv(&c[k], WAIT_MS, NULL);
            ck_assert_ptr_nonnull(ack);
            snprintf(id, sizeof(id), "P%d-%d", k, i);
            ck_assert_str_eq(FIELD(ack, "MSA", 2, 0), id);
            free(ack);
        }
        tools_conn_close(&c[k]);
    }
    tools_mock_stop(&m);
    ck_assert_uint_eq(m.stats.received, CONNS * MSGS);
    ck_assert_uint_eq(m.stats.connections, CONNS);
}
END_TEST

START_TEST(mock_shuts_down_cleanly_with_acks_still_waiting)
{
    tools_mock m;
    proxy_mock_ehr_opts o = default_opts();
    o.delay_ms = 5000;
    o.enhanced = true;
    o.app_ack_delay_ms = 5000;
    tools_mock_start(&m, &o);
    tools_conn c;
    tools_conn_open(&c, m.port);
    char msg[1024];
    size_t n = tools_make_msg(msg, sizeof(msg), "LATE-1", "\r");
    tools_conn_send(&c, msg, n);
    tools_conn_send(&c, msg, n);
    /* Let the mock take both in before it is stopped. */
    ck_assert_ptr_null(tools_conn_recv(&c, 200, NULL));
    double t0 = tools_now_ms();
    tools_mock_stop(&m); /* asserts uv_loop_close == 0 */
    ck_assert_msg(tools_now_ms() - t0 < 1000.0, "shutdown waited for the timers");
    ck_assert_uint_eq(m.stats.received, 2);
    ck_assert(tools_conn_wait_closed(&c, WAIT_MS));
    tools_conn_close(&c);
}
END_TEST

START_TEST(mock_refuses_bad_rates_and_a_busy_port)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    proxy_mock_ehr_opts o = default_opts();
    proxy_mock_ehr_t *m = NULL, *m2 = NULL;
    px_error err;
    o.nak_rate = 1.5;
    ck_assert_int_eq(proxy_mock_ehr_create(&loop, &o, &m, &err), PX_ERR_INVAL);
    ck_assert_ptr_null(m);
    o.nak_rate = 0;
    o.host = "localhost";
    ck_assert_int_eq(proxy_mock_ehr_create(&loop, &o, &m, &err), PX_ERR_INVAL);
    o.host = "127.0.0.1";
    ck_assert_int_eq(proxy_mock_ehr_create(&loop, &o, &m, &err), PX_OK);
    o.port = proxy_mock_ehr_port(m);
    ck_assert_int_eq(proxy_mock_ehr_create(&loop, &o, &m2, &err), PX_ERR_IO);
    ck_assert_ptr_null(m2);
    o.port = 0;
    o.record_path = "/nonexistent-dir/record.mllp";
    ck_assert_int_eq(proxy_mock_ehr_create(&loop, &o, &m2, &err), PX_ERR_IO);
    proxy_mock_ehr_close(m, NULL, NULL);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

TCase *tools_tcase_mock_ehr(void)
{
    TCase *tc = tcase_create("mock_ehr");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mock_answers_aa_echoing_msh10_with_applications_swapped);
    tcase_add_test(tc, mock_answers_ae_with_an_err_segment_at_nak_rate_one);
    tcase_add_test(tc, mock_nak_choices_repeat_with_the_same_seed);
    tcase_add_test(tc, mock_holds_each_ack_for_delay_ms_and_keeps_them_in_order);
    tcase_add_test(tc, mock_closes_a_connection_after_n_messages_once_their_acks_are_out);
    tcase_add_test(tc, mock_enhanced_sends_ca_at_once_then_an_application_ack);
    tcase_add_test(tc, mock_enhanced_with_nak_rate_one_sends_ca_then_application_ae);
    tcase_add_loop_test(tc, mock_bad_ack_spoils_every_ack_as_named, 0,
                        (int)(sizeof(bad_kinds) / sizeof(bad_kinds[0])));
    tcase_add_test(tc, mock_bad_ack_names_parse_and_unknown_names_do_not);
    tcase_add_test(tc, mock_drops_every_ack_at_drop_rate_one);
    tcase_add_test(tc, mock_records_every_frame_byte_for_byte_in_arrival_order);
    tcase_add_test(tc, mock_closes_a_connection_on_unframeable_input);
    tcase_add_test(tc, mock_rejects_a_frame_without_msh_with_ar);
    tcase_add_test(tc, mock_logs_connections_without_message_content);
    tcase_add_test(tc, mock_answers_many_pipelining_connections_each_in_order);
    tcase_add_test(tc, mock_shuts_down_cleanly_with_acks_still_waiting);
    tcase_add_test(tc, mock_refuses_bad_rates_and_a_busy_port);
    return tc;
}
