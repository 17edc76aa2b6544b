/* Ledger write benchmark: messages/s and commit latency for 2 KiB messages, with
 * synchronous=FULL and NORMAL.
 *
 * usage: ledger_write [-n MESSAGES] [-w WINDOW] [-r RATE] [-d DIR]
 *
 * Each message is what the proxy writes for one inbound message: the message row and its
 * body (2 KiB), a legacy and a fhir leg, and a fhir outbox row. A producer keeps WINDOW
 * messages in flight (as many sender connections would) and takes completions when the
 * writer notifies. Window 1 shows the cost of one commit (an fsync) on its own; a paced run
 * submits RATE messages per second (RELIABILITY A1's 5,000 by default) to show the
 * latency at a steady load rather than flat out. Figures:
 * messages/s, ops per commit, BEGIN…COMMIT duration p50/p99 (from ledger_stats), and
 * submit-to-durable latency p50/p99 per message (what a sender's ACK waits for). */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/msg.h"
#include "ledger/ledger.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int woken;

static void notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    woken = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static ledger_op_t *message_op(px_msg_t *body, size_t i, void *user)
{
    ledger_op_t *op = NULL;
    if (ledger_op_create(user, &op, NULL) != PX_OK)
        return NULL;
    char cid[32];
    snprintf(cid, sizeof(cid), "BENCH%zu", i);
    unsigned char hash[LEDGER_HASH_LEN];
    memset(hash, (int)(i & 0xff), sizeof(hash));
    memcpy(hash, &i, sizeof(i));
    ledger_message_rec m = {.received_at_ms = (int64_t)i,
                            .feed = PX_LIT("lab"),
                            .peer = PX_LIT("127.0.0.1:40000"),
                            .sending_app = PX_LIT("LAB"),
                            .sending_facility = PX_LIT("HOSP"),
                            .receiving_app = PX_LIT("EHR"),
                            .receiving_facility = PX_LIT("HOSP"),
                            .type = PX_LIT("ORU"),
                            .trigger = PX_LIT("R01"),
                            .control_id = px_str_from_cstr(cid),
                            .version = PX_LIT("2.5.1"),
                            .hash = hash,
                            .config_version = 1,
                            .state = LEDGER_MSG_RECEIVED,
                            .body = body};
    int64_t ref = 0;
    ledger_leg_rec legacy = {.leg = LEDGER_LEG_LEGACY,
                             .state = LEDGER_LEG_IN_FLIGHT,
                             .latency_us = -1,
                             .updated_at_ms = (int64_t)i};
    ledger_leg_rec fhir = legacy;
    fhir.leg = LEDGER_LEG_FHIR;
    fhir.state = LEDGER_LEG_PENDING;
    ledger_outbox_rec ob = {.action = LEDGER_OUTBOX_INSERT,
                            .leg = LEDGER_LEG_FHIR,
                            .key = PX_LIT("MRN123456"),
                            .at_ms = (int64_t)i};
    if (ledger_op_add_message(op, &m, &ref, NULL) != PX_OK)
        goto out_fail;
    legacy.message = fhir.message = ob.message = ref;
    if (ledger_op_add_leg(op, &legacy, NULL) != PX_OK ||
        ledger_op_add_leg(op, &fhir, NULL) != PX_OK || ledger_op_add_outbox(op, &ob, NULL) != PX_OK)
        goto out_fail;
    return op;

out_fail:
    ledger_op_destroy(op);
    return NULL;
}

