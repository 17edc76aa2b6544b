/* The escape codec: decoding with the message's own delimiters, FT formatting, strict and
 * lenient handling of bad escapes, encoding, buffer limits and the HAPI escape corpus. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/escape.h"
#include "hl7/tcases.h"
#include "support.h"

static const hl7_delims std_delims = {'|', '^', '~', '\\', '&', 0};
/* Every delimiter moved, the escape character included. */
static const hl7_delims odd_delims = {'#', '$', '*', '!', '@', 0};
static const hl7_delims v27_delims = {'|', '^', '~', '\\', '&', '#'};
static const hl7_delims no_escape_delims = {'|', '^', '~', 0, 0, 0};

/* Decodes a C string; returns the px_err and leaves the text in out (max 64 KiB). */
static px_err decode(const char *in, const hl7_delims *d, unsigned flags, px_buf *out,
                     px_error *err)
{
    px_buf_init(out, 65536);
    return hl7_unescape(px_str_from_cstr(in), d, flags, out, err);
}

static void assert_decodes(const char *in, const hl7_delims *d, unsigned flags,
                           const char *expected, size_t expected_len)
{
    px_buf out;
    px_error err;
    px_error_clear(&err);
    px_err rc = decode(in, d, flags, &out, &err);
    ck_assert_msg(rc == PX_OK, "decoding \"%s\": %s (%s)", in, px_err_name(rc), err.msg);
    ck_assert_uint_eq(out.len, expected_len);
    if (expected_len > 0)
        ck_assert_mem_eq(out.data, expected, expected_len);
    px_buf_free(&out);
}

#define ASSERT_DECODES(in, d, flags, lit) assert_decodes(in, d, flags, lit, sizeof(lit) - 1)

static void assert_strict_fails_at(const char *in, const hl7_delims *d, int offset)
{
    px_buf out;
    px_error err;
    px_error_clear(&err);
    px_err rc = decode(in, d, HL7_UNESCAPE_STRICT, &out, &err);
    ck_assert_msg(rc == PX_ERR_PARSE, "\"%s\" gave %s", in, px_err_name(rc));
    ck_assert_int_eq(err.code, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, offset);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(hl7_escape_check(px_str_from_cstr(in), d), offset);
    px_buf_free(&out);
}

static void assert_encodes(const char *in, size_t in_len, const hl7_delims *d, const char *expected)
{
    px_buf out;
    px_buf_init(&out, 65536);
    ck_assert_int_eq(hl7_escape(px_str_make(in, in_len), d, &out, NULL), PX_OK);
    ck_assert_str_eq(out.data == NULL ? "" : out.data, expected);
    px_buf_free(&out);
}

START_TEST(unescape_turns_separator_escapes_into_the_standard_delimiters)
{
    ASSERT_DECODES("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", &std_delims, 0, "a|b^c&d~e\\f");
    ASSERT_DECODES("\\F\\\\F\\", &std_delims, 0, "||");
    ASSERT_DECODES("plain text", &std_delims, 0, "plain text");
    ASSERT_DECODES("", &std_delims, 0, "");
}
END_TEST

START_TEST(unescape_uses_the_message_own_delimiters_and_escape_character)
{
    /* The escape character is '!': a backslash is an ordinary byte there. */
    ASSERT_DECODES("x!F!y!S!z!R!w!T!v!E!u\\F\\", &odd_delims, 0, "x#y$z*w@v!u\\F\\");
    assert_strict_fails_at("ok!Q!", &odd_delims, 2);
}
END_TEST

START_TEST(unescape_decodes_truncation_only_when_the_message_defines_one)
{
    ASSERT_DECODES("12\\P\\", &v27_delims, HL7_UNESCAPE_STRICT, "12#");
    /* Before v2.7 there is no truncation character: \P\ means nothing. */
    ASSERT_DECODES("12\\P\\", &std_delims, 0, "12\\P\\");
    assert_strict_fails_at("12\\P\\", &std_delims, 2);
    /* Nor \T\ without a sub-component separator. */
    const hl7_delims no_sub = {'|', '^', '~', '\\', 0, 0};
    assert_strict_fails_at("a\\T\\", &no_sub, 1);
}
END_TEST

