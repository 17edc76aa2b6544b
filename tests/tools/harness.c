#include "tools/harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/tcases.h"

const char *tools_test_parallax;

double tools_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- in-process mock ---- */

static void mock_stop_cb(uv_async_t *a)
{
    tools_mock *t = a->data;
    proxy_mock_ehr_get_stats(t->mock, &t->stats);
    proxy_mock_ehr_close(t->mock, NULL, NULL);
    t->mock = NULL;
    uv_close((uv_handle_t *)&t->stop, NULL);
}

static void *mock_thread(void *arg)
{
    tools_mock *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    t->loop_close_rc = uv_loop_close(&t->loop);
    return NULL;
}

void tools_mock_start(tools_mock *t, const proxy_mock_ehr_opts *opts)
{
    memset(t, 0, sizeof(*t));
    ck_assert_int_eq(uv_loop_init(&t->loop), 0);
    proxy_mock_ehr_opts o = *opts;
    o.host = "127.0.0.1";
    o.port = 0;
    px_error err;
    px_err rc = proxy_mock_ehr_create(&t->loop, &o, &t->mock, &err);
    ck_assert_msg(rc == PX_OK, "mock-ehr: %s", err.msg);
    t->port = proxy_mock_ehr_port(t->mock);
    ck_assert_uint_ne(t->port, 0);
    ck_assert_int_eq(uv_async_init(&t->loop, &t->stop, mock_stop_cb), 0);
    t->stop.data = t;
    ck_assert_int_eq(pthread_create(&t->thread, NULL, mock_thread, t), 0);
}

void tools_mock_stop(tools_mock *t)
{
    uv_async_send(&t->stop);
    pthread_join(t->thread, NULL);
    ck_assert_int_eq(t->loop_close_rc, 0);
}

/* ---- blocking client ---- */

void tools_conn_open(tools_conn *c, unsigned port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c->fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
                  strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void tools_conn_close(tools_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

void tools_conn_write(tools_conn *c, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        b += n;
        len -= (size_t)n;
    }
}

void tools_conn_send(tools_conn *c, const char *msg, size_t len)
{
    char *f = malloc(len + 3);
    ck_assert_ptr_nonnull(f);
    f[0] = 0x0b;
    memcpy(f + 1, msg, len);
    f[len + 1] = 0x1c;
    f[len + 2] = 0x0d;
    tools_conn_write(c, f, len + 3);
    free(f);
}

/* Reads more into the buffer: 1 read, 0 timeout, -1 closed. */
static int conn_fill(tools_conn *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (r == 0)
        return 0;
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap == 0 ? 131072 : c->cap * 2;
        c->buf = realloc(c->buf, c->cap);
        ck_assert_ptr_nonnull(c->buf);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 1;
}

char *tools_conn_recv(tools_conn *c, int timeout_ms, size_t *len)
{
    double deadline = tools_now_ms() + timeout_ms;
    for (;;) {
        char *sb = c->len > 0 ? memchr(c->buf, 0x0b, c->len) : NULL;
        if (sb != NULL) {
            size_t start = (size_t)(sb - c->buf) + 1;
            for (size_t i = start; i + 1 < c->len; i++) {
                if (c->buf[i] == 0x1c && c->buf[i + 1] == 0x0d) {
                    size_t n = i - start;
                    char *out = malloc(n + 1);
                    ck_assert_ptr_nonnull(out);
                    memcpy(out, c->buf + start, n);
                    out[n] = '\0';
                    memmove(c->buf, c->buf + i + 2, c->len - i - 2);
                    c->len -= i + 2;
                    if (len != NULL)
                        *len = n;
                    return out;
                }
            }
        }
        int left = (int)(deadline - tools_now_ms());
        if (left <= 0)
            return NULL;
        if (conn_fill(c, left) < 0)
            return NULL;
    }
}

bool tools_conn_wait_closed(tools_conn *c, int timeout_ms)
{
    double deadline = tools_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - tools_now_ms());
        if (left <= 0)
            return false;
        size_t before = c->len;
        int r = conn_fill(c, left);
        if (r < 0)
            return c->len == before;
    }
}

/* ---- messages ---- */

size_t tools_make_msg(char *dst, size_t cap, const char *control_id, const char *sep)
{
    int n = snprintf(dst, cap,
                     "MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240101120000||ADT^A01^ADT_A01|%s|"
                     "P|2.5.1%s"
                     "EVN|A01|20240101120000%s"
                     "PID|1||900001^^^HOSP^MR||ZZTESTNAME^ZZGIVEN||19700101|F%s"
                     "PV1|1|I|WARD^1^1%s",
                     control_id, sep, sep, sep, sep);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_lt((size_t)n, cap);
    return (size_t)n;
}

const char *tools_field(const char *msg, size_t len, const char *seg, size_t field, size_t comp,
                        char *dst, size_t cap)
{
    dst[0] = '\0';
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && msg[end] != '\r' && msg[end] != '\n')
            end++;
        if (end - i >= 3 && memcmp(msg + i, seg, 3) == 0) {
            /* MSH-1 is the separator itself, so MSH fields are shifted by one. */
            size_t want = strcmp(seg, "MSH") == 0 ? field - 1 : field;
            size_t f = 0, p = i + 3;
            while (p < end && f < want) {
                if (msg[p] == '|')
                    f++;
                p++;
            }
            if (f < want)
                return dst;
            size_t q = p;
            while (q < end && msg[q] != '|')
                q++;
            size_t c = 1, s = p;
            if (comp > 0) {
                while (s < q && c < comp) {
                    if (msg[s] == '^')
                        c++;
                    s++;
                }
                if (c < comp)
                    return dst;
                p = s;
                while (s < q && msg[s] != '^')
                    s++;
                q = s;
            }
            size_t n = q - p < cap - 1 ? q - p : cap - 1;
            memcpy(dst, msg + p, n);
            dst[n] = '\0';
            return dst;
        }
        i = end + 1;
    }
    return dst;
}

/* ---- files ---- */

char *tools_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/px-tools-XXXXXX", base != NULL ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    char *out = strdup(d);
    ck_assert_ptr_nonnull(out);
    return out;
}

char *tools_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void tools_write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

char *tools_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            b = realloc(b, cap);
            ck_assert_ptr_nonnull(b);
        }
        size_t got = fread(b + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    b[n] = '\0';
    if (len != NULL)
        *len = n;
    return b;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = tools_path(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

void tools_rmdir(const char *dir)
{
    rm_tree(dir);
}

/* ---- child processes ---- */

const char *tools_parallax(void)
{
    ck_assert_msg(tools_test_parallax != NULL, "the parallax binary was not passed to the test");
    return tools_test_parallax;
}

pid_t tools_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int out =
            open(out_path != NULL ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err =
            open(err_path != NULL ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        close(out);
        close(err);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int tools_wait(pid_t pid, int timeout_ms)
{
    double deadline = tools_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
            return -1;
        }
        if (tools_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

char *tools_wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    double deadline = tools_now_ms() + timeout_ms;
    for (;;) {
        char *text = tools_read_file(path, NULL);
        if (text != NULL && strstr(text, needle) != NULL)
            return text;
        free(text);
        if (tools_now_ms() > deadline)
            return NULL;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
