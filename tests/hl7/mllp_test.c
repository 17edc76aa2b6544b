/* MLLP framing: the incremental decoder, its faults and the encoder. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/mllp.h"
#include "hl7/tcases.h"

#define SB "\x0b"
#define EB "\x1c"
#define CR "\r"

static const char msg_a[] = "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01|A1|P|2.5\r"
                            "OBX|1|NM|GLU||5.5|mmol/L\r";
static const char msg_b[] = "MSH|^~\\&|ADT|HOSP|EHR|HOSP|20240101120001||ADT^A01|B2|P|2.5\r";

/* A TLS 1.3 ClientHello record as a browser or `openssl s_client` opens with, sent by mistake
 * to a plaintext MLLP port. It holds 0x0B bytes (a random byte and the ec_point_formats
 * extension type), which a framer reads as start blocks. */
static const unsigned char client_hello[] = {
    0x16, 0x03, 0x01, 0x00, 0xc2, 0x01, 0x00, 0x00, 0xbe, 0x03, 0x03, 0x0b, 0x30, 0x55, 0x7a, 0x9f,
    0xc4, 0xe9, 0x0e, 0x33, 0x58, 0x7d, 0xa2, 0xc7, 0xec, 0x11, 0x36, 0x5b, 0x80, 0xa5, 0xca, 0xef,
    0x14, 0x39, 0x5e, 0x83, 0xa8, 0xcd, 0xf2, 0x17, 0x3c, 0x61, 0x86, 0x20, 0x07, 0x3c, 0x71, 0xa6,
    0xdb, 0x10, 0x45, 0x7a, 0xaf, 0xe4, 0x19, 0x4e, 0x83, 0xb8, 0xed, 0x22, 0x57, 0x8c, 0xc1, 0xf6,
    0x2b, 0x60, 0x95, 0xca, 0xff, 0x34, 0x69, 0x9e, 0xd3, 0x08, 0x3d, 0x72, 0x00, 0x0a, 0x13, 0x01,
    0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0x01, 0x00, 0x00, 0x6b, 0x00, 0x00, 0x00, 0x14,
    0x00, 0x12, 0x00, 0x00, 0x0f, 0x65, 0x68, 0x72, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,
    0x2e, 0x6f, 0x72, 0x67, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, 0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04,
    0x04, 0x01, 0x02, 0x01, 0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03, 0x00, 0x33, 0x00,
    0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
    0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};

/* What a decoder said while being fed a stream, as text, so that two ways of feeding the
 * same stream can be compared byte for byte. Positions are absolute stream offsets. */
typedef struct feeder {
    hl7_mllp_decoder d;
    px_buf pending; /* bytes received and not yet consumed, as a connection keeps them */
    px_buf log;
    uint64_t base; /* stream offset of pending.data[0] */
    int stopped;   /* after PX_ERR_TOO_LARGE a caller closes the connection */
} feeder;

static void feeder_init(feeder *f, size_t max)
{
    hl7_mllp_decoder_init(&f->d, max);
    px_buf_init(&f->pending, 64u * 1024u * 1024u);
    px_buf_init(&f->log, 64u * 1024u * 1024u);
    f->base = 0;
    f->stopped = 0;
}

static void feeder_free(feeder *f)
{
    px_buf_free(&f->pending);
    px_buf_free(&f->log);
}

/* Hands the decoder everything pending until it asks for more. */
static void feeder_pump(feeder *f)
{
    for (int guard = 0; !f->stopped; guard++) {
        ck_assert_int_lt(guard, 1000000);
        px_str frame;
        size_t used = 0;
        px_error err;
        px_error_clear(&err);
        px_err rc = hl7_mllp_decode(&f->d, f->pending.data, f->pending.len, &frame, &used, &err);
        ck_assert_uint_le(used, f->pending.len);
        if (rc == PX_OK) {
            ck_assert(frame.ptr > f->pending.data);
            ck_assert(frame.ptr + frame.len < f->pending.data + used);
            ck_assert_uint_gt(used, 0);
            ck_assert_int_eq(px_buf_appendf(&f->log, "F%zu@%llu:", frame.len,
                                            (unsigned long long)(f->base + used)),
                             PX_OK);
            ck_assert_int_eq(px_buf_append_str(&f->log, frame), PX_OK);
            ck_assert_int_eq(px_buf_append_byte(&f->log, ';'), PX_OK);
        } else if (rc != PX_ERR_AGAIN) {
            ck_assert_int_eq(err.code, rc);
            ck_assert_int_ne(err.detail, HL7_MLLP_OK);
            ck_assert_int_eq(px_buf_appendf(&f->log, "E%d.%d@%llu;", (int)rc, err.detail,
                                            (unsigned long long)(f->base + used)),
                             PX_OK);
            if (rc == PX_ERR_TOO_LARGE)
                f->stopped = 1;
        }
        px_buf_consume(&f->pending, used);
        f->base += used;
        if (rc == PX_ERR_AGAIN)
            return;
    }
}

