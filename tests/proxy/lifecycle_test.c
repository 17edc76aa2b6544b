/* Stopping under load (RELIABILITY B18) and crash safety (B1): while `parallax bench`
 * streams through the proxy, SIGTERM must drain and exit 0, and SIGKILL at a random moment
 * followed by a restart must never lose a message a sender was ACKed for. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tcases.h"

#define BENCH_CONNS    4
#define BENCH_PIPELINE 4

static void write_bench_input(const pxt_env *e, char *path, size_t size)
{
    char msg[1024];
    size_t len = pxt_msg(msg, sizeof(msg), "TEMPLATE", NULL, NULL);
    snprintf(path, size, "%s/bench.hl7", e->dir);
    pxt_file_write(path, msg, len);
}

static void bench_start(pxt_proc *p, const pxt_env *e, const char *input, const char *acked,
                        const char *prefix, const char *name)
{
    char port[16], conns[16], pipeline[16];
    snprintf(port, sizeof(port), "%u", e->feed_port);
    snprintf(conns, sizeof(conns), "%d", BENCH_CONNS);
    snprintf(pipeline, sizeof(pipeline), "%d", BENCH_PIPELINE);
    char *argv[] = {
        (char *)e->parallax, "bench",       "--port",      port,           "--conns",      conns,
        "--pipeline",        pipeline,      "--duration",  "60",           "--timeout-ms", "3000",
        "--acked-log",       (char *)acked, "--id-prefix", (char *)prefix, (char *)input,  NULL};
    pxt_proc_spawn(p, e->dir, name, argv);
}

/* Ends the bench (its connections fail once the proxy is gone) and checks it did not
 * crash. */
static void bench_end(pxt_proc *p)
{
    if (!pxt_proc_stop(p, 0, 15000))
        ck_abort_msg("parallax bench did not end within 15 s after the proxy went away");
    pxt_assert_no_sanitizer_report(p->err_path);
    ck_assert_msg(WIFEXITED(p->status) && WEXITSTATUS(p->status) <= 1,
                  "parallax bench ended with status %d", p->status);
}

static void wait_for_acks(const char *acked, size_t lines, unsigned timeout_ms)
{
    uint64_t until = pxt_now_ms() + timeout_ms;
    while (pxt_file_count(acked, "\n") < lines) {
        ck_assert_msg(pxt_now_ms() < until, "the bench got no ACK within %u ms", timeout_ms);
        pxt_sleep_ms(10);
    }
}

START_TEST(sigterm_under_load_drains_exits_0_and_keeps_every_acked_message)
{
    pxt_env e;
    pxt_env_init(&e);
    pxt_mock_start(&e, NULL);
    pxt_env_config(&e, "\"pool\": 2", NULL, NULL);
    pxt_serve_start(&e);
    char input[PXT_PATH], acked[PXT_PATH];
    write_bench_input(&e, input, sizeof(input));
    snprintf(acked, sizeof(acked), "%s/acked.log", e.dir);

    pxt_proc bench;
    bench_start(&bench, &e, input, acked, "T", "bench");
    wait_for_acks(acked, 200, 15000);
    pxt_serve_stop(&e); /* SIGTERM while the bench streams: exit 0, no leak report */
    bench_end(&bench);

    sqlite3 *db = pxt_check_open(e.db_path);
    size_t n = pxt_check_load_lines(db, "acked", acked);
    ck_assert_msg(n >= 200, "only %zu ACKs logged", n);
    char example[128];
    pxt_check_text(db,
                   "SELECT a.id FROM acked a WHERE NOT EXISTS (SELECT 1 FROM messages m"
                   " JOIN legs l ON l.message = m.id WHERE m.feed = 'lab'"
                   " AND m.sending_app = 'LABSYS' AND m.sending_facility = 'LABFAC'"
                   " AND m.control_id = a.id AND m.state = 'received'"
                   " AND l.leg = 'legacy' AND l.state = 'delivered')",
                   example, sizeof(example));
    ck_assert_msg(example[0] == '\0',
                  "%s was ACKed to the sender but is not in the ledger as delivered", example);
    ck_assert_int_eq(pxt_check_int(db, "SELECT count(*) FROM legs WHERE state = 'in_flight'"), 0);
    pxt_check_close(db);
    pxt_env_finish(&e);
}
END_TEST

