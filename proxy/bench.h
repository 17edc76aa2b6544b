/* `parallax bench`: an MLLP load generator on one libuv loop. N connections each keep K
 * messages in flight, rotating through the input messages with MSH-10 rewritten to a unique
 * control id per send; every ACK's MSA-2 is checked against the control id it answers and
 * its latency (send to ACK) goes into a log-linear histogram. Nothing is allocated per
 * message. */
#ifndef PX_PROXY_BENCH_H
#define PX_PROXY_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "proxy/send.h"

/* A latency histogram in microseconds: exact below 128 µs, then 64 buckets per power of
 * two (at most 1/64 relative error), up to 2^40 µs; larger values land in the last
 * bucket. Embeddable; all-zero is an empty histogram. */
#define PROXY_HIST_SUB_BITS 6
#define PROXY_HIST_LINEAR   (2u << PROXY_HIST_SUB_BITS)
#define PROXY_HIST_TOP_BIT  40
#define PROXY_HIST_BUCKETS                                                                         \
    (PROXY_HIST_LINEAR +                                                                           \
     (PROXY_HIST_TOP_BIT - PROXY_HIST_SUB_BITS - 1) * (1u << PROXY_HIST_SUB_BITS))

typedef struct proxy_hist {
    uint64_t counts[PROXY_HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
    uint64_t sum;
} proxy_hist;

void proxy_hist_reset(proxy_hist *h);
void proxy_hist_record(proxy_hist *h, uint64_t us);

/* The bucket a value falls in, and the largest value that bucket holds. */
size_t proxy_hist_bucket(uint64_t us);
uint64_t proxy_hist_bucket_high(size_t bucket);

/* The smallest bucket bound at or above the p-th percentile (0 < p <= 100), capped at the
 * largest value recorded; 0 for an empty histogram. */
uint64_t proxy_hist_percentile(const proxy_hist *h, double p);

typedef struct proxy_bench_opts {
    const char *host; /* name or numeric address (borrowed) */
    unsigned port;
    unsigned conns;        /* connections, >= 1 */
    unsigned pipeline;     /* messages in flight per connection, >= 1 */
    uint64_t messages;     /* total messages to send; 0 = run for duration_ms */
    unsigned duration_ms;  /* sending time after the warm-up (when messages is 0) */
    unsigned warmup_ms;    /* ACKs in this first stretch are not timed or counted in the
                              rate */
    unsigned timeout_ms;   /* an ACK later than this fails its connection; 0 = 10000 */
    const char *acked_log; /* append each control id that got AA/CA, one per line (borrowed);
                              NULL = none */
    const char *id_prefix; /* control ids are <prefix><conn>-<seq>; NULL = "B" and five
                              characters that differ from run to run */
    bool handle_signals;   /* SIGINT/SIGTERM stop sending and let in-flight ACKs arrive */
} proxy_bench_opts;

typedef struct proxy_bench_result {
    unsigned conns, pipeline;
    uint64_t sent;
    uint64_t answered; /* ACKs matched to a sent message */
    uint64_t aa, ae, ar, ca, ce, cr;
    uint64_t app_acks;   /* enhanced-mode application ACKs (not timed) */
    uint64_t errors;     /* mismatches + unreadable + unexpected + unanswered */
    uint64_t mismatches; /* MSA-2 differs from the control id sent */
    uint64_t unreadable; /* an answer without a readable MSA */
    uint64_t unexpected; /* an answer while nothing was in flight */
    uint64_t unanswered; /* in flight when a connection failed or timed out */
    uint64_t timeouts;   /* connections failed for a late ACK */
    unsigned conn_failures;
    uint64_t measured;   /* ACKs after the warm-up */
    double seconds;      /* from the end of the warm-up to the last ACK */
    double msgs_per_sec; /* measured / seconds */
    uint64_t bytes_sent;
    proxy_hist latency; /* µs, measured ACKs only */
} proxy_bench_result;

/* Runs the benchmark over the messages of input (borrowed for the call). Returns PX_OK when
 * the run took place, whatever its errors (see result and proxy_bench_result_ok);
 * PX_ERR_PARSE when a message has no MSH-10 to rewrite (err names it); PX_ERR_INVAL for bad
 * options,
 * PX_ERR_IO when the acked log cannot be opened or written, PX_ERR_NOMEM. */
px_err proxy_bench_run(const proxy_bench_opts *opts, const proxy_send_list_t *input,
                       proxy_bench_result *result, px_error *err);

/* True when nothing went wrong: no errors, no failed connection, every message answered. */
bool proxy_bench_result_ok(const proxy_bench_result *r);

/* Prints the summary: a few readable lines, or one JSON object on one line. */
void proxy_bench_report(const proxy_bench_result *r, FILE *out, bool json);

#endif
