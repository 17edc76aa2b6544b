/* memmem, nftw */
#define _GNU_SOURCE

#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SB 0x0b
#define EB 0x1c
#define CR 0x0d

void pxt_bytes_free(pxt_bytes *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

/* ---- time ---- */

uint64_t pxt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pxt_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- files ---- */

bool pxt_file_read(const char *path, pxt_bytes *out)
{
    out->ptr = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    out->ptr = buf;
    out->len = len;
    return true;
}

void pxt_file_write(const char *path, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)bytes + done, len - done);
        ck_assert_msg(n > 0, "cannot write %s: %s", path, strerror(errno));
        done += (size_t)n;
    }
    close(fd);
}

size_t pxt_file_count(const char *path, const char *needle)
{
    pxt_bytes b;
    if (!pxt_file_read(path, &b))
        return 0;
    size_t count = 0, nlen = strlen(needle);
    const char *p = b.ptr, *end = b.ptr + b.len;
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), needle, nlen);
        if (hit == NULL)
            break;
        count++;
        p = hit + nlen;
    }
    pxt_bytes_free(&b);
    return count;
}

/* ---- processes ---- */

void pxt_proc_spawn(pxt_proc *p, const char *dir, const char *name, char *const argv[])
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->out_path, sizeof(p->out_path), "%s/%s.out", dir, name);
    snprintf(p->err_path, sizeof(p->err_path), "%s/%s.err", dir, name);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit(127);
        dup2(out, 1);
        dup2(err, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        /* Sockets of the test (clients, listeners) must not live on in the child. */
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
}

bool pxt_proc_running(pxt_proc *p)
{
    if (p->pid == 0)
        return false;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->status = status;
        p->pid = 0;
        return false;
    }
    return true;
}

bool pxt_proc_wait_output(pxt_proc *p, bool err, const char *needle, size_t count,
                          unsigned timeout_ms)
{
    uint64_t until = pxt_now_ms() + timeout_ms;
    const char *path = err ? p->err_path : p->out_path;
    for (;;) {
        if (pxt_file_count(path, needle) >= count)
            return true;
        if (!pxt_proc_running(p))
            return pxt_file_count(path, needle) >= count;
        if (pxt_now_ms() >= until)
            return false;
        pxt_sleep_ms(5);
    }
}

bool pxt_proc_stop(pxt_proc *p, int sig, unsigned timeout_ms)
{
    if (p->pid == 0)
        return true;
    if (sig != 0)
        kill(p->pid, sig);
    uint64_t until = pxt_now_ms() + timeout_ms;
    while (pxt_proc_running(p)) {
        if (pxt_now_ms() >= until) {
            kill(p->pid, SIGKILL);
            int status;
            waitpid(p->pid, &status, 0);
            p->status = status;
            p->pid = 0;
            return false;
        }
        pxt_sleep_ms(5);
    }
    return true;
}

void pxt_assert_no_sanitizer_report(const char *path)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "WARNING: ThreadSanitizer"};
    pxt_bytes b;
    if (!pxt_file_read(path, &b))
        return;
    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
        const char *hit = memmem(b.ptr, b.len, marks[i], strlen(marks[i]));
        if (hit != NULL) {
            size_t off = (size_t)(hit - b.ptr);
            size_t show = b.len - off < 1500 ? b.len - off : 1500;
            char excerpt[1501];
            memcpy(excerpt, hit, show);
            excerpt[show] = '\0';
            pxt_bytes_free(&b);
            ck_abort_msg("sanitizer report in %s:\n%s", path, excerpt);
        }
    }
    pxt_bytes_free(&b);
}

unsigned pxt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- the environment ---- */

static char *log_tail(const char *path)
{
    static char tail[3001];
    pxt_bytes b;
    tail[0] = '\0';
    if (!pxt_file_read(path, &b))
        return tail;
    size_t from = b.len > 3000 ? b.len - 3000 : 0;
    memcpy(tail, b.ptr + from, b.len - from);
    tail[b.len - from] = '\0';
    pxt_bytes_free(&b);
    return tail;
}