static unsigned kill_loops(void)
{
    const char *v = getenv("PX_KILL_LOOPS");
    if (v == NULL || *v == '\0')
        return 20;
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    return end != NULL && *end == '\0' && n > 0 && n <= 100000 ? (unsigned)n : 20;
}

/* Rounds share one ledger and one EHR record for at most this many kills; a long run
 * (scripts/soak) goes on with a fresh pair, so its checks stay linear in the rounds. */
#define KILL_CHAIN 20

/* Looks up control ids through the ledger's retransmission index (feed, sender, id). */
#define SQL_ACKED_MISSING                                                                          \
    "SELECT a.id FROM %s a WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.feed = 'lab'"        \
    " AND m.sending_app = 'LABSYS' AND m.sending_facility = 'LABFAC' AND m.control_id = a.id"      \
    " AND m.state = 'received')"

typedef struct kill_totals {
    size_t acked;
    int64_t resent;
} kill_totals;

/* Runs rounds [first, first + n) over a fresh ledger and EHR record, then checks them. */
static void kill_chain(pxt_env *e, const char *input, unsigned first, unsigned n, unsigned seed,
                       kill_totals *tot)
{
    snprintf(e->db_path, sizeof(e->db_path), "%s/db-%u/ledger.db", e->dir, first);
    snprintf(e->record_path, sizeof(e->record_path), "%s/ehr-record-%u.mllp", e->dir, first);
    pxt_mock_start(e, NULL);
    /* How many messages the EHR had received after each kill: what arrives after mark i
     * and before mark i + 1 came from the start after kill i. */
    size_t marks[KILL_CHAIN];
    for (unsigned k = 0; k < n; k++) {
        unsigned round = first + k;
        /* Rounds alternate the legacy policy and store-and-forward (commit), whose outbox
         * the next start must deliver. */
        pxt_env_config(e, "\"pool\": 2",
                       round % 2 == 0 ? "\"ack_policy\": \"legacy\"" : "\"ack_policy\": \"commit\"",
                       NULL);
        pxt_serve_start(e);
        char acked[PXT_PATH], prefix[32], name[32], sql[512], example[128];
        snprintf(acked, sizeof(acked), "%s/acked-%u.log", e->dir, round);
        snprintf(prefix, sizeof(prefix), "K%ux", round);
        snprintf(name, sizeof(name), "bench-%u", round);
        pxt_proc bench;
        bench_start(&bench, e, input, acked, prefix, name);
        pxt_sleep_ms(100 + (unsigned)(rand() % 700));
        pxt_serve_kill(e); /* fails if the proxy died on its own under load */
        pxt_assert_no_sanitizer_report(e->serve.err_path);
        bench_end(&bench);
        pxt_sleep_ms(50); /* lets the EHR record what was still in its socket */
        marks[k] = pxt_record_wait(e->record_path, SIZE_MAX, 0);

        const char *integrity = pxt_sql_integrity(e->db_path);
        ck_assert_msg(strcmp(integrity, "ok") == 0, "round %u (PX_SEED=%u): integrity_check: %s",
                      round, seed, integrity);
        sqlite3 *db = pxt_check_open(e->db_path);
        tot->acked += pxt_check_load_lines(db, "acked", acked);
        snprintf(sql, sizeof(sql), SQL_ACKED_MISSING, "acked");
        pxt_check_text(db, sql, example, sizeof(example));
        ck_assert_msg(example[0] == '\0',
                      "round %u (PX_SEED=%u): %s was ACKed to the sender but is not in the "
                      "ledger after SIGKILL",
                      round, seed, example);
        pxt_check_close(db);
    }

    /* A last start delivers what the commit rounds left queued, then stops cleanly. */
    pxt_env_config(e, "\"pool\": 2", NULL, NULL);
    pxt_serve_start(e);
    ck_assert_int_eq(pxt_sql_wait(e->db_path, "SELECT count(*) FROM outbox", NULL, 0, 30000), 0);
    pxt_serve_stop(e);
    pxt_mock_stop(e);
    ck_assert_str_eq(pxt_sql_integrity(e->db_path), "ok");

    sqlite3 *db = pxt_check_open(e->db_path);
    pxt_check_load_record(db, "record", e->record_path);
    for (unsigned k = 0; k < n; k++) {
        unsigned round = first + k;
        char acked[PXT_PATH], table[32], sql[512], example[128];
        snprintf(acked, sizeof(acked), "%s/acked-%u.log", e->dir, round);
        snprintf(table, sizeof(table), "acked%u", round);
        pxt_check_load_lines(db, table, acked);
        /* Every message a sender was ACKed for reached the EHR. */
        snprintf(sql, sizeof(sql),
                 "SELECT a.id FROM %s a WHERE NOT EXISTS (SELECT 1 FROM record r"
                 " WHERE r.id = a.id)",
                 table);
        pxt_check_text(db, sql, example, sizeof(example));
        ck_assert_msg(example[0] == '\0',
                      "round %u (PX_SEED=%u): %s was ACKed but never reached the EHR", round, seed,
                      example);
        /* Re-forwards after each kill are bounded by what was in flight at the kill. */
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM record r WHERE r.rowid > %zu AND r.rowid <= %zu AND"
                 " EXISTS (SELECT 1 FROM record e WHERE e.id = r.id AND e.rowid < r.rowid)",
                 marks[k], k + 1 < n ? marks[k + 1] : SIZE_MAX / 2);
        int64_t resent = pxt_check_int(db, sql);
        ck_assert_msg(resent <= BENCH_CONNS * BENCH_PIPELINE,
                      "kill %u (PX_SEED=%u): the next start sent %lld messages to the EHR again "
                      "(at most %d were in flight)",
                      round, seed, (long long)resent, BENCH_CONNS * BENCH_PIPELINE);
        tot->resent += resent;
        unlink(acked);
    }
    /* Every legacy leg ended: none is left pending or in flight. */
    ck_assert_int_eq(pxt_check_int(db, "SELECT count(*) FROM legs WHERE leg = 'legacy'"
                                       " AND state IN ('pending', 'in_flight')"),
                     0);
    pxt_check_close(db);
    /* Keeps a long run's disk use flat. */
    char wal[PXT_PATH + 8];
    snprintf(wal, sizeof(wal), "%s-wal", e->db_path);
    unlink(wal);
    snprintf(wal, sizeof(wal), "%s-shm", e->db_path);
    unlink(wal);
    unlink(e->db_path);
    unlink(e->record_path);
}

