/* The zero-copy parser: views, numbering, separators, strictness, limits, reuse, the two
 * scanners, allocation failures, and the data-driven validation cases under
 * tests/data/hl7/<case>/ (input.hl7 + expected.err).
 *
 * expected.err lists one expected problem per line as "<name> <segment> <field>" (names
 * from hl7_problem_name); the order does not matter. Two directives are allowed: "strict"
 * parses with HL7_PARSE_STRICT, "error <PX_ERR_NAME>" expects hl7_parse to fail with that
 * code. Lines starting with '#' are comments. */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "hl7/hl7.h"
#include "hl7/tcases.h"
#include "support.h"

#define MSH_LINE "MSH|^~\\&|SEND|FAC|RECV|RFAC|20240101120000||ORU^R01^ORU_R01|CTRL42|P|2.5.1"

/* An assertion for hot loops: Check records every passing ck_assert, which would dominate
 * walks over the whole corpus; this one only reports failures. */
#define require(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                                  \
    } while (0)
#define require_msg(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static const char SAMPLE[] =
    MSH_LINE "\r"
             "PID|1||MRN1^^^HOSP^MR~MRN2^^^OTHER&1.2.3&ISO^PI||Doe^Jane^Q||19700101|F\r"
             "OBX|1|NM|GLU^Glucose||5.5|mmol/L\r"
             "OBX|2|ST|NOTE||\"\"|\r"
             "OBX|3|TX|TXT||line one~line two^x&y&z\r";

/* A parser state using the AVX2 scanner when the CPU has it, or the portable one. */
static hl7_msg_t *msg_new(int scalar)
{
    hl7_msg_t *m = NULL;
    px_error err;
    if (scalar)
        setenv("PX_HL7_NO_SIMD", "1", 1);
    else
        unsetenv("PX_HL7_NO_SIMD");
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    unsetenv("PX_HL7_NO_SIMD");
    return m;
}

/* A copy of exactly len bytes (no terminator), so ASan sees any read past the end. */
static char *exact_copy(const char *p, size_t len)
{
    char *c = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(c);
    if (len > 0)
        memcpy(c, p, len);
    return c;
}

static void assert_inside(px_str v, const char *buf, size_t len)
{
    if (v.ptr == NULL) {
        require(v.len == 0);
        return;
    }
    require_msg((uintptr_t)v.ptr >= (uintptr_t)buf &&
                    (uintptr_t)(v.ptr + v.len) <= (uintptr_t)(buf + len),
                "view outside the buffer");
}

/* Walks every segment, field, repetition, component and sub-component (bounded, so huge
 * messages stay linear) and checks each view lies in [buf, buf + len). */
static void assert_views_inside(const hl7_msg_t *m, const char *buf, size_t len)
{
    HL7_FOREACH_SEGMENT(m, s) {
        assert_inside(hl7_segment_name(m, s), buf, len);
        assert_inside(hl7_segment_raw(m, s), buf, len);
        size_t nf = hl7_field_count(m, s);
        for (size_t f = 1; f <= nf && f <= 64; f++) {
            assert_inside(hl7_field(m, s, f, 0, 0, 0), buf, len);
            size_t nr = hl7_rep_count(m, s, f);
            require(nr >= 1);
            for (size_t r = 1; r <= nr && r <= 8; r++) {
                assert_inside(hl7_field(m, s, f, r, 0, 0), buf, len);
                size_t nc = hl7_comp_count(m, s, f, r);
                for (size_t c = 1; c <= nc && c <= 16; c++) {
                    assert_inside(hl7_field(m, s, f, r, c, 0), buf, len);
                    size_t ns = hl7_sub_count(m, s, f, r, c);
                    for (size_t u = 1; u <= ns && u <= 8; u++)
                        assert_inside(hl7_field(m, s, f, r, c, u), buf, len);
                }
            }
        }
    }
}

/* Both indexes hold the same segments, fields and problems. */
static void assert_same_index(const hl7_msg_t *a, const hl7_msg_t *b)
{
    require(hl7_segment_count(a) == hl7_segment_count(b));
    HL7_FOREACH_SEGMENT(a, s) {
        px_str ra = hl7_segment_raw(a, s), rb = hl7_segment_raw(b, s);
        require(ra.ptr == rb.ptr);
        require(ra.len == rb.len);
        size_t nf = hl7_field_count(a, s);
        require(nf == hl7_field_count(b, s));
        for (size_t f = 1; f <= nf; f++) {
            px_str fa = hl7_field(a, s, f, 0, 0, 0), fb = hl7_field(b, s, f, 0, 0, 0);
            require(fa.ptr == fb.ptr);
            require(fa.len == fb.len);
        }
    }
    size_t na, nb;
    const hl7_problem *pa = hl7_problems(a, &na), *pb = hl7_problems(b, &nb);
    require(na == nb);
    for (size_t i = 0; i < na; i++) {
        require(pa[i].code == pb[i].code);
        require(pa[i].segment == pb[i].segment);
        require(pa[i].field == pb[i].field);
    }
}

static int has_problem(const hl7_msg_t *m, hl7_problem_code code, uint32_t seg, uint32_t field)
{
    size_t n;
    const hl7_problem *p = hl7_problems(m, &n);
    for (size_t i = 0; i < n; i++)
        if (p[i].code == code && p[i].segment == seg && p[i].field == field)
            return 1;
    return 0;
}

#define assert_view(v, text)                                                                       \
    do {                                                                                           \
        px_str v_ = (v);                                                                           \
        const char *t_ = (text);                                                                   \
        ck_assert_msg(v_.len == strlen(t_) && (v_.len == 0 || memcmp(v_.ptr, t_, v_.len) == 0),    \
                      "expected \"%s\", got \"%.*s\"", t_, (int)v_.len,                            \
                      v_.ptr != NULL ? v_.ptr : "");                                               \
    } while (0)