START_TEST(unescape_decodes_hex_sequences_of_any_even_length)
{
    ASSERT_DECODES("\\X41\\", &std_delims, HL7_UNESCAPE_STRICT, "A");
    ASSERT_DECODES("\\X414243\\", &std_delims, HL7_UNESCAPE_STRICT, "ABC");
    ASSERT_DECODES("a\\X0D0A\\b", &std_delims, HL7_UNESCAPE_STRICT, "a\r\nb");
    ASSERT_DECODES("\\Xc3a4\\", &std_delims, HL7_UNESCAPE_STRICT, "\xc3\xa4");
    ASSERT_DECODES("\\XC3A4\\", &std_delims, HL7_UNESCAPE_STRICT, "\xc3\xa4");
    /* A NUL byte is data like any other. */
    ASSERT_DECODES("x\\X00\\y", &std_delims, HL7_UNESCAPE_STRICT, "x\0y");
}
END_TEST

START_TEST(unescape_refuses_hex_sequences_that_are_empty_odd_or_not_hex)
{
    assert_strict_fails_at("\\X\\", &std_delims, 0);
    assert_strict_fails_at("ab\\X414\\", &std_delims, 2);
    assert_strict_fails_at("ab\\X4G\\", &std_delims, 2);
    ASSERT_DECODES("ab\\X4G\\", &std_delims, 0, "ab\\X4G\\");
}
END_TEST

START_TEST(unescape_keeps_highlighting_and_formatting_commands_by_default)
{
    const char *ft = "\\H\\bold\\N\\ a\\.br\\b\\.sp\\\\.sp+2\\\\.sp 3\\\\.in+4\\\\.in-2\\"
                     "\\.ti-2\\\\.ti+1\\\\.sk+3\\\\.fi\\\\.nf\\\\.ce\\c";
    assert_decodes(ft, &std_delims, HL7_UNESCAPE_STRICT, ft, strlen(ft));
    ck_assert_int_eq(hl7_escape_check(px_str_from_cstr(ft), &std_delims), -1);
}
END_TEST

START_TEST(plain_text_renders_line_breaks_spaces_and_drops_the_rest)
{
    const unsigned pt = HL7_UNESCAPE_PLAIN_TEXT | HL7_UNESCAPE_STRICT;
    ASSERT_DECODES("a\\.br\\b", &std_delims, pt, "a\nb");
    /* .sp ends the current line and skips one (or n) lines. */
    ASSERT_DECODES("a\\.sp\\b", &std_delims, pt, "a\n\nb");
    ASSERT_DECODES("a\\.sp+2\\b", &std_delims, pt, "a\n\n\nb");
    ASSERT_DECODES("a\\.br\\\\.sp\\b", &std_delims, pt, "a\n\nb");
    ASSERT_DECODES("\\.sp\\x", &std_delims, pt, "\nx");
    /* .in and .ce begin a new line; .ti, .fi, .nf, \H\ and \N\ render as nothing. */
    ASSERT_DECODES("a\\.in+4\\b", &std_delims, pt, "a\nb");
    ASSERT_DECODES("\\.in+4\\b", &std_delims, pt, "b");
    ASSERT_DECODES("a\\.ce\\b", &std_delims, pt, "a\nb");
    ASSERT_DECODES("a\\.ti-2\\b\\.fi\\\\.nf\\c", &std_delims, pt, "abc");
    ASSERT_DECODES("\\H\\bold\\N\\ text", &std_delims, pt, "bold text");
    ASSERT_DECODES("a\\.sk+3\\b", &std_delims, pt, "a   b");
    /* Separator and hex escapes still decode. */
    ASSERT_DECODES("a\\F\\b\\X41\\", &std_delims, pt, "a|bA");
}
END_TEST