static void feeder_push(feeder *f, const char *p, size_t n)
{
    if (f->stopped)
        return;
    ck_assert_int_eq(px_buf_append(&f->pending, p, n), PX_OK);
    feeder_pump(f);
}

/* One decode call over a whole buffer. */
static px_err decode1(hl7_mllp_decoder *d, const char *in, size_t len, px_str *frame, size_t *used,
                      px_error *err)
{
    px_error_clear(err);
    return hl7_mllp_decode(d, in, len, frame, used, err);
}

#define DECODE(d, lit, frame, used, err) decode1(d, lit, sizeof(lit) - 1, frame, used, err)

START_TEST(decoder_returns_a_whole_frame_in_one_chunk)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    ck_assert_uint_eq(d.max, HL7_MLLP_DEFAULT_MAX);
    const char in[] = SB "MSH|^~\\&|A\r" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_OK);
    ck_assert_ptr_eq(frame.ptr, in + 1);
    ck_assert_uint_eq(frame.len, sizeof(in) - 4);
    ck_assert_mem_eq(frame.ptr, "MSH|^~\\&|A\r", frame.len);
    ck_assert_uint_eq(used, sizeof(in) - 1);
    ck_assert_uint_eq(d.frames, 1);
    ck_assert_uint_eq(d.skipped, 0);
    ck_assert_int_eq(d.in_frame, 0);
    ck_assert_int_eq(hl7_mllp_finish(&d, 0, &err), PX_OK);
}
END_TEST

START_TEST(decoder_keeps_the_configured_maximum)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 100);
    ck_assert_uint_eq(d.max, 100);
    ck_assert_uint_eq(d.frames, 0);
    ck_assert_uint_eq(d.skipped, 0);
}
END_TEST

START_TEST(decoder_asks_for_more_until_the_end_block_and_cr_arrive)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = SB "abc" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    for (size_t n = 0; n < sizeof(in) - 1; n++) {
        ck_assert_int_eq(decode1(&d, in, n, &frame, &used, &err), PX_ERR_AGAIN);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(frame.len, 0);
        ck_assert_int_eq(d.in_frame, n > 0);
    }
    /* With the end block last, the decoder has not looked past it and waits for the CR. */
    ck_assert_uint_eq(d.scanned, 3);
    ck_assert_int_eq(decode1(&d, in, sizeof(in) - 1, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, 3);
    ck_assert_mem_eq(frame.ptr, "abc", 3);
    ck_assert_uint_eq(used, sizeof(in) - 1);
}
END_TEST

START_TEST(decoder_skips_and_counts_bytes_before_the_start_block)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = "\r\nxyz" SB "abc" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_OK);
    ck_assert_mem_eq(frame.ptr, "abc", 3);
    ck_assert_uint_eq(used, sizeof(in) - 1);
    ck_assert_uint_eq(d.skipped, 5);

    /* Garbage alone is consumed at once and the count grows across calls. */
    const char junk[] = "no frame here";
    ck_assert_int_eq(DECODE(&d, junk, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(used, sizeof(junk) - 1);
    ck_assert_uint_eq(d.skipped, 5 + sizeof(junk) - 1);
    ck_assert_int_eq(d.in_frame, 0);

    /* Garbage then the start of a frame: only the garbage is consumed. */
    const char part[] = "--" SB "ab";
    ck_assert_int_eq(DECODE(&d, part, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(d.in_frame, 1);
    ck_assert_uint_eq(d.skipped, 5 + sizeof(junk) - 1 + 2);
    ck_assert_uint_eq(d.frames, 1);
}
END_TEST

START_TEST(decoder_reports_a_start_block_inside_a_frame_and_resumes_at_it)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    /* A sender that gave up half-way through a frame and sent it again. */
    const char in[] = SB "MSH|^~\\&|half" SB "abc" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.code, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_SB_IN_FRAME);
    ck_assert_uint_eq(used, 1 + strlen("MSH|^~\\&|half"));
    ck_assert_uint_eq(frame.len, 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "start block inside a frame"));
    ck_assert_ptr_null(strstr(err.msg, "MSH"));
    ck_assert_int_eq(decode1(&d, in + used, sizeof(in) - 1 - used, &frame, &used, &err), PX_OK);
    ck_assert_mem_eq(frame.ptr, "abc", 3);
    ck_assert_uint_eq(d.frames, 1);
}
END_TEST