void pxt_env_init(pxt_env *e)
{
    memset(e, 0, sizeof(*e));
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    e->parallax = getenv("PX_PARALLAX");
    ck_assert_msg(e->parallax != NULL && access(e->parallax, X_OK) == 0,
                  "PX_PARALLAX must name the parallax binary (tests/meson.build sets it)");
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof(e->dir), "%s/px-proxy-XXXXXX", tmp != NULL ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(e->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(e->cfg_path, sizeof(e->cfg_path), "%s/parallax.json", e->dir);
    snprintf(e->db_path, sizeof(e->db_path), "%s/db/ledger.db", e->dir);
    snprintf(e->record_path, sizeof(e->record_path), "%s/ehr-record.mllp", e->dir);
    e->feed_port = pxt_free_port();
    do {
        e->ehr_port = pxt_free_port();
    } while (e->ehr_port == e->feed_port);
}

void pxt_env_config(pxt_env *e, const char *upstream_extra, const char *feed_extra,
                    const char *top_extra)
{
    char json[8192];
    int n =
        snprintf(json, sizeof(json),
                 "{\n"
                 "  \"instance\": \"px-test\",\n"
                 "  \"ledger\": {\"path\": \"%s\"%s%s},\n"
                 "  \"upstreams\": [{\"name\": \"ehr\", \"host\": \"127.0.0.1\", \"port\": %u,\n"
                 "                  \"reconnect_min_ms\": 20, \"reconnect_max_ms\": 200%s%s}],\n"
                 "  \"feeds\": [{\"name\": \"lab\", \"listen\": \"127.0.0.1\", \"port\": %u,\n"
                 "              \"upstream\": \"ehr\"%s%s}]%s%s\n"
                 "}\n",
                 e->db_path, e->ledger_extra != NULL ? ", " : "",
                 e->ledger_extra != NULL ? e->ledger_extra : "", e->ehr_port,
                 upstream_extra != NULL ? ", " : "", upstream_extra != NULL ? upstream_extra : "",
                 e->feed_port, feed_extra != NULL ? ", " : "", feed_extra != NULL ? feed_extra : "",
                 top_extra != NULL ? ",\n  " : "", top_extra != NULL ? top_extra : "");
    ck_assert(n > 0 && (size_t)n < sizeof(json));
    pxt_file_write(e->cfg_path, json, (size_t)n);
}

void pxt_mock_start(pxt_env *e, const char *const extra[])
{
    char port[16];
    snprintf(port, sizeof(port), "%u", e->ehr_port);
    char *argv[32];
    size_t k = 0;
    argv[k++] = (char *)e->parallax;
    argv[k++] = "mock-ehr";
    argv[k++] = "--port";
    argv[k++] = port;
    argv[k++] = "--record";
    argv[k++] = e->record_path;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 31; i++)
        argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    char name[32];
    snprintf(name, sizeof(name), "mock-%u", ++e->mock_runs);
    pxt_proc_spawn(&e->mock, e->dir, name, argv);
    ck_assert_msg(pxt_proc_wait_output(&e->mock, false, "listening ", 1, 10000),
                  "mock-ehr did not start listening on port %u:\n%s", e->ehr_port,
                  log_tail(e->mock.err_path));
}

void pxt_mock_stop(pxt_env *e)
{
    if (e->mock.pid == 0)
        return;
    bool exited = pxt_proc_stop(&e->mock, SIGTERM, 10000);
    ck_assert_msg(exited, "mock-ehr did not stop within 10 s of SIGTERM");
    pxt_assert_no_sanitizer_report(e->mock.err_path);
    ck_assert_msg(WIFEXITED(e->mock.status) && WEXITSTATUS(e->mock.status) == 0,
                  "mock-ehr exit status %d:\n%s", e->mock.status, log_tail(e->mock.err_path));
}