/* Runs one configuration; returns 0 on success. */
static int run(const char *base, ledger_sync sync, size_t n, size_t window, double rate)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/px-bench-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/ledger.db", dir);

    ledger_options opt;
    ledger_options_init(&opt);
    opt.path = path;
    opt.synchronous = sync;
    opt.notify = notify;
    ledger_t *l = NULL;
    px_error err;
    if (ledger_open(&opt, &l, &err) != PX_OK) {
        fprintf(stderr, "ledger_write: %s\n", err.msg);
        return 1;
    }
    char text[2048];
    int hdr = snprintf(text, sizeof(text),
                       "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20261125100000||ORU^R01|X|P|2.5.1\r");
    for (size_t i = (size_t)hdr; i < sizeof(text); i++)
        text[i] = (i % 80 == 79) ? '\r' : (char)('A' + i % 26);
    px_msg_t *body = NULL;
    if (px_msg_create(text, sizeof(text), &body, &err) != PX_OK)
        return 1;

    uint64_t *submitted_at = calloc(n, sizeof(*submitted_at));
    uint64_t *latency = calloc(n, sizeof(*latency));
    if (submitted_at == NULL || latency == NULL)
        return 1;
    size_t next = 0, done = 0, failed = 0;
    uint64_t t0 = now_us();
    while (done < n) {
        uint64_t due = UINT64_MAX;
        while (next < n && next - done < window) {
            if (rate > 0) {
                uint64_t at = t0 + (uint64_t)((double)next * 1e6 / rate);
                if (at > now_us()) {
                    due = at;
                    break;
                }
            }
            ledger_op_t *op = message_op(body, next, (void *)(uintptr_t)next);
            if (op == NULL)
                return 1;
            submitted_at[next] = now_us();
            ledger_submit(l, op);
            next++;
        }
        pthread_mutex_lock(&mu);
        while (!woken && (due == UINT64_MAX || now_us() < due)) {
            if (due == UINT64_MAX) {
                pthread_cond_wait(&cv, &mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                uint64_t wait = due - now_us();
                ts.tv_sec += (time_t)(wait / 1000000u);
                ts.tv_nsec += (long)(wait % 1000000u) * 1000;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&cv, &mu, &ts);
            }
        }
        woken = 0;
        pthread_mutex_unlock(&mu);
        uint64_t t = now_us();
        for (ledger_op_t *op = ledger_take_completed(l); op != NULL;) {
            ledger_op_t *following = ledger_op_next(op);
            size_t i = (size_t)(uintptr_t)ledger_op_user(op);
            latency[done] = t - submitted_at[i];
            failed += ledger_op_result(op, NULL) != PX_OK;
            ledger_op_destroy(op);
            done++;
            op = following;
        }
    }
    uint64_t elapsed = now_us() - t0;
    ledger_stats st;
    ledger_stats_get(l, &st);
    ledger_close(l);
    px_msg_unref(body);

    qsort(latency, n, sizeof(*latency), cmp_u64);
    double secs = (double)elapsed / 1e6;
    char mode[32];
    if (rate > 0)
        snprintf(mode, sizeof(mode), "%.0f/s", rate);
    else
        snprintf(mode, sizeof(mode), "w%zu", window);
    printf("%-6s %7zu %7s %10.0f %8.1f %6" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
           " %8" PRIu64 " %6zu\n",
           sync == LEDGER_SYNC_FULL ? "FULL" : "NORMAL", n, mode, (double)n / secs,
           st.commits ? (double)st.ops_ok / (double)st.commits : 0.0, st.max_group,
           st.commit_p50_us, st.commit_p99_us, latency[n / 2], latency[n * 99 / 100], failed);
    free(submitted_at);
    free(latency);

    char file[4300];
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
        unlink(file);
    }
    rmdir(dir);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    size_t n = 20000, window = 1000;
    double rate = 5000;
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    int c;
    while ((c = getopt(argc, argv, "n:w:r:d:")) != -1) {
        switch (c) {
        case 'n':
            n = strtoul(optarg, NULL, 10);
            break;
        case 'w':
            window = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        case 'd':
            base = optarg;
            break;
        default:
            fprintf(stderr, "usage: ledger_write [-n MESSAGES] [-w WINDOW] [-r RATE] [-d DIR]\n");
            return 2;
        }
    }
    if (n == 0 || n > 10000000 || window == 0 || rate < 0 || rate > 1e6) {
        fprintf(stderr, "ledger_write: bad -n, -w or -r\n");
        return 2;
    }
    printf("2 KiB messages (message + body + 2 legs + outbox row per op), dir %s\n", base);
    printf("%-6s %7s %7s %10s %8s %6s %8s %8s %8s %8s %6s\n", "sync", "msgs", "load", "msg/s",
           "ops/cmt", "maxgrp", "cmt_p50", "cmt_p99", "ack_p50", "ack_p99", "failed");
    printf("%-6s %7s %7s %10s %8s %6s %8s %8s %8s %8s %6s\n", "", "", "", "", "", "", "(us)",
           "(us)", "(us)", "(us)", "");
    int rc = 0;
    ledger_sync modes[] = {LEDGER_SYNC_FULL, LEDGER_SYNC_NORMAL};
    for (size_t m = 0; m < 2; m++) {
        rc |= run(base, modes[m], n, window, 0);
        if (rate > 0)
            rc |= run(base, modes[m], n, SIZE_MAX, rate);
        rc |= run(base, modes[m], n < 2000 ? n : 2000, 1, 0);
    }
    return rc;
}