START_TEST(plain_text_caps_rendered_counts)
{
    px_buf out;
    ck_assert_int_eq(decode("\\.sp+999999\\", &std_delims, HL7_UNESCAPE_PLAIN_TEXT, &out, NULL),
                     PX_OK);
    ck_assert_uint_eq(out.len, 100);
    for (size_t i = 0; i < out.len; i++)
        ck_assert_int_eq(out.data[i], '\n');
    px_buf_free(&out);
    ck_assert_int_eq(decode("\\.sk+5000\\", &std_delims, HL7_UNESCAPE_PLAIN_TEXT, &out, NULL),
                     PX_OK);
    ck_assert_uint_eq(out.len, 100);
    px_buf_free(&out);
    /* A count too long to be a number is a malformed command. */
    assert_strict_fails_at("\\.sp+1234567890\\", &std_delims, 0);
}
END_TEST

START_TEST(unescape_refuses_malformed_formatting_commands)
{
    assert_strict_fails_at("\\.br2\\", &std_delims, 0);
    assert_strict_fails_at("\\.sp-1\\", &std_delims, 0);
    assert_strict_fails_at("\\.sp+\\", &std_delims, 0);
    assert_strict_fails_at("\\.in\\", &std_delims, 0);
    assert_strict_fails_at("\\.sk\\", &std_delims, 0);
    assert_strict_fails_at("\\.ti+x\\", &std_delims, 0);
    assert_strict_fails_at("\\.zz\\", &std_delims, 0);
    assert_strict_fails_at("\\.\\", &std_delims, 0);
}
END_TEST

START_TEST(charset_and_local_escapes_pass_through_in_every_mode)
{
    const char *seqs[] = {"\\Zlocal\\", "\\C2842\\", "\\M2442\\", "\\M244241\\", "\\Cab1F\\"};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        assert_decodes(seqs[i], &std_delims, HL7_UNESCAPE_STRICT, seqs[i], strlen(seqs[i]));
        assert_decodes(seqs[i], &std_delims, HL7_UNESCAPE_STRICT | HL7_UNESCAPE_PLAIN_TEXT, seqs[i],
                       strlen(seqs[i]));
    }
    assert_strict_fails_at("\\C28\\", &std_delims, 0);
    assert_strict_fails_at("\\C28420\\", &std_delims, 0);
    assert_strict_fails_at("\\M24424\\", &std_delims, 0);
    assert_strict_fails_at("\\M24G2\\", &std_delims, 0);
    assert_strict_fails_at("\\Z\\", &std_delims, 0);
}
END_TEST

START_TEST(strict_mode_reports_the_offset_of_an_unknown_escape)
{
    px_buf out;
    px_error err;
    px_buf_init(&out, 1024);
    ck_assert_int_eq(px_buf_append_cstr(&out, "kept"), PX_OK);
    px_err rc =
        hl7_unescape(PX_LIT("abc\\F\\\\Q\\def"), &std_delims, HL7_UNESCAPE_STRICT, &out, &err);
    ck_assert_int_eq(rc, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, 6);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown"));
    /* The caller's earlier content is untouched, nothing half-decoded is left. */
    ck_assert_uint_eq(out.len, 4);
    ck_assert_str_eq(out.data, "kept");
    px_buf_free(&out);
    assert_strict_fails_at("\\f\\", &std_delims, 0);
    assert_strict_fails_at("a\\\\b", &std_delims, 1);
}
END_TEST

START_TEST(strict_mode_reports_the_offset_of_an_unterminated_escape)
{
    px_buf out;
    px_error err;
    px_err rc = decode("ab\\F\\cd\\Xdef", &std_delims, HL7_UNESCAPE_STRICT, &out, &err);
    ck_assert_int_eq(rc, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, 7);
    ck_assert_ptr_nonnull(strstr(err.msg, "unterminated"));
    px_buf_free(&out);
    assert_strict_fails_at("\\", &std_delims, 0);
    assert_strict_fails_at("text\\F", &std_delims, 4);
}
END_TEST

