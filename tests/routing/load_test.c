/* Loading from files: the example configs, and files that cannot or must not be read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "routing_support.h"
#include "tcases.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/px-routing-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_in_dir(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    (void)unlink(path);
}

static void teardown(void)
{
    remove_in_dir("c.json");
    remove_in_dir("big.json");
    char sub[96];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    (void)rmdir(sub);
    (void)rmdir(dir);
}

/* Writes text to dir/name with mode; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, size_t len, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
    return path;
}

static route_config_t *load_example(const char *name)
{
    ck_assert_msg(routing_test_source_root != NULL, "run with the source root as argument 2");
    char path[512];
    snprintf(path, sizeof(path), "%s/examples/%s", routing_test_source_root, name);
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    px_err rc = route_config_load(path, &cfg, &err);
    ck_assert_msg(rc == PX_OK, "%s: %s", path, err.msg);
    return cfg;
}

START_TEST(the_example_configs_load)
{
    route_config_t *cfg = load_example("minimal.json");
    size_t n = 0;
    (void)route_config_feeds(cfg, &n);
    ck_assert_uint_eq(n, 1);
    route_config_destroy(cfg);

    cfg = load_example("parallax.json");
    ck_assert_str_eq(route_config_instance(cfg), "px-demo-1");
    ck_assert_str_eq(route_config_ledger(cfg)->path, ".demo/ledger.db");
    (void)route_config_feeds(cfg, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(route_config_route_count(cfg), 4);
    const route_feed *lab = route_config_feed_find(cfg, "lab");
    ck_assert_ptr_nonnull(lab);
    ck_assert_str_eq(lab->upstream->host, "127.0.0.1");
    ck_assert_uint_eq(lab->upstream->port, 2575);
    ck_assert_str_eq(lab->timezone, "America/New_York");

    route_decision d;
    rt_resolve(cfg, "lab",
               "MSH|^~\\&|LAB_MAIN|HOSP_A|EHR|HOSP_A|20240101||ORU^R01|1|P|2.5.1\n"
               "PID|1||12345^^^HOSP_A^MR",
               &d);
    ck_assert_str_eq(d.route_name, "results");
    ck_assert_int_eq(d.ordering.kind, ROUTE_ORDER_KEY);
    rt_resolve(cfg, "adt", "MSH|^~\\&|REG|HOSP_A|EHR|HOSP_A|20240101||ADT^A40|2|P|2.5.1", &d);
    ck_assert_str_eq(d.route_name, "merges");
    route_config_destroy(cfg);
}
END_TEST

START_TEST(a_missing_file_is_an_io_error_with_errno)
{
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    char path[128];
    snprintf(path, sizeof(path), "%s/none.json", dir);
    ck_assert_int_eq(route_config_load(path, &cfg, &err), PX_ERR_IO);
    ck_assert_ptr_null(cfg);
    ck_assert_int_eq(err.detail, ENOENT);
    ck_assert_msg(strncmp(err.msg, "cannot open: ", 13) == 0, "got '%s'", err.msg);
}
END_TEST

START_TEST(a_directory_is_not_a_config_file)
{
    char sub[96];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_load(sub, &cfg, &err), PX_ERR_IO);
    ck_assert_str_eq(err.msg, "not a regular file");
}
END_TEST

START_TEST(a_world_writable_config_is_refused)
{
    static const char text[] =
        "{\"instance\": \"px\", \"ledger\": {\"path\": \"l.db\"},"
        " \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": 2575}],"
        " \"feeds\": [{\"name\": \"f\", \"listen\": \"127.0.0.1\", \"port\": 7000,"
        "   \"upstream\": \"ehr\"}]}";
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    const char *path = write_file("c.json", text, strlen(text), 0666);
    ck_assert_int_eq(route_config_load(path, &cfg, &err), PX_ERR_IO);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(err.msg, "writable by every user") != NULL, "got '%s'", err.msg);

    path = write_file("c.json", text, strlen(text), 0644);
    ck_assert_int_eq(route_config_load(path, &cfg, &err), PX_OK);
    ck_assert_str_eq(route_config_instance(cfg), "px");
    route_config_destroy(cfg);
}
END_TEST

START_TEST(a_file_over_the_size_cap_is_refused_before_parsing)
{
    size_t len = ROUTE_CONFIG_MAX_BYTES + 1;
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    memset(text, ' ', len);
    text[0] = '{';
    text[len - 1] = '}';
    const char *path = write_file("big.json", text, len, 0600);
    free(text);
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_load(path, &cfg, &err), PX_ERR_TOO_LARGE);
    ck_assert_ptr_null(cfg);
}
END_TEST

START_TEST(file_errors_carry_the_key_path_without_the_file_name)
{
    static const char text[] = "{\"instance\": \"px\",\n \"ledger\": {\"path\": \"l.db\"},\n"
                               " \"upstreams\": [], \"feeds\": []}\n";
    const char *path = write_file("c.json", text, strlen(text), 0600);
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(route_config_load(path, &cfg, &err), PX_ERR_INVAL);
    ck_assert_str_eq(err.msg, "upstreams: expected at least one upstream");
}
END_TEST

TCase *routing_tcase_load(void)
{
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_example_configs_load);
    tcase_add_test(tc, a_missing_file_is_an_io_error_with_errno);
    tcase_add_test(tc, a_directory_is_not_a_config_file);
    tcase_add_test(tc, a_world_writable_config_is_refused);
    tcase_add_test(tc, a_file_over_the_size_cap_is_refused_before_parsing);
    tcase_add_test(tc, file_errors_carry_the_key_path_without_the_file_name);
    return tc;
}
