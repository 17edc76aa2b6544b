/* kill -9 at a random moment loses nothing that was reported durable (RELIABILITY B1):
 * a child submits messages and writes each id to a pipe only after its op completed; the
 * parent kills it, reopens the ledger and finds every reported id. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "ledger/ledger.h"
#include "tcases.h"

static int wake[2]; /* the child's notify pipe */

static void child_notify(void *arg)
{
    (void)arg;
    char b = 1;
    ssize_t n = write(wake[1], &b, 1); /* non-blocking; a full pipe is already a wake-up */
    (void)n;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(3);
        }
        c += w;
        n -= (size_t)w;
    }
}

static void child(const char *path, int out)
{
    if (pipe(wake) != 0)
        _exit(2);
    fcntl(wake[1], F_SETFL, O_NONBLOCK);
    ledger_options opt;
    ledger_options_init(&opt);
    opt.path = path;
    opt.notify = child_notify;
    ledger_t *l = NULL;
    if (ledger_open(&opt, &l, NULL) != PX_OK)
        _exit(2);
    size_t in_flight = 0;
    for (uint64_t i = 0;; i++) {
        while (in_flight < 256) {
            char cid[32];
            snprintf(cid, sizeof(cid), "K%llu", (unsigned long long)i++);
            ledger_submit(l, lt_message_op("lab", cid, (int64_t)i, 1500, NULL));
            in_flight++;
        }
        struct pollfd p = {.fd = wake[0], .events = POLLIN};
        poll(&p, 1, 1000);
        char drain[64];
        while (read(wake[0], drain, sizeof(drain)) == (ssize_t)sizeof(drain))
            ;
        ledger_op_t *op = ledger_take_completed(l);
        while (op != NULL) {
            ledger_op_t *next = ledger_op_next(op);
            int64_t id = ledger_op_result(op, NULL) == PX_OK ? ledger_op_message_id(op, 0) : -1;
            write_all(out, &id, sizeof(id));
            ledger_op_destroy(op);
            in_flight--;
            op = next;
        }
    }
}

START_TEST(kill_9_at_a_random_moment_loses_no_reported_message)
{
    lt_setup_dir();
    const char *path = lt_path("crash.db");
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int64_t *ids = malloc(sizeof(int64_t) * 2000000);
    ck_assert_ptr_nonnull(ids);
    size_t total_reported = 0;
    for (int round = 0; round < 10; round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            child(path, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        size_t n = 0, failed = 0;
        /* Wait for the first durable id, then kill at a random moment 0–300 ms later. */
        int64_t id;
        ck_assert_int_eq(read(fds[0], &id, sizeof(id)), (ssize_t)sizeof(id));
        ids[n++] = id;
        struct timespec delay = {0, (long)(rand() % 300) * 1000000L};
        nanosleep(&delay, NULL);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* Read whatever the child reported before it died. */
        char buf[8192];
        size_t have = 0;
        ssize_t r;
        while ((r = read(fds[0], buf + have, sizeof(buf) - have)) > 0) {
            have += (size_t)r;
            size_t whole = have / sizeof(int64_t) * sizeof(int64_t);
            for (size_t off = 0; off < whole; off += sizeof(int64_t)) {
                memcpy(&id, buf + off, sizeof(id));
                if (id < 0)
                    failed++;
                else if (n < 2000000)
                    ids[n++] = id;
            }
            memmove(buf, buf + whole, have - whole);
            have -= whole;
        }
        close(fds[0]);
        ck_assert_uint_eq(failed, 0);

        /* Reopen as the service would (recovery included), then check on disk. */
        ledger_options opt;
        ledger_options_init(&opt);
        opt.path = path;
        opt.recover_in_flight = true;
        ledger_t *l = NULL;
        px_error err;
        ck_assert_msg(ledger_open(&opt, &l, &err) == PX_OK, "round %d: %s", round, err.msg);
        ledger_close(l);
        lt_assert_integrity(path);
        sqlite3 *db = lt_db(path);
        sqlite3_stmt *st = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(db,
                                            "SELECT count(*) FROM messages m JOIN bodies b ON"
                                            " b.message = m.id JOIN outbox o ON"
                                            " o.leg = 'fhir' AND o.seq = m.id AND"
                                            " o.message = m.id WHERE m.id = ?1",
                                            -1, &st, NULL),
                         SQLITE_OK);
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_int64(st, 1, ids[i]);
            ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
            ck_assert_msg(sqlite3_column_int64(st, 0) == 1, "round %d: id %lld lost", round,
                          (long long)ids[i]);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        total_reported += n;
    }
    ck_assert_uint_gt(total_reported, 10);
    free(ids);
    lt_cleanup();
}
END_TEST

TCase *ledger_tcase_crash(void)
{
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, kill_9_at_a_random_moment_loses_no_reported_message);
    return tc;
}