START_TEST(decoder_reports_a_double_start_block_and_then_decodes_the_frame)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = SB SB "abc" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_SB_IN_FRAME);
    ck_assert_uint_eq(used, 1);
    ck_assert_int_eq(decode1(&d, in + 1, sizeof(in) - 2, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, 3);
    ck_assert_uint_eq(used, sizeof(in) - 2);
}
END_TEST

START_TEST(decoder_finds_a_start_block_that_arrives_in_a_later_chunk)
{
    feeder f;
    feeder_init(&f, 0);
    feeder_push(&f, SB "abcdef", 7);
    ck_assert_uint_eq(f.d.scanned, 6);
    feeder_push(&f, "gh" SB "x" EB CR, 6);
    ck_assert_str_eq(f.log.data, "E5.1@9;F1@13:x;");
    ck_assert_uint_eq(f.pending.len, 0);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_reports_an_empty_frame)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = "z" SB EB CR SB "abc" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_EMPTY_FRAME);
    ck_assert_uint_eq(used, 4);
    ck_assert_uint_eq(d.skipped, 1);
    ck_assert_uint_eq(d.frames, 0);
    ck_assert_int_eq(decode1(&d, in + 4, sizeof(in) - 5, &frame, &used, &err), PX_OK);
    ck_assert_mem_eq(frame.ptr, "abc", 3);
}
END_TEST

START_TEST(decoder_reports_an_end_block_without_cr_and_resumes_after_it)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = SB "abc" EB "\n" SB "def" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_EB_WITHOUT_CR);
    ck_assert_uint_eq(used, 5);
    ck_assert_uint_eq(frame.len, 0);
    ck_assert_int_eq(d.in_frame, 0);
    /* The stray LF is skipped as bytes outside a frame, then the next frame decodes. */
    ck_assert_int_eq(decode1(&d, in + 5, sizeof(in) - 6, &frame, &used, &err), PX_OK);
    ck_assert_mem_eq(frame.ptr, "def", 3);
    ck_assert_uint_eq(d.skipped, 1);
    ck_assert_uint_eq(d.frames, 1);
}
END_TEST

START_TEST(decoder_reports_an_embedded_end_block_inside_a_frame)
{
    feeder f;
    feeder_init(&f, 0);
    const char in[] = SB "OBX|1|ED|PDF||a" EB "b" EB CR;
    feeder_push(&f, in, sizeof(in) - 1);
    /* The fault, then "b" EB CR is read as bytes outside any frame. */
    ck_assert_str_eq(f.log.data, "E5.5@17;");
    ck_assert_uint_eq(f.d.skipped, 3);
    ck_assert_uint_eq(f.d.frames, 0);
    ck_assert_uint_eq(f.pending.len, 0);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_reports_an_embedded_start_block_inside_a_frame)
{
    feeder f;
    feeder_init(&f, 0);
    const char in[] = SB "OBX|1|ST|X||a" SB "b|" EB CR;
    feeder_push(&f, in, sizeof(in) - 1);
    /* Recovery starts at the embedded byte, so its tail becomes a frame of its own:
     * the caller sees the fault first and decides (the proxy refuses the connection's
     * bad frame and goes on). */
    ck_assert_str_eq(f.log.data, "E5.1@14;F2@19:b|;");
    ck_assert_uint_eq(f.d.frames, 1);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_treats_an_end_block_and_cr_inside_a_message_as_the_frame_end)
{
    feeder f;
    feeder_init(&f, 0);
    const char in[] = SB "abc" EB CR "def" EB CR SB "g" EB CR;
    feeder_push(&f, in, sizeof(in) - 1);
    ck_assert_str_eq(f.log.data, "F3@6:abc;F1@15:g;");
    ck_assert_uint_eq(f.d.skipped, 5);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_accepts_a_message_of_exactly_the_maximum)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 16);
    const char in[] = SB "0123456789abcdef" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, 16);
    /* Byte by byte as well: the end block right after max bytes is still in time. */
    feeder f;
    feeder_init(&f, 16);
    for (size_t i = 0; i < sizeof(in) - 1; i++)
        feeder_push(&f, in + i, 1);
    ck_assert_str_eq(f.log.data, "F16@19:0123456789abcdef;");
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_refuses_a_terminated_frame_over_the_maximum)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 16);
    const char in[] = SB "0123456789abcdefg" EB CR;
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
    ck_assert_int_eq(err.detail, HL7_MLLP_OVERSIZE);
    ck_assert_uint_eq(frame.len, 0);
    ck_assert_uint_eq(used, 18);
    ck_assert_uint_eq(d.frames, 0);
}
END_TEST