void pxt_serve_start(pxt_env *e)
{
    char *argv[] = {(char *)e->parallax, "serve", "-c", e->cfg_path, NULL};
    char name[32];
    snprintf(name, sizeof(name), "serve-%u", ++e->serve_runs);
    pxt_proc_spawn(&e->serve, e->dir, name, argv);
    ck_assert_msg(pxt_proc_wait_output(&e->serve, true, "\"event\":\"started\"", 1, 20000),
                  "parallax serve did not start (status %d):\n%s", e->serve.status,
                  log_tail(e->serve.err_path));
}

void pxt_serve_stop(pxt_env *e)
{
    if (e->serve.pid == 0)
        return;
    bool exited = pxt_proc_stop(&e->serve, SIGTERM, 45000);
    ck_assert_msg(exited, "parallax serve did not exit within 45 s of SIGTERM:\n%s",
                  log_tail(e->serve.err_path));
    pxt_assert_no_sanitizer_report(e->serve.err_path);
    ck_assert_msg(WIFEXITED(e->serve.status) && WEXITSTATUS(e->serve.status) == 0,
                  "parallax serve: exit status %d after SIGTERM (want exit 0):\n%s",
                  e->serve.status, log_tail(e->serve.err_path));
}

void pxt_serve_kill(pxt_env *e)
{
    pxt_proc_stop(&e->serve, SIGKILL, 10000);
    ck_assert_msg(WIFSIGNALED(e->serve.status) && WTERMSIG(e->serve.status) == SIGKILL,
                  "parallax serve ended before it was killed (status %d):\n%s", e->serve.status,
                  log_tail(e->serve.err_path));
}

