/* A scripted fake EHR for the faults `parallax mock-ehr` cannot stage per message: one late
 * ACK followed by prompt ones, a half-written ACK, exact answer bytes. It runs in a forked
 * child of the test process on a poll() loop, so a late answer on one connection does not
 * hold up the others. */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_MAX_CONNS 64
#define FAKE_MAX_LATE  64

typedef struct fake_conn {
    int fd; /* -1: closed */
    unsigned id;
    char *buf;
    size_t len, cap;
} fake_conn;

typedef struct fake_late {
    bool used;
    unsigned conn_id;
    uint64_t due_ms;
    char ctl[64];
    char ack[512];
    size_t ack_len;
} fake_late;

typedef struct fake {
    const pxt_fake_opts *opts;
    int log_fd;
    int listen_fd;
    unsigned next_conn_id, acks;
    fake_conn conns[FAKE_MAX_CONNS];
    fake_late late[FAKE_MAX_LATE];
} fake;

static void fake_log(fake *f, const char *line)
{
    ssize_t n = write(f->log_fd, line, strlen(line));
    (void)n;
}

static bool send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_framed(int fd, const char *p, size_t len)
{
    const char sb = 0x0b, eb[2] = {0x1c, 0x0d};
    return send_all(fd, &sb, 1) && send_all(fd, p, len) && send_all(fd, eb, 2);
}

static fake_conn *conn_by_id(fake *f, unsigned id)
{
    for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
        if (f->conns[i].fd >= 0 && f->conns[i].id == id)
            return &f->conns[i];
    return NULL;
}