START_TEST(decoder_refuses_an_unterminated_frame_as_soon_as_it_passes_the_maximum)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 16);
    char in[64];
    in[0] = HL7_MLLP_SB;
    memset(in + 1, 'x', sizeof(in) - 1);
    px_str frame;
    size_t used;
    px_error err;
    /* SB plus 16 bytes may still end well; the 17th message byte cannot. */
    for (size_t n = 1; n <= 17; n++) {
        ck_assert_int_eq(decode1(&d, in, n, &frame, &used, &err), PX_ERR_AGAIN);
        ck_assert_uint_eq(d.scanned, n - 1);
    }
    ck_assert_int_eq(decode1(&d, in, 18, &frame, &used, &err), PX_ERR_TOO_LARGE);
    ck_assert_int_eq(err.detail, HL7_MLLP_OVERSIZE);
    /* One big chunk: refused without reading past max + 1 bytes. */
    hl7_mllp_decoder_init(&d, 16);
    ck_assert_int_eq(decode1(&d, in, sizeof(in), &frame, &used, &err), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(used, 18);
}
END_TEST

START_TEST(finish_reports_a_frame_cut_short_by_the_peer)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = "zz" SB "MSH|^~\\&|cut";
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(used, 2);
    size_t pending = sizeof(in) - 1 - used;
    px_error_clear(&err);
    ck_assert_int_eq(hl7_mllp_finish(&d, pending, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.code, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_TRUNCATED);
    ck_assert_ptr_nonnull(strstr(err.msg, "13 bytes"));
    ck_assert_ptr_null(strstr(err.msg, "MSH"));
    /* A lone start block is a frame begun too. */
    hl7_mllp_decoder_init(&d, 0);
    ck_assert_int_eq(decode1(&d, SB, 1, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_int_eq(hl7_mllp_finish(&d, 1 - used, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_TRUNCATED);
}
END_TEST

START_TEST(finish_accepts_a_close_between_frames)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    const char in[] = SB "a" EB CR "trailing noise";
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_OK);
    size_t left = sizeof(in) - 1 - used;
    ck_assert_int_eq(decode1(&d, in + used, left, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(used, left);
    px_error_clear(&err);
    ck_assert_int_eq(hl7_mllp_finish(&d, left - used, &err), PX_OK);
    ck_assert_int_eq(err.code, PX_OK);
}
END_TEST

START_TEST(decoder_passes_an_mllp_v2_commit_block_through_as_a_frame)
{
    feeder f;
    feeder_init(&f, 0);
    /* MLLP Release 2 commit acknowledgement (ACK byte) and negative one (NAK byte). */
    const char in[] = SB "\x06" EB CR SB "\x15" EB CR SB "abc" EB CR;
    feeder_push(&f, in, sizeof(in) - 1);
    ck_assert_str_eq(f.log.data, "F1@4:\x06;F1@8:\x15;F3@14:abc;");
    ck_assert_uint_eq(f.d.frames, 3);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_skips_an_http_request_before_a_frame)
{
    feeder f;
    feeder_init(&f, 0);
    const char http[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    feeder_push(&f, http, sizeof(http) - 1);
    ck_assert_uint_eq(f.pending.len, 0);
    ck_assert_uint_eq(f.d.skipped, sizeof(http) - 1);
    feeder_push(&f, SB, 1);
    feeder_push(&f, msg_b, sizeof(msg_b) - 1);
    feeder_push(&f, EB CR, 2);
    ck_assert_uint_eq(f.d.frames, 1);
    ck_assert_uint_eq(f.d.skipped, sizeof(http) - 1);
    px_buf want;
    px_buf_init(&want, 1u << 20);
    ck_assert_int_eq(px_buf_appendf(&want, "F%zu@%zu:%s;", strlen(msg_b),
                                    sizeof(http) - 1 + strlen(msg_b) + 3, msg_b),
                     PX_OK);
    ck_assert_str_eq(f.log.data, want.data);
    px_buf_free(&want);
    feeder_free(&f);
}
END_TEST

START_TEST(decoder_recovers_from_a_tls_client_hello_before_a_frame)
{
    feeder f;
    feeder_init(&f, 0);
    size_t hello_sb = 0, first_sb = SIZE_MAX;
    for (size_t i = 0; i < sizeof(client_hello); i++) {
        if (client_hello[i] == HL7_MLLP_SB) {
            hello_sb++;
            if (first_sb == SIZE_MAX)
                first_sb = i;
        }
    }
    ck_assert_uint_gt(hello_sb, 0);
    feeder_push(&f, (const char *)client_hello, sizeof(client_hello));
    ck_assert_int_eq(f.d.in_frame, 1);
    ck_assert_uint_eq(f.d.frames, 0);
    feeder_push(&f, SB, 1);
    feeder_push(&f, msg_a, sizeof(msg_a) - 1);
    feeder_push(&f, EB CR, 2);
    /* Every 0x0B in the hello opened a would-be frame that the next start block cut off,
     * and the real frame after it came out whole. */
    px_buf want;
    px_buf_init(&want, 1u << 20);
    size_t at = first_sb;
    for (size_t i = first_sb + 1; i <= sizeof(client_hello); i++) {
        if (i == sizeof(client_hello) || client_hello[i] == HL7_MLLP_SB) {
            ck_assert_int_eq(px_buf_appendf(&want, "E5.1@%zu;", i), PX_OK);
            at = i;
        }
    }
    ck_assert_uint_eq(at, sizeof(client_hello));
    ck_assert_int_eq(px_buf_appendf(&want, "F%zu@%zu:%s;", sizeof(msg_a) - 1,
                                    sizeof(client_hello) + sizeof(msg_a) + 2, msg_a),
                     PX_OK);
    ck_assert_str_eq(f.log.data, want.data);
    ck_assert_uint_eq(f.d.skipped, first_sb);
    ck_assert_uint_eq(f.d.frames, 1);
    px_buf_free(&want);
    feeder_free(&f);
}
END_TEST

/* A stream with every kind of event in it. */
static void build_mixed_stream(px_buf *s)
{
    ck_assert_int_eq(px_buf_append_cstr(s, "noise"), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, SB), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, msg_a), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, EB CR SB EB CR SB "x" SB), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, msg_b), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, EB CR "\n" SB "ab" EB "c" SB "\x06" EB CR), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(s, SB "tail"), PX_OK);
}

