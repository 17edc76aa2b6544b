/* libFuzzer target: the MLLP stream decoder fed in fuzzer-chosen chunk sizes.
 *
 * Input layout: byte 0 picks the maximum message size (below 0x80: the default; otherwise
 * 1 … 128 bytes, to reach the oversize path); byte 1 & 7 is the number n of chunk-size bytes
 * that follow (each size is the byte + 1, used in turn); the rest is the byte stream a peer
 * sends. Properties checked for any input:
 * - the results (frames, faults, their stream positions), d->skipped, d->frames and the
 *   bytes left pending are the same whether the stream arrives in one chunk or in pieces;
 * - consumed never exceeds the input, frames lie inside it, never exceed max and hold no
 *   start or end block; the decoder makes progress (no endless PX_OK/fault loop);
 * - hl7_mllp_finish reports a truncated frame exactly when bytes are left pending;
 * - re-encoding a decoded frame and decoding it again gives the same frame. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "hl7/mllp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A connection's view of the stream: pending bytes plus a log of what the decoder said. */
typedef struct feeder {
    hl7_mllp_decoder d;
    px_buf pending;
    px_buf log;
    uint64_t base;
    int stopped;
} feeder;

static void check_frame(const feeder *f, px_str frame)
{
    CHECK(frame.len > 0 && frame.len <= f->d.max);
    CHECK(memchr(frame.ptr, HL7_MLLP_SB, frame.len) == NULL);
    CHECK(memchr(frame.ptr, HL7_MLLP_EB, frame.len) == NULL);

    px_buf enc;
    px_buf_init(&enc, frame.len + 3);
    CHECK(hl7_mllp_encode(frame, &enc, NULL) == PX_OK);
    hl7_mllp_decoder d2;
    hl7_mllp_decoder_init(&d2, f->d.max);
    px_str again;
    size_t used;
    CHECK(hl7_mllp_decode(&d2, enc.data, enc.len, &again, &used, NULL) == PX_OK);
    CHECK(used == enc.len && px_str_eq(again, frame));
    px_buf_free(&enc);
}

static void pump(feeder *f)
{
    /* Each PX_OK or fault consumes at least one byte, so this ends within len + 1 calls. */
    size_t calls = 0, most = f->pending.len + 1;
    while (!f->stopped) {
        CHECK(calls++ <= most);
        px_str frame;
        size_t used = 0;
        px_error err;
        px_err rc = hl7_mllp_decode(&f->d, f->pending.data, f->pending.len, &frame, &used, &err);
        CHECK(used <= f->pending.len);
        if (rc == PX_OK) {
            CHECK(used >= frame.len + 3);
            CHECK(frame.ptr >= f->pending.data + 1);
            CHECK(frame.ptr + frame.len + 2 <= f->pending.data + used);
            check_frame(f, frame);
            CHECK(px_buf_appendf(&f->log, "F%zu@%llu;", frame.len,
                                 (unsigned long long)(f->base + used)) == PX_OK);
        } else if (rc == PX_ERR_AGAIN) {
            /* Bytes outside a frame are consumed at once; an open frame keeps its SB. */
            if (f->d.in_frame)
                CHECK(used < f->pending.len && f->pending.data[used] == (char)HL7_MLLP_SB);
            else
                CHECK(used == f->pending.len);
        } else {
            CHECK(rc == PX_ERR_PARSE || rc == PX_ERR_TOO_LARGE);
            CHECK(used > 0);
            CHECK(err.code == rc);
            CHECK(err.detail >= HL7_MLLP_SB_IN_FRAME && err.detail <= HL7_MLLP_EB_WITHOUT_CR);
            CHECK((rc == PX_ERR_TOO_LARGE) == (err.detail == HL7_MLLP_OVERSIZE));
            CHECK(px_buf_appendf(&f->log, "E%d@%llu;", err.detail,
                                 (unsigned long long)(f->base + used)) == PX_OK);
            if (rc == PX_ERR_TOO_LARGE)
                f->stopped = 1;
        }
        px_buf_consume(&f->pending, used);
        f->base += used;
        if (rc == PX_ERR_AGAIN)
            break;
    }
}

static void feeder_init(feeder *f, size_t max, size_t cap)
{
    hl7_mllp_decoder_init(&f->d, max);
    px_buf_init(&f->pending, cap);
    px_buf_init(&f->log, 64u * cap + 64u);
    f->base = 0;
    f->stopped = 0;
}

static void feeder_push(feeder *f, const char *p, size_t n)
{
    if (f->stopped)
        return;
    CHECK(px_buf_append(&f->pending, p, n) == PX_OK);
    pump(f);
}

static void feeder_free(feeder *f)
{
    px_buf_free(&f->pending);
    px_buf_free(&f->log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = data[0] < 0x80 ? 0 : (size_t)(data[0] & 0x7f) + 1;
    size_t nsizes = data[1] & 7u;
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const char *stream = (const char *)data + 2 + nsizes;
    size_t len = size - 2 - nsizes;

    feeder whole;
    feeder_init(&whole, max, len + 1);
    if (len > 0)
        feeder_push(&whole, stream, len);

    feeder parts;
    feeder_init(&parts, max, len + 1);
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t n = nsizes > 0 ? (size_t)sizes[i % nsizes] + 1 : 1;
        if (n > len - off)
            n = len - off;
        feeder_push(&parts, stream + off, n);
        off += n;
    }

    CHECK(whole.log.len == parts.log.len);
    CHECK(whole.log.len == 0 || memcmp(whole.log.data, parts.log.data, whole.log.len) == 0);
    CHECK(whole.d.frames == parts.d.frames);
    CHECK(whole.d.skipped == parts.d.skipped);
    CHECK(whole.stopped == parts.stopped);
    if (!whole.stopped) {
        CHECK(whole.pending.len == parts.pending.len);
        CHECK(whole.base + whole.pending.len == len);
        px_error err;
        px_err rc = hl7_mllp_finish(&whole.d, whole.pending.len, &err);
        CHECK((rc == PX_OK) == (whole.pending.len == 0));
        if (rc != PX_OK)
            CHECK(rc == PX_ERR_PARSE && err.detail == HL7_MLLP_TRUNCATED);
        /* Whatever is pending is an unfinished frame: it starts with a start block. */
        if (whole.pending.len > 0)
            CHECK((unsigned char)whole.pending.data[0] == HL7_MLLP_SB && whole.d.in_frame);
    }
    feeder_free(&whole);
    feeder_free(&parts);
    return 0;
}
