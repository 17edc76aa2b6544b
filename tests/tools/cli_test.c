/* The commands as users run them: the parallax binary in child processes. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/harness.h"
#include "tools/tcases.h"

#define RUN_MS 30000

/* A `parallax mock-ehr` child with its port. */
typedef struct child_mock {
    pid_t pid;
    unsigned port;
    char *out, *err;
} child_mock;

static void child_mock_start(child_mock *cm, const char *dir, char *const extra[])
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tools_parallax();
    argv[n++] = "mock-ehr";
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    cm->out = tools_path(dir, "mock.out");
    cm->err = tools_path(dir, "mock.err");
    /* A previous mock's output must not be mistaken for this one's. */
    unlink(cm->out);
    cm->pid = tools_spawn(argv, cm->out, cm->err);
    char *text = tools_wait_for_text(cm->out, "\n", 10000);
    ck_assert_msg(text != NULL, "mock-ehr did not start");
    ck_assert_int_eq(sscanf(text, "listening 127.0.0.1:%u", &cm->port), 1);
    ck_assert_uint_ne(cm->port, 0);
    free(text);
}

/* Stops it with SIGTERM, asserts exit 0, returns its stderr (free it). */
static char *child_mock_stop(child_mock *cm)
{
    kill(cm->pid, SIGTERM);
    ck_assert_int_eq(tools_wait(cm->pid, 10000), 0);
    char *err = tools_read_file(cm->err, NULL);
    ck_assert_ptr_nonnull(err);
    free(cm->out);
    free(cm->err);
    return err;
}