START_TEST(lenient_mode_copies_a_bad_escape_verbatim_and_reads_on)
{
    /* The lone escape character is kept and decoding resumes right after it. */
    ASSERT_DECODES("a\\Q\\F\\b", &std_delims, 0, "a\\Q|b");
    ASSERT_DECODES("C:\\temp\\dir", &std_delims, 0, "C:\\temp\\dir");
    ASSERT_DECODES("x\\Fy", &std_delims, 0, "x\\Fy");
    ASSERT_DECODES("a\\\\b", &std_delims, 0, "a\\\\b");
    ASSERT_DECODES("end\\", &std_delims, 0, "end\\");
}
END_TEST

START_TEST(a_message_without_escape_character_has_no_escapes)
{
    ASSERT_DECODES("a\\F\\b", &no_escape_delims, HL7_UNESCAPE_STRICT, "a\\F\\b");
    ck_assert_int_eq(hl7_has_escape(PX_LIT("a\\F\\b"), &no_escape_delims), 0);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("a\\Q"), &no_escape_delims), -1);
    /* Nothing can be escaped: clean text passes, text needing an escape is refused. */
    assert_encodes("a\\b&c", 5, &no_escape_delims, "a\\b&c");
    px_buf out;
    px_error err;
    px_buf_init(&out, 1024);
    ck_assert_int_eq(hl7_escape(PX_LIT("a|b"), &no_escape_delims, &out, &err), PX_ERR_INVAL);
    ck_assert_int_eq(hl7_escape(PX_LIT("a\nb"), &no_escape_delims, &out, &err), PX_ERR_INVAL);
    ck_assert_uint_eq(out.len, 0);
    px_buf_free(&out);
}
END_TEST

START_TEST(unescape_fails_at_the_buffer_maximum_and_leaves_the_buffer_as_it_was)
{
    px_buf out;
    px_error err;
    /* Fast path (no escape), decoding and plain-text rendering, each past the maximum. */
    const char *inputs[] = {"abcdef", "ab\\F\\cdef", "\\X414243444546\\", "\\.sp+9\\"};
    const unsigned flags[] = {0, 0, 0, HL7_UNESCAPE_PLAIN_TEXT};
    for (size_t i = 0; i < 4; i++) {
        px_buf_init(&out, 6);
        ck_assert_int_eq(px_buf_append_cstr(&out, "#"), PX_OK);
        px_error_clear(&err);
        px_err rc = hl7_unescape(px_str_from_cstr(inputs[i]), &std_delims, flags[i], &out, &err);
        ck_assert_msg(rc == PX_ERR_TOO_LARGE, "%s gave %s", inputs[i], px_err_name(rc));
        ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
        ck_assert_uint_eq(out.len, 1);
        ck_assert_str_eq(out.data, "#");
        px_buf_free(&out);
    }
    /* Exactly at the maximum fits, although the source is longer than the maximum. */
    px_buf_init(&out, 5);
    ck_assert_int_eq(hl7_unescape(PX_LIT("ab\\F\\cd"), &std_delims, 0, &out, &err), PX_OK);
    ck_assert_str_eq(out.data, "ab|cd");
    px_buf_free(&out);
}
END_TEST

START_TEST(unescape_appends_after_existing_content)
{
    px_buf out;
    px_buf_init(&out, 1024);
    ck_assert_int_eq(px_buf_append_cstr(&out, "A:"), PX_OK);
    ck_assert_int_eq(hl7_unescape(PX_LIT("x\\S\\y"), &std_delims, 0, &out, NULL), PX_OK);
    ck_assert_int_eq(hl7_unescape(PX_LIT(";z"), &std_delims, 0, &out, NULL), PX_OK);
    ck_assert_str_eq(out.data, "A:x^y;z");
    px_buf_free(&out);
    /* A line already started before the call does not count as this text's line. */
    px_buf_init(&out, 1024);
    ck_assert_int_eq(px_buf_append_cstr(&out, "prefix"), PX_OK);
    ck_assert_int_eq(
        hl7_unescape(PX_LIT("\\.sp\\x"), &std_delims, HL7_UNESCAPE_PLAIN_TEXT, &out, NULL), PX_OK);
    ck_assert_str_eq(out.data, "prefix\nx");
    px_buf_free(&out);
}
END_TEST