START_TEST(sigkill_at_random_moments_never_loses_an_acked_message)
{
    unsigned loops = kill_loops();
    unsigned seed = (unsigned)time(NULL);
    const char *sv = getenv("PX_SEED");
    if (sv != NULL && *sv != '\0')
        seed = (unsigned)strtoul(sv, NULL, 10);
    fprintf(stderr, "kill loop: %u rounds, PX_SEED=%u\n", loops, seed);
    srand(seed);

    pxt_env e;
    pxt_env_init(&e);
    char input[PXT_PATH];
    write_bench_input(&e, input, sizeof(input));
    uint64_t started = pxt_now_ms();
    kill_totals tot = {0, 0};
    for (unsigned first = 0; first < loops; first += KILL_CHAIN)
        kill_chain(&e, input, first, loops - first < KILL_CHAIN ? loops - first : KILL_CHAIN, seed,
                   &tot);
    ck_assert_msg(tot.acked >= loops, "the bench got only %zu ACKs over %u rounds", tot.acked,
                  loops);
    fprintf(stderr,
            "kill loop: %u rounds, %zu ACKed messages checked, %lld sent again after a kill, "
            "%llu ms\n",
            loops, tot.acked, (long long)tot.resent, (unsigned long long)(pxt_now_ms() - started));
    pxt_env_finish(&e);
}
END_TEST

static void send_acked(pxt_client *c, const char *ctl, char *msg, size_t size, size_t *len)
{
    *len = pxt_msg(msg, size, ctl, NULL, NULL);
    pxt_client_send(c, msg, *len);
    pxt_bytes ack = pxt_client_ack(c, 10000);
    pxt_assert_ack(&ack, "AA", ctl);
    pxt_bytes_free(&ack);
}