/* Runs parallax with args; returns its exit status; *out and *err get its output. */
static int run(const char *dir, char *const args[], char **out, char **err)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tools_parallax();
    for (int i = 0; args[i] != NULL; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *op = tools_path(dir, "run.out"), *ep = tools_path(dir, "run.err");
    int status = tools_wait(tools_spawn(argv, op, ep), RUN_MS);
    if (out != NULL)
        *out = tools_read_file(op, NULL);
    if (err != NULL)
        *err = tools_read_file(ep, NULL);
    free(op);
    free(ep);
    return status;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *write_msgs(const char *dir, const char *name, int n, const char *sep)
{
    char *path = tools_path(dir, name);
    char *all = malloc((size_t)n * 1024 + 1);
    size_t len = 0;
    for (int i = 1; i <= n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CLI-%d", i);
        len += tools_make_msg(all + len, 1024, id, sep);
    }
    tools_write_file(path, all, len);
    free(all);
    return path;
}

START_TEST(cli_mock_ehr_prints_its_port_and_a_summary_on_sigterm)
{
    char *dir = tools_tmpdir();
    child_mock cm;
    child_mock_start(&cm, dir, NULL);
    tools_conn c;
    tools_conn_open(&c, cm.port);
    char msg[1024];
    size_t n = tools_make_msg(msg, sizeof(msg), "SUM-1", "\r");
    tools_conn_send(&c, msg, n);
    char *ack = tools_conn_recv(&c, 5000, NULL);
    ck_assert_ptr_nonnull(ack);
    free(ack);
    tools_conn_close(&c);
    char *err = child_mock_stop(&cm);
    ck_assert_ptr_nonnull(strstr(err, "\"event\":\"conn_open\""));
    ck_assert_ptr_nonnull(strstr(err, "{\"event\":\"summary\",\"received\":1,\"acked\":1,"
                                      "\"naked\":0,\"dropped\":0"));
    ck_assert_ptr_null(strstr(err, "ZZTESTNAME"));
    free(err);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_send_exits_0_when_every_message_gets_aa)
{
    char *dir = tools_tmpdir();
    char *rec = tools_path(dir, "rec.mllp");
    char *extra[] = {"--record", rec, NULL};
    child_mock cm;
    child_mock_start(&cm, dir, extra);
    char *file = write_msgs(dir, "in.hl7", 3, "\n");
    char port[16];
    snprintf(port, sizeof(port), "%u", cm.port);
    char *out = NULL;
    char *args[] = {"send", "--port", port, file, NULL};
    ck_assert_int_eq(run(dir, args, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "in.hl7#3 control_id=CLI-3 msa1=AA msa2=CLI-3"));
    free(out);
    free(child_mock_stop(&cm));
    /* What went on the wire: the three messages, LF rewritten to CR. */
    size_t len;
    char *wire = tools_read_file(rec, &len);
    ck_assert_ptr_nonnull(wire);
    ck_assert_ptr_null(memchr(wire, '\n', len));
    char expect[1024];
    size_t n = tools_make_msg(expect, sizeof(expect), "CLI-1", "\r");
    ck_assert_mem_eq(wire + 1, expect, n);
    free(wire);
    free(file);
    free(rec);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_send_exits_1_on_ae_and_on_an_msa2_mismatch)
{
    char *dir = tools_tmpdir();
    char *file = write_msgs(dir, "in.hl7", 2, "\r");
    for (int k = 0; k < 2; k++) {
        char *nak[] = {"--nak-rate", "1", NULL};
        char *wrong[] = {"--bad-ack", "wrong-msa2", NULL};
        child_mock cm;
        child_mock_start(&cm, dir, k == 0 ? nak : wrong);
        char port[16];
        snprintf(port, sizeof(port), "%u", cm.port);
        char *out = NULL;
        char *args[] = {"send", "--port", port, file, NULL};
        ck_assert_int_eq(run(dir, args, &out, NULL), 1);
        ck_assert_ptr_nonnull(strstr(out, k == 0 ? "result=negative" : "result=msa2-mismatch"));
        free(out);
        free(child_mock_stop(&cm));
    }
    free(file);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_send_exits_5_when_nothing_listens_or_no_ack_comes)
{
    char *dir = tools_tmpdir();
    char *file = write_msgs(dir, "in.hl7", 1, "\r");
    child_mock cm;
    char *drop[] = {"--drop-ack-rate", "1", NULL};
    child_mock_start(&cm, dir, drop);
    char port[16];
    snprintf(port, sizeof(port), "%u", cm.port);
    char *err = NULL;
    char *args[] = {"send", "--port", port, "--timeout-ms", "300", file, NULL};
    ck_assert_int_eq(run(dir, args, NULL, &err), 5);
    ck_assert_ptr_nonnull(strstr(err, "no answer within 300 ms"));
    free(err);
    free(child_mock_stop(&cm));
    /* The mock is gone: its port refuses. */
    ck_assert_int_eq(run(dir, args, NULL, &err), 5);
    ck_assert_ptr_nonnull(strstr(err, "connect"));
    free(err);
    free(file);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_send_exits_3_for_an_unreadable_file_and_2_for_bad_usage)
{
    char *dir = tools_tmpdir();
    char *missing = tools_path(dir, "missing.hl7");
    char *err = NULL;
    char *args[] = {"send", "--port", "9", missing, NULL};
    ck_assert_int_eq(run(dir, args, NULL, &err), 3);
    ck_assert_ptr_nonnull(strstr(err, "missing.hl7"));
    free(err);
    char *no_port[] = {"send", missing, NULL};
    ck_assert_int_eq(run(dir, no_port, NULL, NULL), 2);
    char *bad_port[] = {"send", "--port", "70000", missing, NULL};
    ck_assert_int_eq(run(dir, bad_port, NULL, NULL), 2);
    char *both[] = {"bench", "--port", "9", "--messages", "1", "--duration", "1", missing, NULL};
    ck_assert_int_eq(run(dir, both, NULL, NULL), 2);
    char *bad_rate[] = {"mock-ehr", "--port", "0", "--nak-rate", "2", NULL};
    ck_assert_int_eq(run(dir, bad_rate, NULL, NULL), 2);
    char *bad_kind[] = {"mock-ehr", "--port", "0", "--bad-ack", "sometimes", NULL};
    ck_assert_int_eq(run(dir, bad_kind, NULL, NULL), 2);
    free(missing);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_bench_against_mock_ehr_gets_every_ack_and_logs_every_id)
{
    char *dir = tools_tmpdir();
    char *rec = tools_path(dir, "rec.mllp");
    char *acked = tools_path(dir, "acked.txt");
    char *extra[] = {"--record", rec, NULL};
    child_mock cm;
    child_mock_start(&cm, dir, extra);
    char *file = write_msgs(dir, "in.hl7", 2, "\r");
    char port[16];
    snprintf(port, sizeof(port), "%u", cm.port);
    char *out = NULL;
    char *args[] = {"bench",      "--port", port,          "--conns", "3",      "--pipeline", "4",
                    "--messages", "600",    "--acked-log", acked,     "--json", file,         NULL};
    ck_assert_int_eq(run(dir, args, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"sent\":600,\"answered\":600,"));
    ck_assert_ptr_nonnull(strstr(out, "\"errors\":0,"));
    ck_assert_ptr_nonnull(strstr(out, "\"conn_failures\":0,"));
    ck_assert_ptr_nonnull(strstr(out, "\"aa\":600,"));
    free(out);
    char *err = child_mock_stop(&cm);
    ck_assert_ptr_nonnull(strstr(err, "\"received\":600,"));
    free(err);
    /* Every logged id was received by the EHR, and there are 600 distinct ones. */
    size_t len;
    char *wire = tools_read_file(rec, &len);
    char *log = tools_read_file(acked, NULL);
    ck_assert_ptr_nonnull(wire);
    ck_assert_ptr_nonnull(log);
    char *ids[601];
    size_t lines = 0;
    for (char *p = log; *p != '\0';) {
        char *e = strchr(p, '\n');
        ck_assert_ptr_nonnull(e);
        *e = '\0';
        char needle[80];
        snprintf(needle, sizeof(needle), "|%s|", p);
        ck_assert_msg(strstr(wire, needle) != NULL, "%s not received", p);
        ck_assert_uint_lt(lines, 601);
        ids[lines++] = p;
        p = e + 1;
    }
    qsort(ids, lines, sizeof(ids[0]), cmp_str);
    for (size_t i = 1; i < lines; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    ck_assert_uint_eq(lines, 600);
    free(wire);
    free(log);
    free(file);
    free(rec);
    free(acked);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(cli_bench_exits_1_against_a_server_with_the_wrong_msa2)
{
    char *dir = tools_tmpdir();
    char *extra[] = {"--bad-ack", "wrong-msa2", NULL};
    child_mock cm;
    child_mock_start(&cm, dir, extra);
    char *file = write_msgs(dir, "in.hl7", 1, "\r");
    char port[16];
    snprintf(port, sizeof(port), "%u", cm.port);
    char *out = NULL;
    char *args[] = {"bench", "--port", port, "--messages", "50", file, NULL};
    ck_assert_int_eq(run(dir, args, &out, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out, "errors 50 (msa2 mismatches 50"));
    free(out);
    free(child_mock_stop(&cm));
    free(file);
    tools_rmdir(dir);
    free(dir);
}
END_TEST

TCase *tools_tcase_cli(void)
{
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cli_mock_ehr_prints_its_port_and_a_summary_on_sigterm);
    tcase_add_test(tc, cli_send_exits_0_when_every_message_gets_aa);
    tcase_add_test(tc, cli_send_exits_1_on_ae_and_on_an_msa2_mismatch);
    tcase_add_test(tc, cli_send_exits_5_when_nothing_listens_or_no_ack_comes);
    tcase_add_test(tc, cli_send_exits_3_for_an_unreadable_file_and_2_for_bad_usage);
    tcase_add_test(tc, cli_bench_against_mock_ehr_gets_every_ack_and_logs_every_id);
    tcase_add_test(tc, cli_bench_exits_1_against_a_server_with_the_wrong_msa2);
    return tc;
}