START_TEST(escape_encodes_separators_the_escape_character_and_line_breaks)
{
    assert_encodes("a|b^c~d\\e&f\r\ng", 15, &std_delims,
                   "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\X0D\\\\X0A\\g");
    assert_encodes("plain", 5, &std_delims, "plain");
    assert_encodes("", 0, &std_delims, "");
    /* '#' is text before v2.7 and the truncation character from v2.7. */
    assert_encodes("#1", 2, &std_delims, "#1");
    assert_encodes("#1", 2, &v27_delims, "\\P\\1");
}
END_TEST

START_TEST(escape_uses_the_message_own_delimiters)
{
    assert_encodes("#$*!@|^\\", 8, &odd_delims, "!F!!S!!R!!E!!T!|^\\");
}
END_TEST

START_TEST(escape_fails_at_the_buffer_maximum_and_leaves_the_buffer_as_it_was)
{
    px_buf out;
    px_error err;
    px_buf_init(&out, 8);
    ck_assert_int_eq(px_buf_append_cstr(&out, "ab"), PX_OK);
    /* "|x" encodes to 4 bytes: fits; "||" to 6: does not. */
    ck_assert_int_eq(hl7_escape(PX_LIT("|x"), &std_delims, &out, &err), PX_OK);
    ck_assert_str_eq(out.data, "ab\\F\\x");
    ck_assert_int_eq(hl7_escape(PX_LIT("||"), &std_delims, &out, &err), PX_ERR_TOO_LARGE);
    ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
    ck_assert_int_eq(hl7_escape(PX_LIT("xyz"), &std_delims, &out, &err), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 6);
    ck_assert_str_eq(out.data, "ab\\F\\x");
    px_buf_free(&out);
}
END_TEST

START_TEST(escape_check_finds_the_first_malformed_escape)
{
    ck_assert_int_eq(hl7_escape_check(PX_LIT(""), &std_delims), -1);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("no escapes"), &std_delims), -1);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("\\F\\\\X0D\\\\.br\\\\H\\"), &std_delims), -1);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("ok\\F\\bad\\W\\later\\Q\\"), &std_delims), 8);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("ok\\F\\open\\S"), &std_delims), 9);
    ck_assert_int_eq(hl7_escape_check(PX_LIT("\\X123\\"), &std_delims), 0);
}
END_TEST

START_TEST(has_escape_tells_whether_decoding_is_needed)
{
    ck_assert_int_ne(hl7_has_escape(PX_LIT("a\\F\\"), &std_delims), 0);
    ck_assert_int_eq(hl7_has_escape(PX_LIT("a|b^c"), &std_delims), 0);
    ck_assert_int_eq(hl7_has_escape(PX_LIT(""), &std_delims), 0);
    ck_assert_int_ne(hl7_has_escape(PX_LIT("x!"), &odd_delims), 0);
    ck_assert_int_eq(hl7_has_escape(PX_LIT("x\\"), &odd_delims), 0);
}
END_TEST

/* A small deterministic generator so a failure reproduces. */
static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