void pxt_serve_wait_log(pxt_env *e, const char *needle, size_t count, unsigned timeout_ms)
{
    ck_assert_msg(pxt_proc_wait_output(&e->serve, true, needle, count, timeout_ms),
                  "parallax serve: waited %u ms for %s (x%zu) in its log:\n%s", timeout_ms, needle,
                  count, log_tail(e->serve.err_path));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void pxt_env_finish(pxt_env *e)
{
    pxt_serve_stop(e);
    pxt_mock_stop(e);
    if (getenv("PX_KEEP_TEST_DIRS") == NULL)
        nftw(e->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the client ---- */

void pxt_client_open(pxt_client *c, unsigned port)
{
    memset(c, 0, sizeof(*c));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    uint64_t until = pxt_now_ms() + 5000;
    for (;;) {
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(c->fd, 0);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            break;
        int e = errno;
        close(c->fd);
        ck_assert_msg(pxt_now_ms() < until, "cannot connect to 127.0.0.1:%u: %s", port,
                      strerror(e));
        pxt_sleep_ms(20);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void pxt_client_close(pxt_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    pxt_bytes_free(&c->in);
    c->in_cap = 0;
}

void pxt_client_write(pxt_client *c, const void *bytes, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(c->fd, (const char *)bytes + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "write to the proxy failed: %s", strerror(errno));
        done += (size_t)n;
    }
}

void pxt_client_send(pxt_client *c, const char *msg, size_t len)
{
    char *buf = malloc(len + 3);
    ck_assert_ptr_nonnull(buf);
    buf[0] = SB;
    memcpy(buf + 1, msg, len);
    buf[len + 1] = EB;
    buf[len + 2] = CR;
    pxt_client_write(c, buf, len + 3);
    free(buf);
}

void pxt_client_shutdown(pxt_client *c)
{
    shutdown(c->fd, SHUT_WR);
}

/* Takes a whole frame off the front of c->in, if there is one. */
static bool take_frame(pxt_client *c, pxt_bytes *frame)
{
    char *sb = memchr(c->in.ptr, SB, c->in.len);
    if (sb == NULL)
        return false;
    size_t start = (size_t)(sb - c->in.ptr) + 1;
    for (size_t i = start; i + 1 < c->in.len; i++) {
        if (c->in.ptr[i] == EB && c->in.ptr[i + 1] == CR) {
            frame->len = i - start;
            frame->ptr = malloc(frame->len + 1);
            ck_assert_ptr_nonnull(frame->ptr);
            memcpy(frame->ptr, c->in.ptr + start, frame->len);
            frame->ptr[frame->len] = '\0';
            memmove(c->in.ptr, c->in.ptr + i + 2, c->in.len - i - 2);
            c->in.len -= i + 2;
            return true;
        }
    }
    return false;
}

pxt_read pxt_client_read(pxt_client *c, unsigned timeout_ms, pxt_bytes *frame)
{
    frame->ptr = NULL;
    frame->len = 0;
    uint64_t until = pxt_now_ms() + timeout_ms;
    for (;;) {
        if (c->in.len > 0 && take_frame(c, frame))
            return PXT_READ_FRAME;
        uint64_t now = pxt_now_ms();
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, now >= until ? 0 : (int)(until - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return PXT_READ_TIMEOUT;
        if (c->in_cap - c->in.len < 65536) {
            c->in_cap = c->in_cap == 0 ? 131072 : c->in_cap * 2;
            c->in.ptr = realloc(c->in.ptr, c->in_cap);
            ck_assert_ptr_nonnull(c->in.ptr);
        }
        ssize_t n = recv(c->fd, c->in.ptr + c->in.len, c->in_cap - c->in.len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PXT_READ_CLOSED;
        c->in.len += (size_t)n;
    }
}

pxt_bytes pxt_client_ack(pxt_client *c, unsigned timeout_ms)
{
    pxt_bytes f;
    pxt_read r = pxt_client_read(c, timeout_ms, &f);
    ck_assert_msg(r == PXT_READ_FRAME, "no ACK within %u ms (%s)", timeout_ms,
                  r == PXT_READ_CLOSED ? "connection closed" : "timeout");
    return f;
}

/* ---- HL7 text ---- */

size_t pxt_msg(char *buf, size_t size, const char *ctl, const char *ts, const char *value)
{
    int n = snprintf(buf, size,
                     "MSH|^~\\&|LABSYS|LABFAC|EHRAPP|EHRFAC|%s||ORU^R01^ORU_R01|%s|P|2.5.1\r"
                     "PID|1||T0001^^^HOSP^MR||TEST^PATIENT||19700101|U\r"
                     "OBR|1|ORD1|FIL1|GLU^Glucose^L|||20240101120000\r"
                     "OBX|1|NM|GLU^Glucose^L||%s|mmol/L|3.9-5.5|N|||F\r",
                     ts != NULL ? ts : "20240101120000", ctl, value != NULL ? value : "7.5");
    ck_assert(n > 0 && (size_t)n < size);
    return (size_t)n;
}

bool pxt_field(const char *msg, size_t len, const char *seg, unsigned n, char *out, size_t size)
{
    size_t seglen = strlen(seg);
    const char *p = msg, *end = msg + len;
    out[0] = '\0';
    while (p < end) {
        const char *eol = p;
        while (eol < end && *eol != '\r' && *eol != '\n')
            eol++;
        if ((size_t)(eol - p) >= seglen && memcmp(p, seg, seglen) == 0 &&
            (p + seglen == eol || p[seglen] == '|')) {
            /* MSH-1 is the separator itself: MSH-n is the (n-1)th field after the name. */
            unsigned want = strcmp(seg, "MSH") == 0 ? n - 1 : n;
            const char *f = p + seglen;
            for (unsigned k = 0; k < want; k++) {
                if (f >= eol)
                    return false;
                f++; /* past the '|' */
                const char *next = memchr(f, '|', (size_t)(eol - f));
                if (k + 1 == want) {
                    size_t flen = (size_t)((next != NULL ? next : eol) - f);
                    if (flen >= size)
                        flen = size - 1;
                    memcpy(out, f, flen);
                    out[flen] = '\0';
                    return true;
                }
                if (next == NULL)
                    return false;
                f = next;
            }
            return false;
        }
        p = eol + 1;
    }
    return false;
}

void pxt_assert_ack(const pxt_bytes *ack, const char *code, const char *ctl)
{
    char msa1[64], msa2[256], type[64];
    ck_assert_msg(pxt_field(ack->ptr, ack->len, "MSH", 9, type, sizeof(type)),
                  "answer without MSH: %.*s", (int)ack->len, ack->ptr);
    ck_assert_msg(strncmp(type, "ACK", 3) == 0, "answer type is %s, want ACK", type);
    ck_assert_msg(pxt_field(ack->ptr, ack->len, "MSA", 1, msa1, sizeof(msa1)),
                  "ACK without MSA: %.*s", (int)ack->len, ack->ptr);
    if (!pxt_field(ack->ptr, ack->len, "MSA", 2, msa2, sizeof(msa2)))
        msa2[0] = '\0';
    ck_assert_msg(strcmp(msa1, code) == 0, "MSA-1 is %s, want %s (control id %s)", msa1, code, ctl);
    ck_assert_msg(strcmp(msa2, ctl) == 0, "MSA-2 is '%s', want '%s'", msa2, ctl);
}

void pxt_assert_err_code(const pxt_bytes *ack, const char *code)
{
    const char *p = ack->ptr, *end = ack->ptr + ack->len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (eol - p > 4 && memcmp(p, "ERR|", 4) == 0) {
            /* The code sits in ERR-1 (up to v2.4: ^^^207&text) or ERR-3 (v2.5+: 207^text). */
            size_t clen = strlen(code);
            for (const char *q = p + 4; q + clen <= eol; q++) {
                bool starts = q[-1] == '|' || q[-1] == '^' || q[-1] == '&';
                bool ends = q + clen == eol || q[clen] == '^' || q[clen] == '&' || q[clen] == '|';
                if (starts && ends && memcmp(q, code, clen) == 0)
                    return;
            }
        }
        p = eol + 1;
    }
    ck_abort_msg("no ERR segment with code %s in: %.*s", code, (int)ack->len, ack->ptr);
}

bool pxt_ack_id_starts(const pxt_bytes *ack, const char *prefix)
{
    char id[128];
    return pxt_field(ack->ptr, ack->len, "MSH", 10, id, sizeof(id)) &&
           strncmp(id, prefix, strlen(prefix)) == 0;
}

/* ---- the record ---- */

size_t pxt_record_read(const char *path, pxt_bytes **frames)
{
    *frames = NULL;
    pxt_bytes b;
    if (!pxt_file_read(path, &b))
        return 0;
    size_t n = 0, cap = 0;
    size_t i = 0;
    while (i < b.len) {
        if (b.ptr[i] != SB) {
            i++;
            continue;
        }
        size_t start = i + 1, j = start;
        while (j + 1 < b.len && !(b.ptr[j] == EB && b.ptr[j + 1] == CR))
            j++;
        if (j + 1 >= b.len)
            break; /* a frame still being written */
        if (n == cap) {
            cap = cap == 0 ? 64 : cap * 2;
            *frames = realloc(*frames, cap * sizeof(**frames));
            ck_assert_ptr_nonnull(*frames);
        }
        pxt_bytes *f = &(*frames)[n++];
        f->len = j - start;
        f->ptr = malloc(f->len + 1);
        ck_assert_ptr_nonnull(f->ptr);
        memcpy(f->ptr, b.ptr + start, f->len);
        f->ptr[f->len] = '\0';
        i = j + 2;
    }
    pxt_bytes_free(&b);
    return n;
}

void pxt_frames_free(pxt_bytes *frames, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(frames[i].ptr);
    free(frames);
}

size_t pxt_record_wait(const char *path, size_t n, unsigned timeout_ms)
{
    uint64_t until = pxt_now_ms() + timeout_ms;
    for (;;) {
        pxt_bytes *frames;
        size_t got = pxt_record_read(path, &frames);
        pxt_frames_free(frames, got);
        if (got >= n || pxt_now_ms() >= until)
            return got;
        pxt_sleep_ms(10);
    }
}

void pxt_assert_sender_order(const char *record_path, const char *prefix, unsigned nconns,
                             unsigned nmsgs)
{
    unsigned *next = calloc(nconns, sizeof(*next));
    ck_assert_ptr_nonnull(next);
    pxt_bytes *frames;
    size_t n = pxt_record_read(record_path, &frames);
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        char ctl[128];
        if (!pxt_field(frames[i].ptr, frames[i].len, "MSH", 10, ctl, sizeof(ctl)) ||
            strncmp(ctl, prefix, plen) != 0)
            continue;
        char *end = NULL;
        unsigned long conn = strtoul(ctl + plen, &end, 10);
        ck_assert_msg(end != NULL && *end == '-' && conn < nconns, "odd control id %s", ctl);
        unsigned long seq = strtoul(end + 1, NULL, 10);
        ck_assert_msg(seq == next[conn],
                      "sender %lu: the EHR got %s after %u message(s) of that sender; want "
                      "sequence %u (order lost or a message duplicated)",
                      conn, ctl, next[conn], next[conn]);
        next[conn]++;
    }
    pxt_frames_free(frames, n);
    for (unsigned c = 0; c < nconns; c++)
        ck_assert_msg(next[c] == nmsgs, "sender %u: the EHR got %u of %u messages", c, next[c],
                      nmsgs);
    free(next);
}

/* ---- many senders ---- */

typedef struct sender {
    pxt_client cl;
    unsigned seq; /* next to send */
    bool waiting; /* a message is out, its ACK not yet in */
    char ctl[64];
} sender;

void pxt_run_senders(unsigned port, unsigned nconns, unsigned nmsgs, const char *prefix,
                     unsigned timeout_ms)
{
    sender *s = calloc(nconns, sizeof(*s));
    struct pollfd *pfd = calloc(nconns, sizeof(*pfd));
    ck_assert(s != NULL && pfd != NULL);
    for (unsigned i = 0; i < nconns; i++)
        pxt_client_open(&s[i].cl, port);
    uint64_t until = pxt_now_ms() + timeout_ms;
    unsigned done = 0;
    char msg[1024];
    while (done < nconns) {
        for (unsigned i = 0; i < nconns; i++) {
            if (s[i].waiting || s[i].seq == nmsgs)
                continue;
            snprintf(s[i].ctl, sizeof(s[i].ctl), "%s%u-%u", prefix, i, s[i].seq);
            size_t len = pxt_msg(msg, sizeof(msg), s[i].ctl, NULL, NULL);
            pxt_client_send(&s[i].cl, msg, len);
            s[i].waiting = true;
        }
        for (unsigned i = 0; i < nconns; i++) {
            pfd[i].fd = s[i].waiting ? s[i].cl.fd : -1;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        uint64_t now = pxt_now_ms();
        ck_assert_msg(now < until, "senders: %u of %u finished within %u ms", done, nconns,
                      timeout_ms);
        int r = poll(pfd, nconns, (int)(until - now));
        if (r <= 0)
            continue;
        for (unsigned i = 0; i < nconns; i++) {
            if (pfd[i].revents == 0)
                continue;
            pxt_bytes ack;
            pxt_read rr = pxt_client_read(&s[i].cl, 0, &ack);
            if (rr == PXT_READ_TIMEOUT)
                continue;
            ck_assert_msg(rr == PXT_READ_FRAME, "sender %u: connection closed waiting for %s", i,
                          s[i].ctl);
            pxt_assert_ack(&ack, "AA", s[i].ctl);
            pxt_bytes_free(&ack);
            s[i].waiting = false;
            if (++s[i].seq == nmsgs)
                done++;
        }
    }
    for (unsigned i = 0; i < nconns; i++)
        pxt_client_close(&s[i].cl);
    free(pfd);
    free(s);
}

/* ---- the ledger ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    ck_assert_msg(rc == SQLITE_OK, "cannot open the ledger %s: %s", path,
                  db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static sqlite3_stmt *db_prepare(sqlite3 *db, const char *sql, const char *param)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    ck_assert_msg(rc == SQLITE_OK, "SQL error in '%s': %s", sql, sqlite3_errmsg(db));
    if (param != NULL)
        sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
    return st;
}

int64_t pxt_sql_int(const char *db_path, const char *sql, const char *param)
{
    sqlite3 *db = db_open(db_path);
    sqlite3_stmt *st = db_prepare(db, sql, param);
    int rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "SQL error in '%s': %s", sql,
                  sqlite3_errmsg(db));
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int64_t pxt_sql_wait(const char *db_path, const char *sql, const char *param, int64_t want,
                     unsigned timeout_ms)
{
    uint64_t until = pxt_now_ms() + timeout_ms;
    for (;;) {
        int64_t v = pxt_sql_int(db_path, sql, param);
        if (v == want || pxt_now_ms() >= until)
            return v;
        pxt_sleep_ms(20);
    }
}

bool pxt_sql_blob(const char *db_path, const char *sql, const char *param, pxt_bytes *out)
{
    out->ptr = NULL;
    out->len = 0;
    sqlite3 *db = db_open(db_path);
    sqlite3_stmt *st = db_prepare(db, sql, param);
    int rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "SQL error in '%s': %s", sql,
                  sqlite3_errmsg(db));
    bool found = rc == SQLITE_ROW;
    if (found) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        out->ptr = malloc(len + 1);
        ck_assert_ptr_nonnull(out->ptr);
        if (len > 0)
            memcpy(out->ptr, p, len);
        out->ptr[len] = '\0';
        out->len = len;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

const char *pxt_sql_integrity(const char *db_path)
{
    static char result[512];
    sqlite3 *db = db_open(db_path);
    sqlite3_stmt *st = db_prepare(db, "PRAGMA integrity_check", NULL);
    int rc = sqlite3_step(st);
    snprintf(result, sizeof(result), "%s",
             rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return result;
}

/* ---- checks over many control ids ---- */

sqlite3 *pxt_check_open(const char *db_path)
{
    return db_open(db_path);
}

void pxt_check_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "SQL error in '%s': %s", sql, msg != NULL ? msg : "?");
}

static sqlite3_stmt *create_id_table(sqlite3 *db, const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE TEMP TABLE %s (id TEXT NOT NULL)", table);
    pxt_check_exec(db, sql);
    snprintf(sql, sizeof(sql), "INSERT INTO %s (id) VALUES (?1)", table);
    pxt_check_exec(db, "BEGIN");
    return db_prepare(db, sql, NULL);
}

static void insert_id(sqlite3 *db, sqlite3_stmt *st, const char *id, size_t len)
{
    sqlite3_bind_text(st, 1, id, (int)len, SQLITE_TRANSIENT);
    ck_assert_msg(sqlite3_step(st) == SQLITE_DONE, "insert: %s", sqlite3_errmsg(db));
    sqlite3_reset(st);
}

size_t pxt_check_load_lines(sqlite3 *db, const char *table, const char *path)
{
    sqlite3_stmt *st = create_id_table(db, table);
    pxt_bytes b;
    size_t n = 0;
    if (pxt_file_read(path, &b)) {
        const char *p = b.ptr, *end = b.ptr + b.len;
        while (p < end) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            if (eol == NULL)
                break; /* a line still being written does not count */
            if (eol > p) {
                insert_id(db, st, p, (size_t)(eol - p));
                n++;
            }
            p = eol + 1;
        }
        pxt_bytes_free(&b);
    }
    sqlite3_finalize(st);
    pxt_check_exec(db, "COMMIT");
    return n;
}

size_t pxt_check_load_record(sqlite3 *db, const char *table, const char *record_path)
{
    sqlite3_stmt *st = create_id_table(db, table);
    pxt_bytes *frames;
    size_t n = pxt_record_read(record_path, &frames);
    for (size_t i = 0; i < n; i++) {
        char id[128];
        if (!pxt_field(frames[i].ptr, frames[i].len, "MSH", 10, id, sizeof(id)))
            id[0] = '\0';
        insert_id(db, st, id, strlen(id));
    }
    pxt_frames_free(frames, n);
    sqlite3_finalize(st);
    pxt_check_exec(db, "COMMIT");
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE INDEX %s_id ON %s (id)", table, table);
    pxt_check_exec(db, sql);
    return n;
}

int64_t pxt_check_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = db_prepare(db, sql, NULL);
    int rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "SQL error in '%s': %s", sql,
                  sqlite3_errmsg(db));
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

void pxt_check_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = db_prepare(db, sql, NULL);
    int rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "SQL error in '%s': %s", sql,
                  sqlite3_errmsg(db));
    const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    snprintf(out, size, "%s", t != NULL ? (const char *)t : "");
    sqlite3_finalize(st);
}