START_TEST(decoder_gives_the_same_results_for_a_stream_split_at_every_offset)
{
    px_buf s;
    px_buf_init(&s, 1u << 20);
    build_mixed_stream(&s);

    feeder whole;
    feeder_init(&whole, 0);
    feeder_push(&whole, s.data, s.len);
    /* noise | SB msg_a EB CR | SB EB CR | SB x | SB msg_b EB CR | LF SB ab EB c | SB 06 EB CR |
     * SB tail */
    px_buf want;
    px_buf_init(&want, 1u << 20);
    size_t a_end = 5 + 1 + strlen(msg_a) + 2, b_end = a_end + 3 + 2 + 1 + strlen(msg_b) + 2;
    ck_assert_int_eq(px_buf_appendf(&want, "F%zu@%zu:%s;E5.2@%zu;E5.1@%zu;F%zu@%zu:%s;",
                                    strlen(msg_a), a_end, msg_a, a_end + 3, a_end + 5,
                                    strlen(msg_b), b_end, msg_b),
                     PX_OK);
    ck_assert_int_eq(px_buf_appendf(&want, "E5.5@%zu;F1@%zu:\x06;", b_end + 5, b_end + 10), PX_OK);
    ck_assert_str_eq(whole.log.data, want.data);
    px_buf_free(&want);
    ck_assert_uint_eq(whole.pending.len, 5);

    for (size_t cut = 0; cut <= s.len; cut++) {
        feeder f;
        feeder_init(&f, 0);
        feeder_push(&f, s.data, cut);
        feeder_push(&f, s.data + cut, s.len - cut);
        ck_assert_str_eq(f.log.data, whole.log.data);
        ck_assert_uint_eq(f.d.skipped, whole.d.skipped);
        ck_assert_uint_eq(f.d.frames, whole.d.frames);
        ck_assert_uint_eq(f.pending.len, whole.pending.len);
        feeder_free(&f);
    }
    /* Three pieces, every pair of cuts. */
    for (size_t a = 0; a <= s.len; a++) {
        for (size_t b = a; b <= s.len; b += 7) {
            feeder f;
            feeder_init(&f, 0);
            feeder_push(&f, s.data, a);
            feeder_push(&f, s.data + a, b - a);
            feeder_push(&f, s.data + b, s.len - b);
            ck_assert_str_eq(f.log.data, whole.log.data);
            ck_assert_uint_eq(f.d.skipped, whole.d.skipped);
            feeder_free(&f);
        }
    }
    /* And one byte at a time. */
    feeder f;
    feeder_init(&f, 0);
    for (size_t i = 0; i < s.len; i++)
        feeder_push(&f, s.data + i, 1);
    ck_assert_str_eq(f.log.data, whole.log.data);
    ck_assert_uint_eq(f.d.skipped, whole.d.skipped);
    px_error err;
    ck_assert_int_eq(hl7_mllp_finish(&f.d, f.pending.len, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, HL7_MLLP_TRUNCATED);
    feeder_free(&f);
    feeder_free(&whole);
    px_buf_free(&s);
}
END_TEST

START_TEST(decoder_returns_a_thousand_frames_from_one_chunk)
{
    px_buf s;
    px_buf_init(&s, 1u << 22);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(px_buf_appendf(&s,
                                        SB "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01|C%04d|"
                                           "P|2.5\rOBX|%d|NM|GLU||%d\r" EB CR,
                                        i, i, i),
                         PX_OK);
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    size_t off = 0;
    for (int i = 0; i < 1000; i++) {
        px_str frame;
        size_t used;
        px_error err;
        ck_assert_int_eq(decode1(&d, s.data + off, s.len - off, &frame, &used, &err), PX_OK);
        char want[128];
        int n = snprintf(want, sizeof(want),
                         "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101||ORU^R01|C%04d|P|2.5\r"
                         "OBX|%d|NM|GLU||%d\r",
                         i, i, i);
        ck_assert_int_gt(n, 0);
        ck_assert_uint_eq(frame.len, (size_t)n);
        ck_assert_mem_eq(frame.ptr, want, frame.len);
        ck_assert_ptr_eq(frame.ptr, s.data + off + 1);
        off += used;
    }
    ck_assert_uint_eq(off, s.len);
    ck_assert_uint_eq(d.frames, 1000);
    ck_assert_uint_eq(d.skipped, 0);
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(decode1(&d, s.data + off, 0, &frame, &used, &err), PX_ERR_AGAIN);
    px_buf_free(&s);
}
END_TEST

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(decoder_fed_a_large_frame_byte_by_byte_never_rescans)
{
    /* 4 MiB one byte at a time: linear work is a few million short memchr calls; a decoder
     * that rescanned from the start each time would touch ~8e12 bytes and never finish. */
    const size_t body = 4u * 1024u * 1024u;
    char *in = px_malloc(body + 3);
    ck_assert_ptr_nonnull(in);
    in[0] = HL7_MLLP_SB;
    for (size_t i = 0; i < body; i++)
        in[1 + i] = (char)('A' + (char)(i % 26));
    in[body + 1] = HL7_MLLP_EB;
    in[body + 2] = HL7_MLLP_CR;

    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    double t0 = now_seconds();
    px_str frame;
    size_t used;
    px_error err;
    for (size_t n = 1; n < body + 3; n++) {
        px_err rc = decode1(&d, in, n, &frame, &used, &err);
        if (rc != PX_ERR_AGAIN || used != 0)
            ck_abort_msg("byte %zu: rc %d used %zu", n, (int)rc, used);
        /* Every byte after SB has been searched exactly once. */
        if (d.scanned != n - 1 - (n == body + 2))
            ck_abort_msg("byte %zu: scanned %zu", n, d.scanned);
        if ((n & 0xffff) == 0 && now_seconds() - t0 > 20.0)
            ck_abort_msg("byte-at-a-time decoding is too slow: %zu bytes in 20 s", n);
    }
    ck_assert_int_eq(decode1(&d, in, body + 3, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, body);
    double elapsed = now_seconds() - t0;
    ck_assert_msg(elapsed < 20.0, "byte-at-a-time decoding took %.1f s", elapsed);
    px_free(in);
}
END_TEST

START_TEST(decoder_forgets_a_scan_position_when_the_caller_drops_the_start_block)
{
    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    px_str frame;
    size_t used;
    px_error err;
    ck_assert_int_eq(decode1(&d, SB "abcdef", 7, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(d.scanned, 6);
    /* A caller that lost its buffer starts again: the old position must not be trusted. */
    const char in[] = SB "a" EB CR;
    ck_assert_int_eq(decode1(&d, in + 1, sizeof(in) - 2, &frame, &used, &err), PX_ERR_AGAIN);
    ck_assert_int_eq(d.in_frame, 0);
    ck_assert_int_eq(DECODE(&d, in, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, 1);
}
END_TEST

START_TEST(fault_texts_are_distinct_and_named)
{
    const hl7_mllp_fault all[] = {HL7_MLLP_OK,       HL7_MLLP_SB_IN_FRAME, HL7_MLLP_EMPTY_FRAME,
                                  HL7_MLLP_OVERSIZE, HL7_MLLP_TRUNCATED,   HL7_MLLP_EB_WITHOUT_CR};
    const size_t n = sizeof(all) / sizeof(all[0]);
    for (size_t i = 0; i < n; i++) {
        const char *t = hl7_mllp_fault_text(all[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_gt(strlen(t), 4);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(t, hl7_mllp_fault_text(all[j]));
    }
    ck_assert_str_eq(hl7_mllp_fault_text(HL7_MLLP_SB_IN_FRAME), "start block inside a frame");
    ck_assert_ptr_nonnull(hl7_mllp_fault_text((hl7_mllp_fault)99));
}
END_TEST

START_TEST(encoder_frames_a_message_that_the_decoder_reads_back)
{
    px_buf out;
    px_buf_init(&out, 1024);
    px_error err;
    ck_assert_int_eq(px_buf_append_cstr(&out, "prev"), PX_OK);
    ck_assert_int_eq(hl7_mllp_encode(px_str_from_cstr(msg_b), &out, &err), PX_OK);
    ck_assert_uint_eq(out.len, 4 + sizeof(msg_b) - 1 + 3);
    ck_assert_int_eq(out.data[4], HL7_MLLP_SB);
    ck_assert_mem_eq(out.data + 5, msg_b, sizeof(msg_b) - 1);
    ck_assert_int_eq(out.data[out.len - 2], HL7_MLLP_EB);
    ck_assert_int_eq(out.data[out.len - 1], HL7_MLLP_CR);

    hl7_mllp_decoder d;
    hl7_mllp_decoder_init(&d, 0);
    px_str frame;
    size_t used;
    ck_assert_int_eq(decode1(&d, out.data, out.len, &frame, &used, &err), PX_OK);
    ck_assert_uint_eq(frame.len, sizeof(msg_b) - 1);
    ck_assert_mem_eq(frame.ptr, msg_b, frame.len);
    ck_assert_uint_eq(d.skipped, 4);
    px_buf_free(&out);
}
END_TEST

START_TEST(encoder_leaves_the_buffer_unchanged_when_the_frame_does_not_fit)
{
    px_buf out;
    px_buf_init(&out, 10);
    px_error err;
    ck_assert_int_eq(px_buf_append_cstr(&out, "ab"), PX_OK);
    px_error_clear(&err);
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("123456"), &out, &err), PX_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 2);
    ck_assert_str_eq(out.data, "ab");
    /* Exactly the room left fits. */
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("12345"), &out, &err), PX_OK);
    ck_assert_uint_eq(out.len, 10);
    px_buf_free(&out);
}
END_TEST

START_TEST(encoder_reports_allocation_failure_and_leaves_the_buffer_unchanged)
{
    px_buf out;
    px_buf_init(&out, 1u << 20);
    px_error err;
    px_alloc_fail_after(0);
    px_error_clear(&err);
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("abc"), &out, &err), PX_ERR_NOMEM);
    px_alloc_fail_after(-1);
    ck_assert_int_eq(err.code, PX_ERR_NOMEM);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_ptr_null(out.data);
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("abc"), &out, &err), PX_OK);
    ck_assert_uint_eq(out.len, 6);
    px_buf_free(&out);
}
END_TEST