START_TEST(encoding_then_decoding_random_text_gives_it_back)
{
    const char alphabet[] = "|^~\\&#$*!@\r\nAz09 .X\x80\xff";
    const hl7_delims *sets[] = {&std_delims, &odd_delims, &v27_delims};
    uint32_t state = 12345;
    char text[96];
    px_buf enc, dec;
    px_buf_init(&enc, 4096);
    px_buf_init(&dec, 4096);
    for (int iter = 0; iter < 3000; iter++) {
        const hl7_delims *d = sets[iter % 3];
        size_t len = next_random(&state) % sizeof(text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[next_random(&state) % (sizeof(alphabet) - 1)];
        px_buf_reset(&enc);
        px_buf_reset(&dec);
        ck_assert_int_eq(hl7_escape(px_str_make(text, len), d, &enc, NULL), PX_OK);
        /* Encoded text holds no raw delimiter or line break... */
        for (size_t i = 0; i < enc.len; i++) {
            char c = enc.data[i];
            ck_assert(c != d->field && c != d->component && c != d->repetition &&
                      c != d->subcomponent && c != '\r' && c != '\n');
            ck_assert(d->truncation == 0 || c != d->truncation);
        }
        /* ...is well formed, and decodes strictly to the original bytes. */
        ck_assert_int_eq(hl7_escape_check(px_buf_view(&enc), d), -1);
        ck_assert_int_eq(hl7_unescape(px_buf_view(&enc), d, HL7_UNESCAPE_STRICT, &dec, NULL),
                         PX_OK);
        ck_assert_uint_eq(dec.len, len);
        if (len > 0)
            ck_assert_mem_eq(dec.data, text, len);
    }
    px_buf_free(&enc);
    px_buf_free(&dec);
}
END_TEST

/* Copies text with every CR LF pair turned into LF. */
static size_t normalise_line_ends(const char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
            continue;
        out[n++] = in[i];
    }
    return n;
}

static char *read_corpus(const char *rel, size_t *len)
{
    char path[1024];
    int n = snprintf(path, sizeof(path), "%s/%s", test_corpus_dir(), rel);
    ck_assert(n > 0 && (size_t)n < sizeof(path));
    char *data = test_read_file(path, len);
    ck_assert_msg(data != NULL, "cannot read %s", path);
    return data;
}