void pxt_check_close(sqlite3 *db)
{
    sqlite3_close(db);
}

/* ---- operations: reloads and the admin endpoint ---- */

void pxt_serve_hup(pxt_env *e)
{
    ck_assert_msg(e->serve.pid != 0 && pxt_proc_running(&e->serve),
                  "parallax serve is not running: nothing to reload:\n%s",
                  log_tail(e->serve.err_path));
    ck_assert_int_eq(kill(e->serve.pid, SIGHUP), 0);
}

void pxt_serve_reload(pxt_env *e, const char *upstream_extra, const char *feed_extra,
                      const char *top_extra)
{
    pxt_env_config(e, upstream_extra, feed_extra, top_extra);
    pxt_serve_hup(e);
}

bool pxt_port_refuses(unsigned port)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    int err = errno;
    close(fd);
    return rc != 0 && err == ECONNREFUSED;
}

int pxt_http(unsigned port, const char *method, const char *path, pxt_bytes *body)
{
    if (body != NULL) {
        body->ptr = NULL;
        body->len = 0;
    }
    pxt_client c;
    pxt_client_open(&c, port);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n",
                     method, path, port);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    pxt_client_write(&c, req, (size_t)n);

    /* The admin endpoint answers one request per connection and closes it. */
    size_t cap = 1u << 16, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    uint64_t until = pxt_now_ms() + 5000;
    for (;;) {
        uint64_t now = pxt_now_ms();
        ck_assert_msg(now < until, "%s %s: no complete answer within 5 s (%zu bytes so far)",
                      method, path, len);
        struct pollfd pfd = {c.fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(until - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        ssize_t got = recv(c.fd, buf + len, cap - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    pxt_client_close(&c);
    buf[len] = '\0';

    int status = 0;
    ck_assert_msg(sscanf(buf, "HTTP/1.%*[01] %d", &status) == 1,
                  "%s %s: not an HTTP answer: %.200s", method, path, buf);
    char *head_end = strstr(buf, "\r\n\r\n");
    ck_assert_msg(head_end != NULL, "%s %s: the answer's header never ends: %.200s", method, path,
                  buf);
    *head_end = '\0';
    const char *start = head_end + 4;
    size_t blen = len - (size_t)(start - buf);
    const char *cl = strstr(buf, "\r\nContent-Length: ");
    if (cl != NULL) {
        unsigned long want = strtoul(cl + 18, NULL, 10);
        ck_assert_msg(want == blen, "%s %s: Content-Length %lu, body of %zu bytes", method, path,
                      want, blen);
    }
    if (body != NULL) {
        body->ptr = malloc(blen + 1);
        ck_assert_ptr_nonnull(body->ptr);
        memcpy(body->ptr, start, blen);
        body->ptr[blen] = '\0';
        body->len = blen;
    }
    free(buf);
    return status;
}