START_TEST(queued_messages_of_an_earlier_run_go_first_and_in_order_after_a_restart)
{
    enum { N = 5 };
    pxt_env e;
    pxt_env_init(&e);
    pxt_env_config(&e, "\"connect_timeout_ms\": 500", "\"ack_policy\": \"commit\"", NULL);
    pxt_serve_start(&e);
    char msgs[2 * N][1024];
    size_t lens[2 * N];
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "EARLIER%d", i);
        send_acked(&c, ctl, msgs[i], sizeof(msgs[i]), &lens[i]);
    }
    pxt_client_close(&c);
    pxt_serve_stop(&e); /* the EHR never answered: the messages wait in the outbox */
    ck_assert_int_eq(pxt_sql_int(e.db_path, "SELECT count(*) FROM outbox", NULL), N);

    /* RELIABILITY B13: recovery runs before new delivery, order kept. */
    pxt_mock_start(&e, NULL);
    pxt_serve_start(&e);
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char ctl[32];
        snprintf(ctl, sizeof(ctl), "LATER%d", i);
        send_acked(&c, ctl, msgs[N + i], sizeof(msgs[N + i]), &lens[N + i]);
    }
    pxt_client_close(&c);
    ck_assert_uint_eq(pxt_record_wait(e.record_path, 2 * N, 15000), 2 * N);
    pxt_bytes *frames;
    size_t n = pxt_record_read(e.record_path, &frames);
    ck_assert_uint_eq(n, 2 * N);
    for (int i = 0; i < 2 * N; i++)
        ck_assert_msg(frames[i].len == lens[i] && memcmp(frames[i].ptr, msgs[i], lens[i]) == 0,
                      "message %d of %d reached the EHR out of order", i, 2 * N);
    pxt_frames_free(frames, n);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM outbox", NULL, 0, 10000), 0);
    pxt_env_finish(&e);
}
END_TEST

START_TEST(a_kill_while_the_ledger_lags_sends_only_a_few_messages_again)
{
    enum { N = 60, BOUND = BENCH_CONNS * BENCH_PIPELINE };
    pxt_env e;
    pxt_env_init(&e);
    e.ledger_extra = "\"busy_timeout_ms\": 30000";
    pxt_env_config(&e, "\"connect_timeout_ms\": 500", "\"ack_policy\": \"commit\"", NULL);
    pxt_serve_start(&e);
    pxt_client c;
    pxt_client_open(&c, e.feed_port);
    for (int i = 0; i < N; i++) {
        char ctl[32], msg[1024];
        size_t len;
        snprintf(ctl, sizeof(ctl), "LAG%03d", i);
        send_acked(&c, ctl, msg, sizeof(msg), &len);
    }
    pxt_client_close(&c);

    /* The EHR comes back while nothing can be committed: the queue may deliver, but what it
     * delivers cannot be marked done. A crash now sends those again at the next start. */
    sqlite3 *lock = pxt_check_open(e.db_path);
    pxt_check_exec(lock, "BEGIN EXCLUSIVE");
    pxt_mock_start(&e, NULL);
    ck_assert_uint_ge(pxt_record_wait(e.record_path, 1, 10000), 1);
    pxt_sleep_ms(700);
    pxt_serve_kill(&e);
    size_t before = pxt_record_wait(e.record_path, SIZE_MAX, 100);
    pxt_check_exec(lock, "ROLLBACK");
    pxt_check_close(lock);
    ck_assert_msg(before <= BOUND,
                  "%zu queued messages went to the EHR while their delivery could not be "
                  "recorded (at most %d may be in flight)",
                  before, BOUND);

    pxt_serve_start(&e);
    ck_assert_int_eq(pxt_sql_wait(e.db_path, "SELECT count(*) FROM outbox", NULL, 0, 20000), 0);
    size_t total = pxt_record_wait(e.record_path, N + before, 5000);
    ck_assert_uint_eq(total, N + before);
    sqlite3 *db = pxt_check_open(e.db_path);
    pxt_check_load_record(db, "record", e.record_path);
    ck_assert_int_eq(pxt_check_int(db, "SELECT count(DISTINCT id) FROM record"), N);
    pxt_check_close(db);
    pxt_env_finish(&e);
}
END_TEST

TCase *proxy_tcase_lifecycle(void)
{
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 120.0 + 6.0 * kill_loops());
    tcase_add_test(tc, sigterm_under_load_drains_exits_0_and_keeps_every_acked_message);
    tcase_add_test(tc, queued_messages_of_an_earlier_run_go_first_and_in_order_after_a_restart);
    tcase_add_test(tc, a_kill_while_the_ledger_lags_sends_only_a_few_messages_again);
    tcase_add_test(tc, sigkill_at_random_moments_never_loses_an_acked_message);
    return tc;
}