START_TEST(the_uuencoded_corpus_payload_decodes_to_the_raw_file_and_round_trips)
{
    size_t esc_len, raw_len;
    char *escaped = read_corpus("hl7v2/hapi-hl7v2/escape-payload/uuencoded_escaped.txt", &esc_len);
    char *raw = read_corpus("hl7v2/hapi-hl7v2/escape-payload/uuencoded.txt", &raw_len);
    ck_assert_uint_gt(esc_len, 80000);
    px_str in = px_str_make(escaped, esc_len);
    ck_assert_int_ne(hl7_has_escape(in, &std_delims), 0);
    ck_assert_int_eq(hl7_escape_check(in, &std_delims), -1);

    px_buf dec, enc, again;
    px_buf_init(&dec, 1u << 20);
    px_buf_init(&enc, 1u << 20);
    px_buf_init(&again, 1u << 20);
    ck_assert_int_eq(hl7_unescape(in, &std_delims, HL7_UNESCAPE_STRICT, &dec, NULL), PX_OK);

    /* The escaped form carries CR LF where the raw file has LF: compare line by line. */
    ck_assert_ptr_null(memchr(raw, '\r', raw_len));
    ck_assert_ptr_nonnull(memchr(dec.data, '\r', dec.len));
    char *norm = malloc(dec.len + 1);
    ck_assert_ptr_nonnull(norm);
    size_t norm_len = normalise_line_ends(dec.data, dec.len, norm);
    ck_assert_uint_eq(norm_len, raw_len);
    ck_assert_mem_eq(norm, raw, raw_len);
    ck_assert_ptr_nonnull(memchr(dec.data, '\\', dec.len));
    ck_assert_ptr_nonnull(memchr(dec.data, '^', dec.len));
    ck_assert_ptr_nonnull(memchr(dec.data, '&', dec.len));

    /* encode(decode(x)) decodes to the same bytes (and, here, is x itself). */
    ck_assert_int_eq(hl7_escape(px_buf_view(&dec), &std_delims, &enc, NULL), PX_OK);
    ck_assert_int_eq(
        hl7_unescape(px_buf_view(&enc), &std_delims, HL7_UNESCAPE_STRICT, &again, NULL), PX_OK);
    ck_assert_uint_eq(again.len, dec.len);
    ck_assert_mem_eq(again.data, dec.data, dec.len);
    ck_assert_uint_eq(enc.len, esc_len);
    ck_assert_mem_eq(enc.data, escaped, esc_len);

    /* The decoded payload does not fit a buffer one byte short. */
    px_buf small;
    px_buf_init(&small, dec.len - 1);
    ck_assert_int_eq(hl7_unescape(in, &std_delims, 0, &small, NULL), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(small.len, 0);
    px_buf_free(&small);

    free(norm);
    px_buf_free(&dec);
    px_buf_free(&enc);
    px_buf_free(&again);
    free(escaped);
    free(raw);
}
END_TEST

START_TEST(allocation_failures_are_reported_and_leave_nothing_behind)
{
    const px_str in = PX_LIT("head\\F\\middle\\X0D\\\\X0A\\tail and a longer run of plain text "
                             "so that the buffer has to grow past its first allocation .....");
    int failures = 0;
    for (long n = 0; n < 50; n++) {
        px_buf out, enc;
        px_buf_init(&out, 1u << 16);
        px_buf_init(&enc, 1u << 16);
        px_alloc_fail_after(n);
        px_err rc = hl7_unescape(in, &std_delims, 0, &out, NULL);
        if (rc == PX_OK)
            rc = hl7_escape(px_buf_view(&out), &std_delims, &enc, NULL);
        px_alloc_fail_after(-1);
        if (rc == PX_OK) {
            ck_assert_uint_eq(enc.len, in.len);
            ck_assert_mem_eq(enc.data, in.ptr, in.len);
        } else {
            ck_assert_int_eq(rc, PX_ERR_NOMEM);
            ck_assert_uint_eq(enc.len, 0);
            failures++;
        }
        px_buf_free(&out);
        px_buf_free(&enc);
        if (rc == PX_OK)
            break;
    }
    ck_assert_int_gt(failures, 0);
}
END_TEST

TCase *hl7_tcase_escape(void)
{
    TCase *tc = tcase_create("escapes");
    tcase_add_test(tc, unescape_turns_separator_escapes_into_the_standard_delimiters);
    tcase_add_test(tc, unescape_uses_the_message_own_delimiters_and_escape_character);
    tcase_add_test(tc, unescape_decodes_truncation_only_when_the_message_defines_one);
    tcase_add_test(tc, unescape_decodes_hex_sequences_of_any_even_length);
    tcase_add_test(tc, unescape_refuses_hex_sequences_that_are_empty_odd_or_not_hex);
    tcase_add_test(tc, unescape_keeps_highlighting_and_formatting_commands_by_default);
    tcase_add_test(tc, plain_text_renders_line_breaks_spaces_and_drops_the_rest);
    tcase_add_test(tc, plain_text_caps_rendered_counts);
    tcase_add_test(tc, unescape_refuses_malformed_formatting_commands);
    tcase_add_test(tc, charset_and_local_escapes_pass_through_in_every_mode);
    tcase_add_test(tc, strict_mode_reports_the_offset_of_an_unknown_escape);
    tcase_add_test(tc, strict_mode_reports_the_offset_of_an_unterminated_escape);
    tcase_add_test(tc, lenient_mode_copies_a_bad_escape_verbatim_and_reads_on);
    tcase_add_test(tc, a_message_without_escape_character_has_no_escapes);
    tcase_add_test(tc, unescape_fails_at_the_buffer_maximum_and_leaves_the_buffer_as_it_was);
    tcase_add_test(tc, unescape_appends_after_existing_content);
    tcase_add_test(tc, escape_encodes_separators_the_escape_character_and_line_breaks);
    tcase_add_test(tc, escape_uses_the_message_own_delimiters);
    tcase_add_test(tc, escape_fails_at_the_buffer_maximum_and_leaves_the_buffer_as_it_was);
    tcase_add_test(tc, escape_check_finds_the_first_malformed_escape);
    tcase_add_test(tc, has_escape_tells_whether_decoding_is_needed);
    tcase_add_test(tc, encoding_then_decoding_random_text_gives_it_back);
    tcase_add_test(tc, the_uuencoded_corpus_payload_decodes_to_the_raw_file_and_round_trips);
    tcase_add_test(tc, allocation_failures_are_reported_and_leave_nothing_behind);
    return tc;
}