START_TEST(encoder_refuses_a_message_holding_a_block_byte)
{
    px_buf out;
    px_buf_init(&out, 1024);
    px_error err;
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("a" EB CR "MSH|x"), &out, &err), PX_ERR_INVAL);
    ck_assert_int_eq(err.code, PX_ERR_INVAL);
    ck_assert_int_eq(hl7_mllp_encode(PX_LIT("a" SB "b"), &out, &err), PX_ERR_INVAL);
    ck_assert_uint_eq(out.len, 0);
    /* The empty message frames (the decoder then reports it as an empty frame). */
    ck_assert_int_eq(hl7_mllp_encode(PX_STR_NULL, &out, &err), PX_OK);
    ck_assert_uint_eq(out.len, 3);
    px_buf_free(&out);
}
END_TEST

TCase *hl7_tcase_mllp(void)
{
    TCase *tc = tcase_create("mllp_framing");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, decoder_returns_a_whole_frame_in_one_chunk);
    tcase_add_test(tc, decoder_keeps_the_configured_maximum);
    tcase_add_test(tc, decoder_asks_for_more_until_the_end_block_and_cr_arrive);
    tcase_add_test(tc, decoder_skips_and_counts_bytes_before_the_start_block);
    tcase_add_test(tc, decoder_reports_a_start_block_inside_a_frame_and_resumes_at_it);
    tcase_add_test(tc, decoder_reports_a_double_start_block_and_then_decodes_the_frame);
    tcase_add_test(tc, decoder_finds_a_start_block_that_arrives_in_a_later_chunk);
    tcase_add_test(tc, decoder_reports_an_empty_frame);
    tcase_add_test(tc, decoder_reports_an_end_block_without_cr_and_resumes_after_it);
    tcase_add_test(tc, decoder_reports_an_embedded_end_block_inside_a_frame);
    tcase_add_test(tc, decoder_reports_an_embedded_start_block_inside_a_frame);
    tcase_add_test(tc, decoder_treats_an_end_block_and_cr_inside_a_message_as_the_frame_end);
    tcase_add_test(tc, decoder_accepts_a_message_of_exactly_the_maximum);
    tcase_add_test(tc, decoder_refuses_a_terminated_frame_over_the_maximum);
    tcase_add_test(tc, decoder_refuses_an_unterminated_frame_as_soon_as_it_passes_the_maximum);
    tcase_add_test(tc, finish_reports_a_frame_cut_short_by_the_peer);
    tcase_add_test(tc, finish_accepts_a_close_between_frames);
    tcase_add_test(tc, decoder_passes_an_mllp_v2_commit_block_through_as_a_frame);
    tcase_add_test(tc, decoder_skips_an_http_request_before_a_frame);
    tcase_add_test(tc, decoder_recovers_from_a_tls_client_hello_before_a_frame);
    tcase_add_test(tc, decoder_gives_the_same_results_for_a_stream_split_at_every_offset);
    tcase_add_test(tc, decoder_returns_a_thousand_frames_from_one_chunk);
    tcase_add_test(tc, decoder_fed_a_large_frame_byte_by_byte_never_rescans);
    tcase_add_test(tc, decoder_forgets_a_scan_position_when_the_caller_drops_the_start_block);
    tcase_add_test(tc, fault_texts_are_distinct_and_named);
    tcase_add_test(tc, encoder_frames_a_message_that_the_decoder_reads_back);
    tcase_add_test(tc, encoder_leaves_the_buffer_unchanged_when_the_frame_does_not_fit);
    tcase_add_test(tc, encoder_reports_allocation_failure_and_leaves_the_buffer_unchanged);
    tcase_add_test(tc, encoder_refuses_a_message_holding_a_block_byte);
    return tc;
}
