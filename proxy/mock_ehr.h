/* A test EHR on libuv: an MLLP server that answers every message with an ACK built by
 * hl7_ack_build, with configurable faults (negative ACKs, delays, dropped ACKs, closed
 * connections, malformed ACKs, enhanced-mode commit and application ACKs). It stands in for
 * the legacy EHR in tests and benchmarks (`parallax mock-ehr`).
 *
 * Per connection, answers leave in the order the messages arrived. Random choices (which
 * messages get AE, which ACKs are dropped) come from a PRNG seeded by opts.seed, so a run
 * over one connection is reproducible. Logs carry connection numbers and reasons only,
 * never message content. */
#ifndef PX_PROXY_MOCK_EHR_H
#define PX_PROXY_MOCK_EHR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "common/error.h"

/* How --bad-ack spoils every ACK. */
typedef enum proxy_mock_bad_ack {
    PROXY_MOCK_ACK_GOOD = 0,
    PROXY_MOCK_ACK_WRONG_MSA2, /* MSA-2 = "WRONG-" + the message's MSH-10 */
    PROXY_MOCK_ACK_BLANK_MSA2, /* MSA-2 empty */
    PROXY_MOCK_ACK_GARBAGE,    /* a well-framed payload that is not HL7 */
    PROXY_MOCK_ACK_NO_MSA,     /* the ACK without its MSA segment */
} proxy_mock_bad_ack;

/* Parses "wrong-msa2", "blank-msa2", "garbage", "no-msa"; false for anything else. */
bool proxy_mock_bad_ack_parse(const char *s, proxy_mock_bad_ack *out);

/* The payload sent for PROXY_MOCK_ACK_GARBAGE (framed as MLLP), for tests. */
extern const char proxy_mock_garbage_ack[];

typedef struct proxy_mock_ehr_opts {
    const char *host;          /* numeric address to listen on; NULL = 127.0.0.1 (copied) */
    unsigned port;             /* 0 = any free port (see proxy_mock_ehr_port) */
    double nak_rate;           /* fraction of messages answered AE, 0 … 1 */
    double drop_ack_rate;      /* fraction of messages left unanswered, 0 … 1 */
    unsigned delay_ms;         /* each answer leaves no sooner than this after arrival */
    unsigned close_after;      /* after this many messages on a connection, read no more
                                  and close it once their answers are written; 0 = never */
    bool enhanced;             /* CA at once, then an application ACK as its own message */
    unsigned app_ack_delay_ms; /* the application ACK's delay after the commit ACK */
    proxy_mock_bad_ack bad_ack;
    const char *record_path; /* append each received message, framed, to this file; NULL =
                                don't (borrowed for the create call) */
    uint64_t seed;
    size_t max_frame; /* 0 = HL7_MLLP_DEFAULT_MAX */
    FILE *log;        /* one JSON object per line; NULL = silent (borrowed, must outlive) */
} proxy_mock_ehr_opts;

/* Counters since start. received = acked + naked + dropped; acked counts AA (or, in
 * enhanced mode, an application AA), naked AE plus AR for frames that held no MSH. */
typedef struct proxy_mock_ehr_stats {
    uint64_t received;
    uint64_t acked;
    uint64_t naked;
    uint64_t dropped;
    uint64_t connections; /* accepted so far */
    uint64_t open;        /* open now */
    uint64_t unframeable; /* connections closed for bad MLLP framing */
} proxy_mock_ehr_stats;

typedef struct proxy_mock_ehr proxy_mock_ehr_t;

/* Binds and listens on loop. The server belongs to the caller until
 * proxy_mock_ehr_close. On failure *out is NULL and whatever libuv handle was opened is
 * released on the loop's next run (run the loop before uv_loop_close).
 * PX_ERR_INVAL for bad options, PX_ERR_IO (detail = uv error) for bind/listen failures and
 * an unopenable record file, PX_ERR_NOMEM. */
px_err proxy_mock_ehr_create(uv_loop_t *loop, const proxy_mock_ehr_opts *opts,
                             proxy_mock_ehr_t **out, px_error *err);

/* The port actually bound. */
unsigned proxy_mock_ehr_port(const proxy_mock_ehr_t *m);

void proxy_mock_ehr_get_stats(const proxy_mock_ehr_t *m, proxy_mock_ehr_stats *out);

/* Stops listening, closes every connection (queued ACKs are not sent), frees the server
 * once libuv released all handles, then calls closed(ud) (may be NULL). Call once. */
void proxy_mock_ehr_close(proxy_mock_ehr_t *m, void (*closed)(void *ud), void *ud);

#endif
