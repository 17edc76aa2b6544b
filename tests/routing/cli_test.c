/* parallax check-config: exit codes and what it prints, run as the built binary. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "tcases.h"

static char dir[64];

static void setup(void)
{
    ck_assert_msg(routing_test_parallax != NULL, "run with the parallax binary as argument 1");
    snprintf(dir, sizeof(dir), "/tmp/px-checkcfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void unlink_in_dir(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    (void)unlink(path);
}

static void teardown(void)
{
    unlink_in_dir("out");
    unlink_in_dir("err");
    unlink_in_dir("bad.json");
    (void)rmdir(dir);
}

struct run {
    int status;
    char *out;
    char *err;
};

static char *slurp(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Runs parallax with args (NULL-terminated), capturing its output. */
static struct run run(const char *const *args)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)routing_test_parallax;
    for (size_t i = 0; args[i] != NULL; i++) {
        ck_assert_uint_lt(n, 15);
        argv[n++] = (char *)args[i];
    }
    argv[n] = NULL;
    char out_path[128], err_path[128];
    snprintf(out_path, sizeof(out_path), "%s/out", dir);
    snprintf(err_path, sizeof(err_path), "%s/err", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "parallax did not exit normally");
    struct run r = {WEXITSTATUS(status), slurp("out"), slurp("err")};
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static const char *example(const char *name)
{
    static char path[512];
    ck_assert_ptr_nonnull(routing_test_source_root);
    snprintf(path, sizeof(path), "%s/examples/%s", routing_test_source_root, name);
    return path;
}

START_TEST(a_valid_config_exits_0_with_a_one_line_summary)
{
    const char *path = example("parallax.json");
    const char *args[] = {"check-config", "-c", path, NULL};
    struct run r = run(args);
    ck_assert_int_eq(r.status, 0);
    char expect[600];
    snprintf(expect, sizeof(expect),
             "%s: ok: instance px-demo-1, 2 feeds, 4 routes, 1 upstream, version ", path);
    ck_assert_msg(strncmp(r.out, expect, strlen(expect)) == 0, "stdout '%s'", r.out);
    const char *version = r.out + strlen(expect);
    ck_assert_uint_eq(strspn(version, "0123456789abcdef"), 16);
    ck_assert_str_eq(version + 16, "\n");
    ck_assert_str_eq(r.err, "");
    run_free(&r);

    const char *args2[] = {"check-config", "--config", example("minimal.json"), NULL};
    r = run(args2);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "ok: instance px-1, 1 feed, 0 routes, 1 upstream") != NULL,
                  "stdout '%s'", r.out);
    run_free(&r);
}
END_TEST

START_TEST(an_invalid_config_exits_4_naming_file_and_key_path)
{
    static const char text[] =
        "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},\n"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],\n"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"127.0.0.1\", \"port\": 7000,\n"
        "   \"upstream\": \"ehr\", \"routes\": [{\"name\": \"r\", \"match\": {\"PID-3.x\": "
        "\"A\"}}]}]}";
    char path[128];
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    const char *args[] = {"check-config", "-c", path, NULL};
    struct run r = run(args);
    ck_assert_int_eq(r.status, 4);
    ck_assert_str_eq(r.out, "");
    char expect[256];
    snprintf(expect, sizeof(expect),
             "parallax check-config: %s: feeds[0].routes[0].match.PID-3.x: bad path: ", path);
    ck_assert_msg(strncmp(r.err, expect, strlen(expect)) == 0, "stderr '%s'", r.err);
    run_free(&r);

    /* A JSON syntax error is invalid too, with its line and column. */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("{\n  \"instance\": px\n}\n", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    r = run(args);
    ck_assert_int_eq(r.status, 4);
    snprintf(expect, sizeof(expect), "parallax check-config: %s: 2:", path);
    ck_assert_msg(strncmp(r.err, expect, strlen(expect)) == 0, "stderr '%s'", r.err);
    run_free(&r);
}
END_TEST

START_TEST(an_unreadable_file_exits_3)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/missing.json", dir);
    const char *args[] = {"check-config", "-c", path, NULL};
    struct run r = run(args);
    ck_assert_int_eq(r.status, 3);
    ck_assert_msg(strstr(r.err, "cannot open") != NULL, "stderr '%s'", r.err);
    run_free(&r);
}
END_TEST

START_TEST(usage_errors_exit_2)
{
    const char *no_file[] = {"check-config", NULL};
    const char *dangling[] = {"check-config", "-c", NULL};
    const char *unknown[] = {"check-config", "--strict", "-c", "x.json", NULL};
    const char *two[] = {"check-config", "-c", "a.json", "-c", "b.json", NULL};
    const char *const *cases[] = {no_file, dangling, unknown, two};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = run(cases[i]);
        ck_assert_msg(r.status == 2, "case %zu: exit %d", i, r.status);
        ck_assert_msg(strstr(r.err, "parallax check-config: ") == r.err, "case %zu: '%s'", i,
                      r.err);
        run_free(&r);
    }
    const char *help[] = {"check-config", "--help", NULL};
    struct run r = run(help);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "usage: parallax check-config -c FILE") == r.out, "'%s'", r.out);
    run_free(&r);
}
END_TEST

TCase *routing_tcase_cli(void)
{
    TCase *tc = tcase_create("check_config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_valid_config_exits_0_with_a_one_line_summary);
    tcase_add_test(tc, an_invalid_config_exits_4_naming_file_and_key_path);
    tcase_add_test(tc, an_unreadable_file_exits_3);
    tcase_add_test(tc, usage_errors_exit_2);
    return tc;
}