static hl7_msg_t *parse_ok(const char *text, size_t len, unsigned flags)
{
    hl7_msg_t *m = msg_new(0);
    px_error err;
    px_err rc = hl7_parse(m, text, len, flags, &err);
    ck_assert_msg(rc == PX_OK, "parse failed: %s", err.msg);
    return m;
}

START_TEST(parser_returns_views_into_the_original_buffer)
{
    size_t len = sizeof(SAMPLE) - 1;
    char *buf = exact_copy(SAMPLE, len);
    hl7_msg_t *m = parse_ok(buf, len, 0);
    px_str bytes = hl7_msg_bytes(m);
    ck_assert_ptr_eq(bytes.ptr, buf);
    ck_assert_uint_eq(bytes.len, len);
    assert_views_inside(m, buf, len);
    px_str v = hl7_field(m, 1, 5, 1, 2, 0);
    ck_assert_ptr_eq(v.ptr, strstr(SAMPLE, "Jane") - SAMPLE + buf);
    hl7_msg_destroy(m);
    free(buf);
}
END_TEST

START_TEST(parser_reads_fields_repetitions_components_and_subcomponents)
{
    hl7_msg_t *m = parse_ok(SAMPLE, sizeof(SAMPLE) - 1, 0);
    ck_assert_uint_eq(hl7_segment_count(m), 5);
    assert_view(hl7_segment_name(m, 1), "PID");
    assert_view(hl7_segment_raw(m, 2), "OBX|1|NM|GLU^Glucose||5.5|mmol/L");
    ck_assert_uint_eq(hl7_field_count(m, 1), 8);
    assert_view(hl7_field(m, 1, 3, 0, 0, 0), "MRN1^^^HOSP^MR~MRN2^^^OTHER&1.2.3&ISO^PI");
    assert_view(hl7_field(m, 1, 3, 2, 0, 0), "MRN2^^^OTHER&1.2.3&ISO^PI");
    assert_view(hl7_field(m, 1, 3, 2, 4, 0), "OTHER&1.2.3&ISO");
    assert_view(hl7_field(m, 1, 3, 2, 4, 2), "1.2.3");
    assert_view(hl7_field(m, 1, 3, 1, 5, 0), "MR");
    /* A component without a repetition means the first repetition's. */
    assert_view(hl7_field(m, 1, 3, 0, 1, 0), "MRN1");
    assert_view(hl7_field(m, 1, 5, 0, 2, 0), "Jane");
    /* A sub-component without a component means the first component's. */
    assert_view(hl7_field(m, 1, 5, 1, 0, 1), "Doe");
    ck_assert_uint_eq(hl7_rep_count(m, 1, 3), 2);
    ck_assert_uint_eq(hl7_comp_count(m, 1, 3, 2), 5);
    ck_assert_uint_eq(hl7_sub_count(m, 1, 3, 2, 4), 3);
    ck_assert_uint_eq(hl7_sub_count(m, 1, 3, 2, 1), 1);
    assert_view(hl7_field(m, 4, 5, 2, 2, 3), "z");
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(msh_numbering_keeps_the_field_separator_as_msh1)
{
    hl7_msg_t *m = parse_ok(SAMPLE, sizeof(SAMPLE) - 1, 0);
    assert_view(hl7_field(m, 0, 1, 0, 0, 0), "|");
    assert_view(hl7_field(m, 0, 2, 0, 0, 0), "^~\\&");
    assert_view(hl7_field(m, 0, 3, 0, 0, 0), "SEND");
    assert_view(hl7_field(m, 0, 9, 0, 2, 0), "R01");
    assert_view(hl7_field(m, 0, 10, 0, 0, 0), "CTRL42");
    assert_view(hl7_field(m, 0, 12, 0, 0, 0), "2.5.1");
    ck_assert_uint_eq(hl7_field_count(m, 0), 12);
    /* MSH-2 holds the separators themselves and is never split. */
    assert_view(hl7_field(m, 0, 2, 1, 1, 0), "^~\\&");
    ck_assert_ptr_null(hl7_field(m, 0, 2, 2, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 0, 2, 1, 2, 0).ptr);
    ck_assert_uint_eq(hl7_rep_count(m, 0, 2), 1);
    ck_assert_uint_eq(hl7_comp_count(m, 0, 2, 1), 1);
    ck_assert_uint_eq(hl7_rep_count(m, 0, 1), 1);
    const hl7_delims *d = hl7_msg_delims(m);
    ck_assert_int_eq(d->field, '|');
    ck_assert_int_eq(d->component, '^');
    ck_assert_int_eq(d->repetition, '~');
    ck_assert_int_eq(d->escape, '\\');
    ck_assert_int_eq(d->subcomponent, '&');
    ck_assert_int_eq(d->truncation, 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(empty_value_differs_from_explicit_null)
{
    hl7_msg_t *m = parse_ok(SAMPLE, sizeof(SAMPLE) - 1, 0);
    px_str null_value = hl7_field(m, 3, 5, 0, 0, 0);
    ck_assert(hl7_is_null(null_value));
    ck_assert_uint_eq(null_value.len, 2);
    px_str empty = hl7_field(m, 3, 6, 0, 0, 0);
    ck_assert_ptr_nonnull(empty.ptr);
    ck_assert_uint_eq(empty.len, 0);
    ck_assert(!hl7_is_null(empty));
    ck_assert(!hl7_is_null(hl7_field(m, 2, 5, 0, 0, 0)));
    ck_assert(!hl7_is_null(PX_LIT("\"\"\"")));
    ck_assert_uint_eq(hl7_rep_count(m, 3, 6), 1);
    ck_assert_uint_eq(hl7_comp_count(m, 3, 6, 1), 1);
    ck_assert_ptr_null(hl7_field(m, 3, 7, 0, 0, 0).ptr);
    ck_assert_uint_eq(hl7_rep_count(m, 3, 7), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(custom_separators_are_read_from_msh)
{
    static const char text[] = "MSH#!@%*#SEND#FAC#RECV#RFAC#2026##ADT!A01#C7#P#2.5\r"
                               "PID#1##A1!!!MRN@B2*x*y##DOE!JOHN%S%X\r";
    hl7_msg_t *m = parse_ok(text, sizeof(text) - 1, 0);
    const hl7_delims *d = hl7_msg_delims(m);
    ck_assert_int_eq(d->field, '#');
    ck_assert_int_eq(d->component, '!');
    ck_assert_int_eq(d->repetition, '@');
    ck_assert_int_eq(d->escape, '%');
    ck_assert_int_eq(d->subcomponent, '*');
    assert_view(hl7_field(m, 0, 1, 0, 0, 0), "#");
    assert_view(hl7_field(m, 0, 2, 0, 0, 0), "!@%*");
    assert_view(hl7_field(m, 0, 9, 1, 2, 0), "A01");
    assert_view(hl7_field(m, 1, 3, 1, 4, 0), "MRN");
    assert_view(hl7_field(m, 1, 3, 2, 1, 3), "y");
    /* Escapes stay raw. */
    assert_view(hl7_field(m, 1, 5, 1, 2, 0), "JOHN%S%X");
    ck_assert_uint_eq(hl7_validate(m), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(truncation_character_is_read_from_v27_on)
{
    static const char v27[] = "MSH|^~\\&#|A|B|C|D|2024||ADT^A01|1|P|2.7\rPID|1";
    static const char v251[] = "MSH|^~\\&#|A|B|C|D|2024||ADT^A01|1|P|2.5.1\rPID|1";
    hl7_msg_t *m = parse_ok(v27, sizeof(v27) - 1, 0);
    ck_assert_int_eq(hl7_msg_delims(m)->truncation, '#');
    ck_assert_int_eq(hl7_msg_delims(m)->subcomponent, '&');
    assert_view(hl7_field(m, 0, 2, 0, 0, 0), "^~\\&#");
    ck_assert_uint_eq(hl7_validate(m), 0);
    px_error err;
    ck_assert_int_eq(hl7_parse(m, v251, sizeof(v251) - 1, 0, &err), PX_OK);
    ck_assert_int_eq(hl7_msg_delims(m)->truncation, 0);
    ck_assert_uint_eq(hl7_validate(m), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(omitted_escape_and_subcomponent_characters_read_as_zero)
{
    static const char text[] = "MSH|^~|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||a&b^c\\d";
    hl7_msg_t *m = parse_ok(text, sizeof(text) - 1, 0);
    const hl7_delims *d = hl7_msg_delims(m);
    ck_assert_int_eq(d->component, '^');
    ck_assert_int_eq(d->repetition, '~');
    ck_assert_int_eq(d->escape, 0);
    ck_assert_int_eq(d->subcomponent, 0);
    ck_assert(has_problem(m, HL7_PROB_BAD_ENCODING_CHARS, 0, 2));
    /* Without a sub-component separator a component is one piece. */
    assert_view(hl7_field(m, 1, 3, 1, 1, 1), "a&b");
    ck_assert_ptr_null(hl7_field(m, 1, 3, 1, 1, 2).ptr);
    ck_assert_uint_eq(hl7_sub_count(m, 1, 3, 1, 1), 1);
    /* Without an escape character nothing is an escape. */
    hl7_validate(m);
    size_t n;
    const hl7_problem *p = hl7_problems(m, &n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(p[i].code, HL7_PROB_BAD_ESCAPE);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(lf_and_crlf_separators_are_accepted_and_reported)
{
    static const char cr[] = MSH_LINE "\rPID|1||X\rOBX|1|ST|A||v";
    static const char lf[] = MSH_LINE "\nPID|1||X\nOBX|1|ST|A||v\n";
    static const char crlf[] = MSH_LINE "\r\nPID|1||X\r\nOBX|1|ST|A||v\r\n";
    static const char mixed[] = MSH_LINE "\rPID|1||X\r\nOBX|1|ST|A||v\n";
    const char *texts[] = {lf, crlf, mixed};
    const size_t lens[] = {sizeof(lf) - 1, sizeof(crlf) - 1, sizeof(mixed) - 1};
    const uint32_t lf_seg[] = {0, 0, 1};
    hl7_msg_t *ref = parse_ok(cr, sizeof(cr) - 1, 0);
    size_t nref;
    hl7_problems(ref, &nref);
    ck_assert_uint_eq(nref, 0);
    for (size_t i = 0; i < 3; i++) {
        hl7_msg_t *m = parse_ok(texts[i], lens[i], 0);
        ck_assert_uint_eq(hl7_segment_count(m), hl7_segment_count(ref));
        HL7_FOREACH_SEGMENT(m, s) {
            px_str a = hl7_segment_raw(m, s), b = hl7_segment_raw(ref, s);
            ck_assert_uint_eq(a.len, b.len);
            ck_assert_int_eq(memcmp(a.ptr, b.ptr, a.len), 0);
        }
        size_t n;
        const hl7_problem *p = hl7_problems(m, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(p[0].code, HL7_PROB_LF_SEPARATOR);
        ck_assert_uint_eq(p[0].segment, lf_seg[i]);
        hl7_msg_destroy(m);
    }
    hl7_msg_destroy(ref);
}
END_TEST

START_TEST(strict_mode_refuses_lf_and_crlf_but_reads_cr)
{
    static const char lf[] = MSH_LINE "\rPID|1\nOBX|1";
    static const char crlf[] = MSH_LINE "\r\nPID|1\r\n";
    static const char cr[] = MSH_LINE "\rPID|1\rOBX|1\r";
    hl7_msg_t *m = msg_new(0);
    px_error err;
    ck_assert_int_eq(hl7_parse(m, lf, sizeof(lf) - 1, HL7_PARSE_STRICT, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.code, PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, (int)(strchr(lf, '\n') - lf));
    ck_assert_uint_eq(hl7_segment_count(m), 0);
    ck_assert_int_eq(hl7_parse(m, crlf, sizeof(crlf) - 1, HL7_PARSE_STRICT, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, (int)sizeof(MSH_LINE));
    ck_assert_int_eq(hl7_parse(m, cr, sizeof(cr) - 1, HL7_PARSE_STRICT, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 3);
    size_t n;
    hl7_problems(m, &n);
    ck_assert_uint_eq(n, 0);
    /* The same bytes parse leniently. */
    ck_assert_int_eq(hl7_parse(m, lf, sizeof(lf) - 1, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 3);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(message_without_final_separator_reads_its_last_field)
{
    static const char text[] = MSH_LINE "\rPID|1||X||Doe^Jane||19700101|F";
    size_t len = sizeof(text) - 1;
    char *buf = exact_copy(text, len);
    hl7_msg_t *m = parse_ok(buf, len, 0);
    ck_assert_uint_eq(hl7_segment_count(m), 2);
    px_str last = hl7_field(m, 1, 8, 0, 0, 0);
    assert_view(last, "F");
    ck_assert_ptr_eq(last.ptr + last.len, buf + len);
    assert_view(hl7_field(m, 1, 8, 1, 1, 1), "F");
    hl7_msg_destroy(m);
    free(buf);
}
END_TEST

START_TEST(trailing_separators_are_ignored)
{
    static const char text[] = MSH_LINE "\rPID|1\r\r\r";
    hl7_msg_t *m = parse_ok(text, sizeof(text) - 1, 0);
    ck_assert_uint_eq(hl7_segment_count(m), 2);
    size_t n;
    hl7_problems(m, &n);
    ck_assert_uint_eq(n, 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(reading_past_the_end_gives_empty_views)
{
    hl7_msg_t *m = parse_ok(SAMPLE, sizeof(SAMPLE) - 1, 0);
    size_t nseg = hl7_segment_count(m);
    ck_assert_ptr_null(hl7_segment_name(m, nseg).ptr);
    ck_assert_ptr_null(hl7_segment_raw(m, nseg).ptr);
    ck_assert_uint_eq(hl7_field_count(m, nseg), 0);
    ck_assert_ptr_null(hl7_field(m, nseg, 1, 0, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, SIZE_MAX, 1, 0, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, 9, 0, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, SIZE_MAX, 0, 0, 0).ptr);
    ck_assert_uint_eq(hl7_field(m, 1, 9, 0, 0, 0).len, 0);
    ck_assert_ptr_null(hl7_field(m, 1, 0, 0, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, 3, 3, 0, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, 3, 1, 6, 0).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, 3, 2, 4, 4).ptr);
    ck_assert_ptr_null(hl7_field(m, 1, 3, SIZE_MAX, SIZE_MAX, SIZE_MAX).ptr);
    ck_assert_uint_eq(hl7_rep_count(m, 1, 9), 0);
    ck_assert_uint_eq(hl7_comp_count(m, 1, 3, 3), 0);
    ck_assert_uint_eq(hl7_sub_count(m, 1, 3, 1, 6), 0);
    ck_assert_uint_eq(hl7_rep_count(m, nseg, 1), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(byte_order_mark_is_skipped)
{
    char buf[sizeof(SAMPLE) + 3];
    memcpy(buf, "\xEF\xBB\xBF", 3);
    memcpy(buf + 3, SAMPLE, sizeof(SAMPLE));
    size_t len = sizeof(buf) - 1;
    hl7_msg_t *m = parse_ok(buf, len, 0);
    px_str bytes = hl7_msg_bytes(m);
    ck_assert_ptr_eq(bytes.ptr, buf + 3);
    ck_assert_uint_eq(bytes.len, len - 3);
    assert_view(hl7_segment_name(m, 0), "MSH");
    ck_assert_uint_eq(hl7_segment_count(m), 5);
    ck_assert_uint_eq(hl7_validate(m), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(messages_without_readable_separators_fail_to_parse)
{
    static const char *bad[] = {
        "",           "\r\n\r",       "PID|1||X\r",     "MSH", "MSH\rPID|1", "MSHA^~\\&|x\r", "MS",
        "MSH\nPID|1", "\xEF\xBB\xBF", "EVN|A01\rPV1|1",
    };
    hl7_msg_t *m = msg_new(0);
    px_error err;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        char *buf = exact_copy(bad[i], len);
        px_error_clear(&err);
        ck_assert_msg(hl7_parse(m, buf, len, 0, &err) == PX_ERR_PARSE, "case %zu parsed", i);
        ck_assert_int_eq(err.code, PX_ERR_PARSE);
        ck_assert_str_ne(err.msg, "");
        ck_assert_uint_eq(hl7_segment_count(m), 0);
        ck_assert_ptr_null(hl7_field(m, 0, 1, 0, 0, 0).ptr);
        free(buf);
    }
    ck_assert_int_eq(hl7_parse(m, NULL, 0, 0, &err), PX_ERR_PARSE);
    ck_assert_int_eq(hl7_parse(m, NULL, 5, 0, &err), PX_ERR_INVAL);
    ck_assert_int_eq(hl7_parse(NULL, SAMPLE, 5, 0, &err), PX_ERR_INVAL);
    hl7_msg_destroy(m);
    hl7_msg_destroy(NULL);
}
END_TEST

START_TEST(every_prefix_of_a_message_parses_without_reading_past_it)
{
    size_t full = sizeof(SAMPLE) - 1;
    hl7_msg_t *fast = msg_new(0), *slow = msg_new(1);
    for (size_t len = 0; len <= full; len++) {
        char *buf = exact_copy(SAMPLE, len);
        px_error err;
        px_err a = hl7_parse(fast, buf, len, 0, &err);
        px_err b = hl7_parse(slow, buf, len, 0, &err);
        ck_assert_int_eq(a, b);
        /* Four bytes ("MSH|") are the least that names a field separator. */
        ck_assert_int_eq(a, len >= 4 ? PX_OK : PX_ERR_PARSE);
        if (a == PX_OK) {
            assert_views_inside(fast, buf, len);
            assert_same_index(fast, slow);
            hl7_validate(fast);
        }
        free(buf);
    }
    hl7_msg_destroy(fast);
    hl7_msg_destroy(slow);
}
END_TEST

START_TEST(parser_state_is_reused_across_messages)
{
    static const char custom[] = "MSH#!@%*#S#F#R#RF#2026##ADT!A01#C7#P#2.5\rPID#1##X";
    hl7_msg_t *m = msg_new(0);
    px_error err;
    size_t big_len = 0;
    char *big = malloc(64 * 1024);
    ck_assert_ptr_nonnull(big);
    big_len += (size_t)snprintf(big, 64 * 1024, "%s\r", MSH_LINE);
    for (int i = 0; i < 2000; i++)
        big_len += (size_t)snprintf(big + big_len, 64 * 1024 - big_len, "OBX|%d|x\r", i);
    ck_assert_int_eq(hl7_parse(m, big, big_len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 2001);
    ck_assert_int_eq(hl7_parse(m, "MSH|^~\\&|A\rbad|1\r", 17, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 2);
    ck_assert(has_problem(m, HL7_PROB_BAD_SEGMENT_NAME, 1, 0));
    ck_assert_int_eq(hl7_parse(m, custom, sizeof(custom) - 1, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 2);
    ck_assert_int_eq(hl7_msg_delims(m)->field, '#');
    assert_view(hl7_field(m, 1, 3, 0, 0, 0), "X");
    size_t n;
    hl7_problems(m, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(hl7_validate(m), 0);
    ck_assert_int_eq(hl7_parse(m, big, big_len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 2001);
    assert_view(hl7_field(m, 2000, 1, 0, 0, 0), "1999");
    ck_assert_int_eq(hl7_msg_delims(m)->field, '|');
    hl7_msg_destroy(m);
    free(big);
}
END_TEST

/* Builds MSH, then head, count copies of unit and tail, into a fresh buffer. */
static char *build(const char *head, const char *unit, size_t count, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail), ml = sizeof(MSH_LINE);
    size_t cap = ml + hl + ul * count + tl;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, MSH_LINE "\r", ml);
    char *p = buf + ml;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < count; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl);
    *len = cap;
    return buf;
}

START_TEST(huge_field_repetition_and_segment_counts_parse)
{
    hl7_msg_t *m = msg_new(0);
    px_error err;
    size_t len;
    char *fields = build("ZFL", "|x", 99999, "|end", &len);
    ck_assert_int_eq(hl7_parse(m, fields, len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 2);
    ck_assert_uint_eq(hl7_field_count(m, 1), 100000);
    assert_view(hl7_field(m, 1, 100000, 0, 0, 0), "end");
    assert_view(hl7_field(m, 1, 99999, 0, 0, 0), "x");
    free(fields);

    char *reps = build("ZRP|", "a~", 49999, "a", &len);
    ck_assert_int_eq(hl7_parse(m, reps, len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_field_count(m, 1), 1);
    ck_assert_uint_eq(hl7_rep_count(m, 1, 1), 50000);
    assert_view(hl7_field(m, 1, 1, 50000, 0, 0), "a");
    ck_assert_ptr_null(hl7_field(m, 1, 1, 50001, 0, 0).ptr);
    free(reps);

    char *segs = build("", "OBX|1|ST|x\r", 60000, "", &len);
    ck_assert_int_eq(hl7_parse(m, segs, len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 60001);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 60000), 60000);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 60001), -1);
    assert_view(hl7_field(m, 60000, 3, 0, 0, 0), "x");
    free(segs);
    hl7_msg_destroy(m);
}
END_TEST

/* Parsing n units and reading the count of what they make, per byte (best of seven). */
static double cost_per_byte(const char *head, const char *unit, size_t n, int reps)
{
    hl7_msg_t *m = msg_new(0);
    size_t len;
    char *text = build(head, unit, n, "", &len);
    double best = 1e9;
    size_t sink = 0;
    for (int i = 0; i < 7; i++) {
        struct timespec a, b;
        /* Thread CPU time, not wall time: a busy machine preempting the test must not look
         * like a quadratic parser. */
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        for (int r = 0; r < reps; r++) {
            px_error err;
            ck_assert_int_eq(hl7_parse(m, text, len, 0, &err), PX_OK);
            sink += hl7_rep_count(m, 1, 1) + hl7_field_count(m, 1) + hl7_segment_count(m);
        }
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        if (t < best)
            best = t;
    }
    ck_assert_uint_gt(sink, n);
    hl7_msg_destroy(m);
    free(text);
    return best / ((double)len * reps);
}

START_TEST(parse_time_grows_linearly_with_fields_repetitions_and_segments)
{
    /* Eight times the units, an eighth of the runs: a linear parser spends about the same
     * time per byte on both sizes, a quadratic one eight times more on the larger. Sizes
     * stay small enough for the cache, so memory speed does not blur the comparison. */
    static const struct {
        const char *head, *unit;
        size_t n;
    } shapes[] = {
        {"ZFL", "|x", 12500},
        {"ZRP|", "a~", 12500},
        {"", "OBX|1\r", 6000},
    };
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        double small = cost_per_byte(shapes[k].head, shapes[k].unit, shapes[k].n, 64);
        double large = cost_per_byte(shapes[k].head, shapes[k].unit, shapes[k].n * 8, 8);
        ck_assert_msg(large < small * 4, "shape %zu: time per byte grew %.1fx", k, large / small);
    }
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(simd_and_portable_scanners_build_identical_indexes)
{
    static const char alphabet[] = "||||^^~&\\\r\r\n AB12#";
    hl7_msg_t *fast = msg_new(0), *slow = msg_new(1);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char buf[700];
    for (int round = 0; round < 3000; round++) {
        size_t len = 9 + rng_next(&seed) % (sizeof(buf) - 9);
        memcpy(buf, "MSH|^~\\&|", 9);
        for (size_t i = 9; i < len; i++)
            buf[i] = alphabet[rng_next(&seed) % (sizeof(alphabet) - 1)];
        char *exact = exact_copy(buf, len);
        for (unsigned flags = 0; flags <= HL7_PARSE_STRICT; flags++) {
            px_error e1, e2;
            px_err a = hl7_parse(fast, exact, len, flags, &e1);
            px_err b = hl7_parse(slow, exact, len, flags, &e2);
            ck_assert_int_eq(a, b);
            if (a == PX_OK)
                assert_same_index(fast, slow);
            else
                ck_assert_int_eq(e1.detail, e2.detail);
        }
        free(exact);
    }
    hl7_msg_destroy(fast);
    hl7_msg_destroy(slow);
}
END_TEST

START_TEST(allocation_failures_are_reported_not_crashed)
{
    size_t len;
    char *text = build("", "OBX|1|ST|x|y|z|w|v\r", 3000, "", &len);
    int failures = 0, successes = 0;
    for (long n = 0; n < 40; n++) {
        hl7_msg_t *m = NULL;
        px_error err;
        px_alloc_fail_after(n);
        px_err rc = hl7_msg_create(&m, &err);
        if (rc == PX_OK) {
            rc = hl7_parse(m, text, len, 0, &err);
            if (rc == PX_OK)
                ck_assert_uint_eq(hl7_segment_count(m), 3001);
            else
                ck_assert_uint_eq(hl7_segment_count(m), 0);
        }
        px_alloc_fail_after(-1);
        ck_assert(rc == PX_OK || rc == PX_ERR_NOMEM);
        if (rc == PX_ERR_NOMEM) {
            ck_assert_int_eq(err.code, PX_ERR_NOMEM);
            failures++;
        } else {
            successes++;
        }
        hl7_msg_destroy(m);
    }
    ck_assert_int_gt(failures, 2);
    ck_assert_int_gt(successes, 0);
    free(text);
}
END_TEST

START_TEST(segment_find_counts_occurrences)
{
    hl7_msg_t *m = parse_ok(SAMPLE, sizeof(SAMPLE) - 1, 0);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("MSH"), 1), 0);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 1), 2);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 3), 4);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 4), -1);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OBX"), 0), -1);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("PV1"), 1), -1);
    ck_assert_int_eq(hl7_segment_find(m, PX_LIT("OB"), 1), -1);
    size_t obx = 0;
    HL7_FOREACH_SEGMENT(m, s) {
        if (px_str_eq(hl7_segment_name(m, s), PX_LIT("OBX")))
            obx++;
    }
    ck_assert_uint_eq(obx, 3);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(piece_helpers_split_any_view)
{
    px_str s = PX_LIT("a^b^^c");
    assert_view(hl7_piece(s, '^', 1), "a");
    assert_view(hl7_piece(s, '^', 4), "c");
    px_str empty = hl7_piece(s, '^', 3);
    ck_assert_ptr_eq(empty.ptr, s.ptr + 4);
    ck_assert_uint_eq(empty.len, 0);
    ck_assert_ptr_null(hl7_piece(s, '^', 5).ptr);
    ck_assert_ptr_null(hl7_piece(s, '^', 0).ptr);
    ck_assert_uint_eq(hl7_piece_count(s, '^'), 4);
    ck_assert_uint_eq(hl7_piece_count(PX_LIT(""), '^'), 1);
    ck_assert_uint_eq(hl7_piece_count(PX_LIT("^"), '^'), 2);
    ck_assert_uint_eq(hl7_piece_count(s, '\0'), 1);
    assert_view(hl7_piece(s, '\0', 1), "a^b^^c");
    ck_assert_ptr_null(hl7_piece(s, '\0', 2).ptr);
    ck_assert_ptr_null(hl7_piece(PX_STR_NULL, '^', 1).ptr);
}
END_TEST

START_TEST(msh_read_fills_the_header_fields)
{
    static const char text[] = "MSH|^~\\&|LAB^1.2^ISO|FAC|EHR|RFAC|20240101120000+0100||"
                               "ORU^R01^ORU_R01|C1|P^T|2.5.1^USA|||AL|NE||UNICODE UTF-8~8859/1\r"
                               "PID|1||X||M\xC3\xBCller^J\xC3\xB6rg\r";
    hl7_msg_t *m = parse_ok(text, sizeof(text) - 1, 0);
    hl7_msh h;
    px_error err;
    ck_assert_int_eq(hl7_msh_read(m, &h, &err), PX_OK);
    assert_view(h.sending_app, "LAB^1.2^ISO");
    assert_view(h.sending_facility, "FAC");
    assert_view(h.receiving_app, "EHR");
    assert_view(h.receiving_facility, "RFAC");
    assert_view(h.datetime, "20240101120000+0100");
    assert_view(h.type, "ORU");
    assert_view(h.trigger, "R01");
    assert_view(h.structure, "ORU_R01");
    assert_view(h.control_id, "C1");
    assert_view(h.processing_id, "P");
    assert_view(h.version, "2.5.1");
    assert_view(h.accept_ack, "AL");
    assert_view(h.app_ack, "NE");
    assert_view(h.charset, "UNICODE UTF-8");
    /* Bytes pass through untouched whatever MSH-18 says. */
    assert_view(hl7_field(m, 1, 5, 1, 1, 0), "M\xC3\xBCller");
    ck_assert_int_eq(hl7_parse(m, "FHS|^~\\&|A\rFTS|0", 16, 0, &err), PX_OK);
    ck_assert_int_eq(hl7_msh_read(m, &h, &err), PX_ERR_PARSE);
    ck_assert_uint_eq(h.control_id.len, 0);
    ck_assert_int_eq(hl7_parse(m, "MSH|^~\\&|A", 10, 0, &err), PX_OK);
    ck_assert_int_eq(hl7_msh_read(m, &h, &err), PX_OK);
    ck_assert_ptr_null(h.control_id.ptr);
    ck_assert_ptr_null(h.charset.ptr);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(version_codes_read_published_versions_only)
{
    ck_assert_uint_eq(hl7_version_code(PX_LIT("2.5.1")), 251);
    ck_assert_uint_eq(hl7_version_code(PX_LIT("2.3")), 230);
    ck_assert_uint_eq(hl7_version_code(PX_LIT("2.1")), 210);
    ck_assert_uint_eq(hl7_version_code(PX_LIT("2.8.2")), 282);
    static const char *bad[] = {"", "2", "2.", "2.x", "2.10", "v2.5", "2.5.1.1", "2.5.", "2,5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_uint_eq(hl7_version_code(px_str_from_cstr(bad[i])), 0);
    ck_assert_uint_eq(hl7_version_code(PX_STR_NULL), 0);
}
END_TEST

START_TEST(problem_codes_have_distinct_names_and_texts)
{
    for (int a = HL7_PROB_NO_MSH; a <= HL7_PROB_BAD_PROCESSING_ID; a++) {
        const char *name = hl7_problem_name((hl7_problem_code)a);
        ck_assert_str_ne(name, "unknown");
        ck_assert_str_ne(hl7_problem_text((hl7_problem_code)a), "unknown problem");
        for (int b = a + 1; b <= HL7_PROB_BAD_PROCESSING_ID; b++)
            ck_assert_str_ne(name, hl7_problem_name((hl7_problem_code)b));
    }
    ck_assert_str_eq(hl7_problem_name((hl7_problem_code)0), "unknown");
    ck_assert_str_eq(hl7_problem_name(HL7_PROB_MISSING_MSH10), "missing_msh10");
}
END_TEST

START_TEST(validation_runs_once_per_parse)
{
    static const char text[] = "MSH|^~\\&|A|B|C|D|2024||ADT^A01||X|2.5\rPID|1||\\Q\\";
    hl7_msg_t *m = parse_ok(text, sizeof(text) - 1, 0);
    size_t first = hl7_validate(m);
    ck_assert_uint_eq(first, 3);
    ck_assert_uint_eq(hl7_validate(m), first);
    px_error err;
    ck_assert_int_eq(hl7_parse(m, SAMPLE, sizeof(SAMPLE) - 1, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_validate(m), 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(problem_list_is_bounded_on_hostile_input)
{
    size_t len;
    char *text = build("", "bad|1\r", 20000, "", &len);
    memcpy(text + 4, "^^", 2);
    hl7_msg_t *m = parse_ok(text, len, 0);
    ck_assert_uint_eq(hl7_segment_count(m), 20001);
    size_t n;
    const hl7_problem *p = hl7_problems(m, &n);
    ck_assert_uint_gt(n, 10);
    ck_assert_uint_le(n, 1000);
    /* Header problems are kept first however many others follow. */
    ck_assert_int_eq(p[0].code, HL7_PROB_BAD_ENCODING_CHARS);
    ck_assert(has_problem(m, HL7_PROB_BAD_SEGMENT_NAME, 1, 0));
    hl7_msg_destroy(m);
    free(text);
}
END_TEST

/* ---- data-driven validation cases ---- */

#define MAX_CASES 128
static char case_names[MAX_CASES][64];
static int case_count;

/* dst = "<data>/hl7/<name>/<file>"; false when it does not fit. */
static int case_path(char *dst, size_t size, const char *name, const char *file)
{
    int n = snprintf(dst, size, "%s/hl7/%s/%s", test_data_dir(), name, file);
    return n > 0 && (size_t)n < size;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void find_cases(void)
{
    char dir[1024];
    int n = snprintf(dir, sizeof(dir), "%s/hl7", test_data_dir());
    DIR *d = n > 0 && (size_t)n < sizeof(dir) ? opendir(dir) : NULL;
    case_count = 0;
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && case_count < MAX_CASES) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(case_names[0]))
            continue;
        char path[1200];
        if (!case_path(path, sizeof(path), e->d_name, "expected.err"))
            continue;
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        fclose(f);
        memcpy(case_names[case_count++], e->d_name, strlen(e->d_name) + 1);
    }
    closedir(d);
    qsort(case_names, (size_t)case_count, sizeof(case_names[0]), name_cmp);
}

typedef struct expected_case {
    int strict;
    px_err error;
    size_t n;
    char lines[64][96];
} expected_case;

static void read_expected(const char *path, expected_case *x)
{
    size_t len;
    char *text = test_read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    memset(x, 0, sizeof(*x));
    x->error = PX_OK;
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *next = nl != NULL ? nl + 1 : text + len;
        if (nl != NULL)
            *nl = '\0';
        line[strcspn(line, "\r")] = '\0';
        if (line[0] != '#' && line[0] != '\0') {
            if (strcmp(line, "strict") == 0) {
                x->strict = 1;
            } else if (strncmp(line, "error ", 6) == 0) {
                x->error = (px_err)-1;
                for (int c = PX_OK; c <= PX_ERR_CLOSED; c++)
                    if (strcmp(px_err_name((px_err)c), line + 6) == 0)
                        x->error = (px_err)c;
                ck_assert_msg(x->error != (px_err)-1, "unknown error name in %s", path);
            } else {
                ck_assert_uint_lt(x->n, 64);
                snprintf(x->lines[x->n++], sizeof(x->lines[0]), "%s", line);
            }
        }
        line = next;
    }
    free(text);
    qsort(x->lines, x->n, sizeof(x->lines[0]), name_cmp);
}

START_TEST(validation_case_reports_the_expected_problems)
{
    ck_assert_int_lt(_i, case_count);
    char path[1200];
    expected_case want;
    ck_assert(case_path(path, sizeof(path), case_names[_i], "expected.err"));
    read_expected(path, &want);
    ck_assert(case_path(path, sizeof(path), case_names[_i], "input.hl7"));
    size_t len;
    char *file = test_read_file(path, &len);
    ck_assert_msg(file != NULL, "cannot read %s", path);
    char *buf = exact_copy(file, len);
    free(file);
    for (int scalar = 0; scalar <= 1; scalar++) {
        hl7_msg_t *m = msg_new(scalar);
        px_error err;
        px_err rc = hl7_parse(m, buf, len, want.strict ? HL7_PARSE_STRICT : 0, &err);
        ck_assert_msg(rc == want.error, "%s: parse gave %s (%s)", case_names[_i], px_err_name(rc),
                      err.msg);
        if (rc == PX_OK) {
            assert_views_inside(m, buf, len);
            size_t n = hl7_validate(m);
            size_t count;
            const hl7_problem *p = hl7_problems(m, &count);
            ck_assert_uint_eq(n, count);
            char got[64][96];
            ck_assert_uint_lt(count, 64);
            for (size_t i = 0; i < count; i++)
                snprintf(got[i], sizeof(got[0]), "%s %u %u", hl7_problem_name(p[i].code),
                         (unsigned)p[i].segment, (unsigned)p[i].field);
            qsort(got, count, sizeof(got[0]), name_cmp);
            for (size_t i = 0; i < count && i < want.n; i++)
                ck_assert_msg(strcmp(got[i], want.lines[i]) == 0, "%s: got \"%s\", want \"%s\"",
                              case_names[_i], got[i], want.lines[i]);
            ck_assert_msg(count == want.n, "%s: %zu problems, want %zu", case_names[_i], count,
                          want.n);
        }
        hl7_msg_destroy(m);
    }
    free(buf);
}
END_TEST

START_TEST(validation_cases_cover_every_problem_code)
{
    int seen[HL7_PROB_BAD_PROCESSING_ID + 1] = {0};
    int strict = 0, failure = 0;
    ck_assert_int_ge(case_count, 13);
    for (int c = 0; c < case_count; c++) {
        char path[1200];
        expected_case want;
        ck_assert(case_path(path, sizeof(path), case_names[c], "expected.err"));
        read_expected(path, &want);
        strict |= want.strict;
        failure |= want.error != PX_OK;
        for (size_t i = 0; i < want.n; i++)
            for (int code = HL7_PROB_NO_MSH; code <= HL7_PROB_BAD_PROCESSING_ID; code++) {
                const char *name = hl7_problem_name((hl7_problem_code)code);
                size_t nl = strlen(name);
                if (strncmp(want.lines[i], name, nl) == 0 && want.lines[i][nl] == ' ')
                    seen[code] = 1;
            }
    }
    for (int code = HL7_PROB_NO_MSH; code <= HL7_PROB_BAD_PROCESSING_ID; code++)
        ck_assert_msg(seen[code], "no case for %s", hl7_problem_name((hl7_problem_code)code));
    ck_assert(strict);
    ck_assert(failure);
}
END_TEST

TCase *hl7_tcase_parse(void)
{
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, parser_returns_views_into_the_original_buffer);
    tcase_add_test(tc, parser_reads_fields_repetitions_components_and_subcomponents);
    tcase_add_test(tc, msh_numbering_keeps_the_field_separator_as_msh1);
    tcase_add_test(tc, empty_value_differs_from_explicit_null);
    tcase_add_test(tc, custom_separators_are_read_from_msh);
    tcase_add_test(tc, truncation_character_is_read_from_v27_on);
    tcase_add_test(tc, omitted_escape_and_subcomponent_characters_read_as_zero);
    tcase_add_test(tc, lf_and_crlf_separators_are_accepted_and_reported);
    tcase_add_test(tc, strict_mode_refuses_lf_and_crlf_but_reads_cr);
    tcase_add_test(tc, message_without_final_separator_reads_its_last_field);
    tcase_add_test(tc, trailing_separators_are_ignored);
    tcase_add_test(tc, reading_past_the_end_gives_empty_views);
    tcase_add_test(tc, byte_order_mark_is_skipped);
    tcase_add_test(tc, messages_without_readable_separators_fail_to_parse);
    tcase_add_test(tc, every_prefix_of_a_message_parses_without_reading_past_it);
    tcase_add_test(tc, parser_state_is_reused_across_messages);
    tcase_add_test(tc, huge_field_repetition_and_segment_counts_parse);
    tcase_add_test(tc, parse_time_grows_linearly_with_fields_repetitions_and_segments);
    tcase_add_test(tc, simd_and_portable_scanners_build_identical_indexes);
    tcase_add_test(tc, allocation_failures_are_reported_not_crashed);
    tcase_add_test(tc, segment_find_counts_occurrences);
    tcase_add_test(tc, piece_helpers_split_any_view);
    tcase_add_test(tc, msh_read_fills_the_header_fields);
    tcase_add_test(tc, version_codes_read_published_versions_only);
    tcase_add_test(tc, problem_codes_have_distinct_names_and_texts);
    tcase_add_test(tc, validation_runs_once_per_parse);
    tcase_add_test(tc, problem_list_is_bounded_on_hostile_input);
    find_cases();
    tcase_add_loop_test(tc, validation_case_reports_the_expected_problems, 0, case_count);
    tcase_add_test(tc, validation_cases_cover_every_problem_code);
    return tc;
}