static void conn_close(fake_conn *c)
{
    close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

static size_t build_ack(fake *f, const char *ctl, char *out, size_t size)
{
    int n = snprintf(out, size,
                     "MSH|^~\\&|EHRAPP|EHRFAC|LABSYS|LABFAC|20240101120001||ACK^R01^ACK|FAKE%u|P|"
                     "2.5.1\rMSA|AA|%s\r",
                     ++f->acks, ctl);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Answers one message per its control id. Returns false when the connection was closed. */
static bool handle_message(fake *f, fake_conn *c, const char *msg, size_t len)
{
    char ctl[64], line[160], ack[512];
    if (!pxt_field(msg, len, "MSH", 10, ctl, sizeof(ctl)))
        snprintf(ctl, sizeof(ctl), "?");
    snprintf(line, sizeof(line), "conn=%u ctl=%s\n", c->id, ctl);
    fake_log(f, line);
    size_t ack_len = build_ack(f, ctl, ack, sizeof(ack));
    if (strncmp(ctl, "HANG", 4) == 0)
        return true;
    if (strncmp(ctl, "HALF", 4) == 0) {
        const char sb = 0x0b;
        send_all(c->fd, &sb, 1);
        send_all(c->fd, ack, ack_len / 2);
        conn_close(c);
        return false;
    }
    if (strncmp(ctl, "RAW", 3) == 0 && f->opts->raw_ack != NULL) {
        ack_len = f->opts->raw_ack_len < sizeof(ack) ? f->opts->raw_ack_len : sizeof(ack);
        memcpy(ack, f->opts->raw_ack, ack_len);
    }
    if (strncmp(ctl, "SLOW", 4) == 0) {
        for (size_t i = 0; i < FAKE_MAX_LATE; i++) {
            fake_late *l = &f->late[i];
            if (l->used)
                continue;
            l->used = true;
            l->conn_id = c->id;
            l->due_ms = pxt_now_ms() + f->opts->slow_ms;
            snprintf(l->ctl, sizeof(l->ctl), "%s", ctl);
            memcpy(l->ack, ack, ack_len);
            l->ack_len = ack_len;
            break;
        }
        return true;
    }
    if (!send_framed(c->fd, ack, ack_len)) {
        conn_close(c);
        return false;
    }
    return true;
}

static void conn_read(fake *f, fake_conn *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap == 0 ? 131072 : c->cap * 2;
        c->buf = realloc(c->buf, c->cap);
        if (c->buf == NULL)
            _exit(3);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0) {
        char line[64];
        snprintf(line, sizeof(line), "closed conn=%u\n", c->id);
        fake_log(f, line);
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    for (;;) {
        char *sb = memchr(c->buf, 0x0b, c->len);
        if (sb == NULL)
            return;
        size_t start = (size_t)(sb - c->buf) + 1, end = 0;
        for (size_t i = start; i + 1 < c->len; i++) {
            if (c->buf[i] == 0x1c && c->buf[i + 1] == 0x0d) {
                end = i;
                break;
            }
        }
        if (end == 0)
            return;
        if (!handle_message(f, c, c->buf + start, end - start))
            return;
        memmove(c->buf, c->buf + end + 2, c->len - end - 2);
        c->len -= end + 2;
    }
}

static void run_late(fake *f, uint64_t now)
{
    for (size_t i = 0; i < FAKE_MAX_LATE; i++) {
        fake_late *l = &f->late[i];
        if (!l->used || l->due_ms > now)
            continue;
        l->used = false;
        fake_conn *c = conn_by_id(f, l->conn_id);
        bool written = c != NULL && send_framed(c->fd, l->ack, l->ack_len);
        char line[160];
        snprintf(line, sizeof(line), "late conn=%u ctl=%s written=%d\n", l->conn_id, l->ctl,
                 written ? 1 : 0);
        fake_log(f, line);
    }
}

static void fake_run(fake *f)
{
    struct pollfd pfd[FAKE_MAX_CONNS + 1];
    for (;;) {
        uint64_t now = pxt_now_ms();
        run_late(f, now);
        int timeout = -1;
        for (size_t i = 0; i < FAKE_MAX_LATE; i++)
            if (f->late[i].used) {
                int64_t d = (int64_t)f->late[i].due_ms - (int64_t)now;
                int t = d < 0 ? 0 : (int)d;
                if (timeout < 0 || t < timeout)
                    timeout = t;
            }
        pfd[0].fd = f->listen_fd;
        pfd[0].events = POLLIN;
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
            pfd[i + 1].fd = f->conns[i].fd;
            pfd[i + 1].events = POLLIN;
        }
        int r = poll(pfd, FAKE_MAX_CONNS + 1, timeout);
        if (r < 0 && errno != EINTR)
            _exit(4);
        if (r <= 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            int fd = accept(f->listen_fd, NULL, NULL);
            for (size_t i = 0; fd >= 0 && i < FAKE_MAX_CONNS; i++) {
                if (f->conns[i].fd >= 0)
                    continue;
                f->conns[i].fd = fd;
                f->conns[i].id = ++f->next_conn_id;
                char line[64];
                snprintf(line, sizeof(line), "open conn=%u\n", f->conns[i].id);
                fake_log(f, line);
                fd = -1;
            }
            if (fd >= 0)
                close(fd);
        }
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
            if (f->conns[i].fd >= 0 && pfd[i + 1].fd == f->conns[i].fd &&
                (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                conn_read(f, &f->conns[i]);
    }
}

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

void pxt_fake_start(pxt_proc *p, const char *dir, const char *name, unsigned port,
                    const pxt_fake_opts *opts)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->out_path, sizeof(p->out_path), "%s/%s.out", dir, name);
    snprintf(p->err_path, sizeof(p->err_path), "%s/%s.err", dir, name);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ck_assert_msg(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0, "fake EHR: bind %u: %s", port,
                  strerror(errno));
    ck_assert_int_eq(listen(lfd, 64), 0);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGTERM, on_term);
        for (int fd = 3; fd < 4096; fd++)
            if (fd != lfd)
                close(fd);
        fake f;
        memset(&f, 0, sizeof(f));
        f.opts = opts;
        f.listen_fd = lfd;
        for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
            f.conns[i].fd = -1;
        f.log_fd = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        if (f.log_fd < 0)
            _exit(127);
        fake_run(&f);
        _exit(0);
    }
    close(lfd);
    p->pid = pid;
}
