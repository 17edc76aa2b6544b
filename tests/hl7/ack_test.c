/* The ACK/NAK builder and reader. Every ACK built here is parsed back with the parser and
 * must validate without a problem; the ERR and MSA layout of each version is checked
 * against the HL7 dictionary in the corpus (hl7-dictionary/<version>/segments.json). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/ack.h"
#include "hl7/escape.h"
#include "hl7/hl7.h"
#include "hl7/tcases.h"
#include "support.h"

/* An error text holding every separator (and, from v2.7, the truncation character). */
#define NASTY_TEXT "PID-3 missing | see ^ & ~ \\ # here"

/* ---- helpers ------------------------------------------------------------------------ */

static hl7_ack_spec make_spec(hl7_ack_code code, unsigned err_code, const char *text,
                              const char *location)
{
    hl7_ack_spec s;
    memset(&s, 0, sizeof(s));
    s.code = code;
    s.control_id = PX_LIT("ACK-77");
    s.datetime = PX_LIT("20240102030405");
    s.err_code = err_code;
    s.err_text = px_str_from_cstr(text);
    s.err_location = px_str_from_cstr(location);
    return s;
}

static hl7_msg_t *parse_text(const char *text, size_t len)
{
    hl7_msg_t *m = NULL;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    px_err rc = hl7_parse(m, text, len, 0, &err);
    ck_assert_msg(rc == PX_OK, "parse failed: %s", err.msg);
    return m;
}

/* Parses an ACK strictly (\r separators only) and asserts it validates cleanly. */
static hl7_msg_t *parse_ack(const px_buf *b)
{
    ck_assert_uint_gt(b->len, 0);
    ck_assert_int_eq(b->data[b->len - 1], '\r');
    ck_assert_ptr_null(memchr(b->data, '\n', b->len));
    hl7_msg_t *ack = NULL;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&ack, &err), PX_OK);
    px_err rc = hl7_parse(ack, b->data, b->len, HL7_PARSE_STRICT, &err);
    ck_assert_msg(rc == PX_OK, "ACK does not parse: %s", err.msg);
    size_t n = hl7_validate(ack);
    if (n > 0) {
        const hl7_problem *p = hl7_problems(ack, &n);
        ck_abort_msg("ACK has %zu problem(s), first %s at segment %u field %u: %s", n,
                     hl7_problem_name(p[0].code), p[0].segment, p[0].field, b->data);
    }
    return ack;
}

typedef struct built {
    hl7_msg_t *msg;
    px_buf buf;
    hl7_msg_t *ack;
} built;

static void build(const char *msg_text, const hl7_ack_spec *spec, built *b)
{
    px_error err;
    b->msg = parse_text(msg_text, strlen(msg_text));
    px_buf_init(&b->buf, 1u << 16);
    px_err rc = hl7_ack_build(b->msg, spec, &b->buf, &err);
    ck_assert_msg(rc == PX_OK, "build failed: %s", err.msg);
    b->ack = parse_ack(&b->buf);
}

static void built_free(built *b)
{
    hl7_msg_destroy(b->ack);
    hl7_msg_destroy(b->msg);
    px_buf_free(&b->buf);
}

static size_t seg_of(const hl7_msg_t *m, const char *name)
{
    ptrdiff_t s = hl7_segment_find(m, px_str_from_cstr(name), 1);
    ck_assert_msg(s >= 0, "no %s segment", name);
    return (size_t)s;
}

static void assert_value(const hl7_msg_t *m, const char *seg, size_t field, size_t rep, size_t comp,
                         size_t sub, const char *expected)
{
    px_str v = hl7_field(m, seg_of(m, seg), field, rep, comp, sub);
    char actual[512];
    px_str_to_cbuf(v, actual, sizeof(actual));
    ck_assert_msg(px_str_eq_cstr(v, expected), "%s-%zu.%zu.%zu (rep %zu) is \"%s\", want \"%s\"",
                  seg, field, comp, sub, rep, actual, expected);
}

#define ASSERT_FIELD(m, seg, field, expected) assert_value(m, seg, field, 0, 0, 0, expected)

static void assert_starts_with(const px_buf *b, const char *prefix)
{
    ck_assert_msg(b->len >= strlen(prefix) && memcmp(b->data, prefix, strlen(prefix)) == 0,
                  "ACK starts \"%.*s\", want \"%s\"", (int)strlen(prefix), b->data, prefix);
}

/* Asserts that the raw value decodes (strictly, with the ACK's delimiters) to expected. */
static void assert_decoded(const hl7_msg_t *m, px_str raw, const char *expected)
{
    px_buf out;
    px_error err;
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_unescape(raw, hl7_msg_delims(m), HL7_UNESCAPE_STRICT, &out, &err), PX_OK);
    ck_assert_str_eq(out.data == NULL ? "" : out.data, expected);
    px_buf_free(&out);
}

/* ---- the HL7 dictionary ------------------------------------------------------------- */

typedef struct dict {
    json_t *segments;
    json_t *types;
} dict;

static json_t *dict_file(const char *version, const char *name)
{
    char path[1024];
    int n =
        snprintf(path, sizeof(path), "%s/hl7-dictionary/%s/%s", test_corpus_dir(), version, name);
    ck_assert(n > 0 && (size_t)n < sizeof(path));
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
    return j;
}

static void dict_load(const char *version, dict *d)
{
    d->segments = dict_file(version, "segments.json");
    d->types = dict_file(version, "fields.json");
}

static void dict_free(dict *d)
{
    json_decref(d->segments);
    json_decref(d->types);
}

static json_t *dict_fields(const dict *d, const char *seg)
{
    json_t *fields = json_object_get(json_object_get(d->segments, seg), "fields");
    ck_assert_msg(json_is_array(fields), "dictionary has no %s", seg);
    return fields;
}

static size_t dict_field_count(const dict *d, const char *seg)
{
    return json_array_size(dict_fields(d, seg));
}

/* The dictionary's name of SEG-field, or "" when the version has no such field. */
static const char *dict_field_name(const dict *d, const char *seg, size_t field)
{
    json_t *f = json_array_get(dict_fields(d, seg), field - 1);
    const char *name = json_string_value(json_object_get(f, "desc"));
    return name == NULL ? "" : name;
}

static size_t dict_type_components(const dict *d, const char *seg, size_t field)
{
    json_t *f = json_array_get(dict_fields(d, seg), field - 1);
    const char *type = json_string_value(json_object_get(f, "datatype"));
    ck_assert_ptr_nonnull(type);
    json_t *subs = json_object_get(json_object_get(d->types, type), "subfields");
    return json_is_array(subs) ? json_array_size(subs) : 1;
}

/* Case-insensitive, ignoring blanks at both ends (2.7 has " Message Waiting Priority "). */
static bool names_match(const char *a, const char *b)
{
    px_str x = px_str_trim(px_str_from_cstr(a)), y = px_str_trim(px_str_from_cstr(b));
    return px_str_eq_nocase(x, y);
}

/* Asserts that the field we filled is, in this version's dictionary, the one named name. */
static void assert_named(const dict *d, const char *version, const char *seg, size_t field,
                         const char *name)
{
    const char *actual = dict_field_name(d, seg, field);
    ck_assert_msg(names_match(actual, name), "v%s %s-%zu is \"%s\" in the dictionary, not \"%s\"",
                  version, seg, field, actual, name);
}

/* Asserts that no field of the segment other than those listed (0-terminated) is valued. */
static void assert_only_fields(const hl7_msg_t *m, const char *seg, const size_t *filled)
{
    size_t s = seg_of(m, seg);
    size_t count = hl7_field_count(m, s);
    for (size_t f = 1; f <= count; f++) {
        bool expected = false;
        for (const size_t *p = filled; *p != 0; p++)
            expected = expected || *p == f;
        if (!expected)
            ck_assert_msg(hl7_field(m, s, f, 0, 0, 0).len == 0, "%s-%zu is valued", seg, f);
    }
}

/* ---- the layout per version --------------------------------------------------------- */

static const char *const versions[] = {"2.1", "2.2",   "2.3", "2.3.1", "2.4",
                                       "2.5", "2.5.1", "2.6", "2.7"};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

START_TEST(ack_layout_follows_the_dictionary_of_each_version)
{
    const char *v = versions[_i];
    unsigned code = hl7_version_code(px_str_from_cstr(v));
    char msg[512];
    /* From v2.7 a fifth encoding character is the truncation character. */
    int n = snprintf(msg, sizeof(msg),
                     "MSH|%s|LAB|NORTH|EHR|MAIN|20240101120000||ORU^R01%s|CTRL-1|P|%s\r"
                     "PID|1||\r",
                     code >= 270 ? "^~\\&#" : "^~\\&", code >= 231 ? "^ORU_R01" : "", v);
    ck_assert(n > 0 && (size_t)n < sizeof(msg));
    dict d;
    dict_load(v, &d);
    hl7_ack_spec spec =
        make_spec(HL7_ACK_AE, HL7_ERR_REQUIRED_FIELD_MISSING, NASTY_TEXT, "PID^1^3");
    built b;
    build(msg, &spec, &b);
    hl7_msg_t *ack = b.ack;
    ck_assert_int_eq(hl7_msg_delims(ack)->truncation, code >= 270 ? '#' : 0);

    /* MSH: swapped ends, own control id and time, the message's processing id/version. */
    ck_assert_uint_eq(hl7_segment_count(ack), 3);
    assert_named(&d, v, "MSH", 3, "Sending Application");
    ASSERT_FIELD(ack, "MSH", 3, "EHR");
    ASSERT_FIELD(ack, "MSH", 4, "MAIN");
    ASSERT_FIELD(ack, "MSH", 5, "LAB");
    ASSERT_FIELD(ack, "MSH", 6, "NORTH");
    ASSERT_FIELD(ack, "MSH", 7, "20240102030405");
    ASSERT_FIELD(ack, "MSH", 10, "ACK-77");
    ASSERT_FIELD(ack, "MSH", 11, "P");
    ASSERT_FIELD(ack, "MSH", 12, v);
    /* MSH-9 has as many components as the version's message type has. */
    assert_named(&d, v, "MSH", 9, "Message Type");
    size_t msh9 = dict_type_components(&d, "MSH", 9);
    ck_assert_uint_ge(msh9, 2);
    ASSERT_FIELD(ack, "MSH", 9, msh9 >= 3 ? "ACK^R01^ACK" : "ACK^R01");
    ck_assert_uint_eq(msh9 >= 3, code >= 231);
    /* MSH-15/16 = NE where the version has them (v2.1's MSH ends at MSH-14). */
    if (dict_field_count(&d, "MSH") >= 16) {
        assert_named(&d, v, "MSH", 15,
                     code >= 231 ? "Accept Acknowledgment Type" : "Accept Acknowledgement Type");
        assert_named(&d, v, "MSH", 16,
                     code >= 231 ? "Application Acknowledgment Type"
                                 : "Application Acknowledgement Type");
        ASSERT_FIELD(ack, "MSH", 15, "NE");
        ASSERT_FIELD(ack, "MSH", 16, "NE");
    } else {
        ck_assert_uint_le(hl7_field_count(ack, 0), dict_field_count(&d, "MSH"));
    }
    ck_assert_uint_le(hl7_field_count(ack, 0), dict_field_count(&d, "MSH"));

    /* MSA-1 code, MSA-2 the message's MSH-10. */
    assert_named(&d, v, "MSA", 2, "Message Control ID");
    ASSERT_FIELD(ack, "MSA", 1, "AE");
    ASSERT_FIELD(ack, "MSA", 2, "CTRL-1");
    size_t msa = seg_of(ack, "MSA"), err = seg_of(ack, "ERR");
    ck_assert_uint_le(hl7_field_count(ack, msa), dict_field_count(&d, "MSA"));
    ck_assert_uint_le(hl7_field_count(ack, err), dict_field_count(&d, "ERR"));

    if (code >= 250) {
        assert_named(&d, v, "ERR", 2, "Error Location");
        assert_named(&d, v, "ERR", 3, "HL7 Error Code");
        assert_named(&d, v, "ERR", 4, "Severity");
        assert_named(&d, v, "ERR", 8, "User Message");
        assert_only_fields(ack, "ERR", (const size_t[]){2, 3, 4, 8, 0});
        assert_value(ack, "ERR", 2, 1, 1, 0, "PID");
        assert_value(ack, "ERR", 2, 1, 2, 0, "1");
        assert_value(ack, "ERR", 2, 1, 3, 0, "3");
        ASSERT_FIELD(ack, "ERR", 3, "101^Required field missing^HL70357");
        ASSERT_FIELD(ack, "ERR", 4, "E");
        assert_decoded(ack, hl7_field(ack, err, 8, 0, 0, 0), NASTY_TEXT);
        if (code >= 270) {
            /* MSA-3 is withdrawn in v2.7. */
            assert_only_fields(ack, "MSA", (const size_t[]){1, 2, 0});
        } else {
            assert_named(&d, v, "MSA", 3, "Text Message");
            assert_only_fields(ack, "MSA", (const size_t[]){1, 2, 3, 0});
            assert_decoded(ack, hl7_field(ack, msa, 3, 0, 0, 0), NASTY_TEXT);
        }
    } else if (code >= 220) {
        assert_named(&d, v, "ERR", 1, "Error Code and Location");
        assert_named(&d, v, "MSA", 3, "Text Message");
        assert_named(&d, v, "MSA", 6, "Error Condition");
        assert_only_fields(ack, "ERR", (const size_t[]){1, 0});
        assert_only_fields(ack, "MSA", (const size_t[]){1, 2, 3, 6, 0});
        assert_value(ack, "ERR", 1, 1, 1, 0, "PID");
        assert_value(ack, "ERR", 1, 1, 2, 0, "1");
        assert_value(ack, "ERR", 1, 1, 3, 0, "3");
        assert_value(ack, "ERR", 1, 1, 4, 1, "101");
        assert_decoded(ack, hl7_field(ack, err, 1, 1, 4, 2), NASTY_TEXT);
        assert_value(ack, "ERR", 1, 1, 4, 3, "HL70357");
        ASSERT_FIELD(ack, "MSA", 6, "101^Required field missing^HL70357");
        assert_decoded(ack, hl7_field(ack, msa, 3, 0, 0, 0), NASTY_TEXT);
    } else {
        assert_named(&d, v, "ERR", 1, "Error code and location");
        assert_named(&d, v, "MSA", 3, "Text message");
        assert_only_fields(ack, "ERR", (const size_t[]){1, 0});
        assert_only_fields(ack, "MSA", (const size_t[]){1, 2, 3, 0});
        ASSERT_FIELD(ack, "ERR", 1, "101");
        assert_decoded(ack, hl7_field(ack, msa, 3, 0, 0, 0), NASTY_TEXT);
    }
    built_free(&b);
    dict_free(&d);
}
END_TEST

START_TEST(an_accept_has_no_err_segment_and_no_text)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AA, 0, "", "");
    built b;
    build("MSH|^~\\&|LAB|NORTH|EHR|MAIN|20240101||ADT^A01^ADT_A01|C9|P|2.5.1\rEVN|A01\r", &spec,
          &b);
    ck_assert_uint_eq(hl7_segment_count(b.ack), 2);
    ck_assert_int_lt(hl7_segment_find(b.ack, PX_LIT("ERR"), 1), 0);
    ck_assert_str_eq(b.buf.data, "MSH|^~\\&|EHR|MAIN|LAB|NORTH|20240102030405||ACK^A01^ACK|ACK-77|"
                                 "P|2.5.1|||NE|NE\rMSA|AA|C9\r");
    built_free(&b);
}
END_TEST

START_TEST(the_error_location_keeps_only_what_the_version_can_hold)
{
    hl7_ack_spec spec =
        make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, "OBX-5 not numeric", "OBX^2^5^1^2^1");
    spec.severity = 'W';
    built b;
    build("MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|X1|T|2.6\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 2, "OBX^2^5^1^2^1");
    ASSERT_FIELD(b.ack, "ERR", 4, "W");
    ASSERT_FIELD(b.ack, "MSH", 11, "T");
    built_free(&b);
    build("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P|2.4\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 1, "OBX^2^5^102&OBX-5 not numeric&HL70357");
    built_free(&b);
    /* No location at all: the ELD keeps its positions, ERR-2 stays empty. */
    spec.err_location = PX_STR_NULL;
    build("MSH|^~\\&|A|B|C|D|20240101||ORU^R01|X1|P|2.3\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 1, "^^^102&OBX-5 not numeric&HL70357");
    built_free(&b);
    build("MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|X1|P|2.5\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 2, "");
    ASSERT_FIELD(b.ack, "ERR", 3, "102^Data type error^HL70357");
    built_free(&b);
}
END_TEST

START_TEST(msh9_echoes_the_trigger_only_when_the_message_has_one)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AA, 0, "", "");
    built b;
    build("MSH|^~\\&|A|B|C|D|20240101||ADT|X1|P|2.5\r", &spec, &b);
    ASSERT_FIELD(b.ack, "MSH", 9, "ACK");
    built_free(&b);
    build("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.3\r", &spec, &b);
    ASSERT_FIELD(b.ack, "MSH", 9, "ACK^A08");
    built_free(&b);
    build("MSH|^~\\&|A|B|C|D|20240101||ADT|X1|P|2.2\r", &spec, &b);
    ASSERT_FIELD(b.ack, "MSH", 9, "ACK");
    built_free(&b);
}
END_TEST

START_TEST(whole_msh_fields_are_echoed_with_their_components)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AA, 0, "", "");
    built b;
    build("MSH|^~\\&|LAB^1.2.3^ISO|FAC^2.16.840^ISO|EHR|MAIN^X|20240101||ORU^R01^ORU_R01|"
          "ID\\F\\42|P^T|2.5.1^USA\r",
          &spec, &b);
    ASSERT_FIELD(b.ack, "MSH", 3, "EHR");
    ASSERT_FIELD(b.ack, "MSH", 4, "MAIN^X");
    ASSERT_FIELD(b.ack, "MSH", 5, "LAB^1.2.3^ISO");
    ASSERT_FIELD(b.ack, "MSH", 6, "FAC^2.16.840^ISO");
    ASSERT_FIELD(b.ack, "MSH", 11, "P^T");
    ASSERT_FIELD(b.ack, "MSH", 12, "2.5.1^USA");
    /* MSA-2 is MSH-10 byte for byte, escapes included. */
    ASSERT_FIELD(b.ack, "MSA", 2, "ID\\F\\42");
    built_free(&b);
}
END_TEST

START_TEST(missing_processing_id_and_version_get_defaults)
{
    hl7_ack_spec spec =
        make_spec(HL7_ACK_AR, HL7_ERR_UNSUPPORTED_VERSION_ID, "MSH-12 empty", "MSH^1^12");
    built b;
    build("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1||\r", &spec, &b);
    ASSERT_FIELD(b.ack, "MSH", 11, "P");
    ASSERT_FIELD(b.ack, "MSH", 12, "2.5");
    /* The v2.5 layout. */
    ASSERT_FIELD(b.ack, "ERR", 3, "203^Unsupported version id^HL70357");
    ASSERT_FIELD(b.ack, "MSA", 3, "MSH-12 empty");
    built_free(&b);
}
END_TEST

/* ---- separators ----------------------------------------------------------------------- */

START_TEST(a_hash_field_separator_is_reused)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_REQUIRED_FIELD_MISSING, "a#b|c", "PID^1^3");
    built b;
    build("MSH#^~\\&#LAB#NORTH#EHR#MAIN#20240101##ORU^R01#C1#P#2.4\rPID#1\r", &spec, &b);
    assert_starts_with(&b.buf, "MSH#^~\\&#EHR#MAIN#LAB#NORTH#");
    ck_assert_int_eq(hl7_msg_delims(b.ack)->field, '#');
    ASSERT_FIELD(b.ack, "MSA", 2, "C1");
    ASSERT_FIELD(b.ack, "MSA", 3, "a\\F\\b|c");
    assert_decoded(b.ack, hl7_field(b.ack, seg_of(b.ack, "MSA"), 3, 0, 0, 0), "a#b|c");
    ASSERT_FIELD(b.ack, "MSA", 6, "101^Required field missing^HL70357");
    built_free(&b);
}
END_TEST

START_TEST(unusual_encoding_characters_are_reused_for_every_separator)
{
    /* Component $, repetition %, escape !, sub-component @. */
    hl7_ack_spec spec =
        make_spec(HL7_ACK_AE, HL7_ERR_REQUIRED_FIELD_MISSING, "a$b%c!d@e|f^g", "PID^1^3");
    built b;
    build("MSH|$%!@|LAB$1.2$ISO|NORTH|EHR|MAIN|20240101||ORU$R01$ORU_R01|C2|P|2.5.1\r", &spec, &b);
    assert_starts_with(&b.buf, "MSH|$%!@|EHR|MAIN|LAB$1.2$ISO|NORTH|");
    const hl7_delims *d = hl7_msg_delims(b.ack);
    ck_assert_int_eq(d->component, '$');
    ck_assert_int_eq(d->repetition, '%');
    ck_assert_int_eq(d->escape, '!');
    ck_assert_int_eq(d->subcomponent, '@');
    ASSERT_FIELD(b.ack, "MSH", 9, "ACK$R01$ACK");
    ASSERT_FIELD(b.ack, "ERR", 2, "PID$1$3");
    ASSERT_FIELD(b.ack, "ERR", 3, "101$Required field missing$HL70357");
    ASSERT_FIELD(b.ack, "ERR", 8, "a!S!b!R!c!E!d!T!e!F!f^g");
    assert_decoded(b.ack, hl7_field(b.ack, seg_of(b.ack, "ERR"), 8, 0, 0, 0), "a$b%c!d@e|f^g");
    built_free(&b);
    /* v2.2 layout: the ELD's sub-components use @. */
    build("MSH|$%!@|LAB|NORTH|EHR|MAIN|20240101||ORU$R01|C2|P|2.2\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 1, "PID$1$3$101@a!S!b!R!c!E!d!T!e!F!f^g@HL70357");
    built_free(&b);
}
END_TEST

START_TEST(a_location_written_with_the_message_separators_is_accepted)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_REQUIRED_FIELD_MISSING, "x", "PID$1$3");
    built b;
    build("MSH|$%!@|A|B|C|D|20240101||ORU$R01$ORU_R01|C2|P|2.5\r", &spec, &b);
    ASSERT_FIELD(b.ack, "ERR", 2, "PID$1$3");
    built_free(&b);
}
END_TEST

START_TEST(a_message_without_escape_character_gets_a_complete_msh2_and_escaped_text)
{
    /* MSH-2 holds only component and repetition: the ACK adds the usual escape and
     * sub-component characters, so its text can still carry separators. */
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, "a|b^c~d\re&f", "PID^1^3");
    built b;
    build("MSH|^~|A|B|C|D|20240101||ORU^R01^ORU_R01|C3|P|2.5\r", &spec, &b);
    ck_assert_int_eq(hl7_msg_delims(b.msg)->escape, 0);
    assert_starts_with(&b.buf, "MSH|^~\\&|");
    ASSERT_FIELD(b.ack, "MSA", 2, "C3");
    assert_decoded(b.ack, hl7_field(b.ack, seg_of(b.ack, "ERR"), 8, 0, 0, 0), "a|b^c~d\re&f");
    built_free(&b);
}
END_TEST

START_TEST(a_message_with_empty_encoding_characters_still_gets_a_complete_msh2)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AR, HL7_ERR_APPLICATION_INTERNAL, "bad MSH-2", "");
    const char *text = "MSH||A|B|C|D|20240101||ADT|C4|P|2.5\r";
    hl7_msg_t *m = parse_text(text, strlen(text));
    ck_assert_int_eq(hl7_msg_delims(m)->component, 0);
    px_buf out;
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build(m, &spec, &out, NULL), PX_OK);
    assert_starts_with(&out, "MSH|^~\\&|");
    ck_assert_ptr_null(memchr(out.data, '\0', out.len));
    hl7_msg_t *ack = parse_ack(&out);
    ASSERT_FIELD(ack, "MSA", 2, "C4");
    hl7_msg_destroy(ack);
    hl7_msg_destroy(m);
    px_buf_free(&out);
}
END_TEST

START_TEST(a_text_with_separators_never_splits_the_segment)
{
    const char *text = "x|y\rMSH|^~\\&|evil\r~^&\\";
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, text, "PID^1^3|x");
    built b;
    build("MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|C5|P|2.5\r", &spec, &b);
    ck_assert_uint_eq(hl7_segment_count(b.ack), 3);
    size_t err = seg_of(b.ack, "ERR");
    ck_assert_uint_eq(hl7_field_count(b.ack, err), 8);
    assert_decoded(b.ack, hl7_field(b.ack, err, 8, 0, 0, 0), text);
    assert_decoded(b.ack, hl7_field(b.ack, seg_of(b.ack, "MSA"), 3, 0, 0, 0), text);
    ck_assert_ptr_nonnull(strstr(b.buf.data, "x\\F\\y\\X0D\\MSH\\F\\"));
    /* The location's pieces are escaped too. */
    assert_value(b.ack, "ERR", 2, 1, 3, 0, "3\\F\\x");
    built_free(&b);
}
END_TEST

/* ---- modes and codes ---------------------------------------------------------------- */

static hl7_ack_mode mode_of(const char *msg_text, hl7_ack_mode configured)
{
    hl7_msg_t *m = parse_text(msg_text, strlen(msg_text));
    hl7_msh msh;
    ck_assert_int_eq(hl7_msh_read(m, &msh, NULL), PX_OK);
    hl7_ack_mode mode = hl7_ack_mode_for(&msh, configured);
    hl7_msg_destroy(m);
    return mode;
}

#define MSG_ORIGINAL "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|M1|P|2.5\r"
#define MSG_AL_AL    "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|M1|P|2.5|||AL|AL\r"
#define MSG_APP_ONLY "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|M1|P|2.5||||NE\r"
#define MSG_NULLS    "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|M1|P|2.5|||\"\"| \r"

START_TEST(the_mode_comes_from_msh15_and_msh16_unless_forced)
{
    ck_assert_int_eq(mode_of(MSG_ORIGINAL, HL7_ACK_MODE_FROM_MSH), HL7_ACK_MODE_ORIGINAL);
    ck_assert_int_eq(mode_of(MSG_AL_AL, HL7_ACK_MODE_FROM_MSH), HL7_ACK_MODE_ENHANCED);
    ck_assert_int_eq(mode_of(MSG_APP_ONLY, HL7_ACK_MODE_FROM_MSH), HL7_ACK_MODE_ENHANCED);
    ck_assert_int_eq(mode_of(MSG_NULLS, HL7_ACK_MODE_FROM_MSH), HL7_ACK_MODE_ORIGINAL);
    ck_assert_int_eq(mode_of(MSG_AL_AL, HL7_ACK_MODE_ORIGINAL), HL7_ACK_MODE_ORIGINAL);
    ck_assert_int_eq(mode_of(MSG_ORIGINAL, HL7_ACK_MODE_ENHANCED), HL7_ACK_MODE_ENHANCED);
    ck_assert_int_eq(hl7_ack_mode_for(NULL, HL7_ACK_MODE_FROM_MSH), HL7_ACK_MODE_ORIGINAL);
}
END_TEST

START_TEST(codes_follow_the_mode)
{
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ORIGINAL, 'A'), HL7_ACK_AA);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ORIGINAL, 'E'), HL7_ACK_AE);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ORIGINAL, 'R'), HL7_ACK_AR);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ENHANCED, 'A'), HL7_ACK_CA);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ENHANCED, 'E'), HL7_ACK_CE);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ENHANCED, 'R'), HL7_ACK_CR);
    ck_assert_int_eq(hl7_ack_code_for(HL7_ACK_MODE_ENHANCED, '?'), HL7_ACK_CR);
    /* 200-203 reject in both modes; 207 is AR in original mode, CE in enhanced mode. */
    for (unsigned c = 200; c <= 203; c++) {
        ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ORIGINAL, c), HL7_ACK_AR);
        ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ENHANCED, c), HL7_ACK_CR);
    }
    ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ORIGINAL, 207), HL7_ACK_AR);
    ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ENHANCED, 207), HL7_ACK_CE);
    ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ORIGINAL, 101), HL7_ACK_AE);
    ck_assert_int_eq(hl7_ack_code_for_error(HL7_ACK_MODE_ENHANCED, 101), HL7_ACK_CE);
}
END_TEST

/* The NAK the proxy sends when its ledger fails: code picked from the message's mode. */
static void assert_internal_error_nak(const char *msg_text, const char *want_code)
{
    hl7_msg_t *m = parse_text(msg_text, strlen(msg_text));
    hl7_msh msh;
    ck_assert_int_eq(hl7_msh_read(m, &msh, NULL), PX_OK);
    hl7_ack_mode mode = hl7_ack_mode_for(&msh, HL7_ACK_MODE_FROM_MSH);
    hl7_ack_spec spec = make_spec(hl7_ack_code_for_error(mode, HL7_ERR_APPLICATION_INTERNAL),
                                  HL7_ERR_APPLICATION_INTERNAL, "storage unavailable", "");
    px_buf out;
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build(m, &spec, &out, NULL), PX_OK);
    hl7_msg_t *ack = parse_ack(&out);
    ASSERT_FIELD(ack, "MSA", 1, want_code);
    ASSERT_FIELD(ack, "MSA", 2, "M1");
    ASSERT_FIELD(ack, "ERR", 3, "207^Application internal error^HL70357");
    ASSERT_FIELD(ack, "MSH", 15, "NE");
    ASSERT_FIELD(ack, "MSH", 16, "NE");
    hl7_msg_destroy(ack);
    hl7_msg_destroy(m);
    px_buf_free(&out);
}

START_TEST(an_internal_error_is_ar_in_original_mode_and_ce_in_enhanced_mode)
{
    assert_internal_error_nak(MSG_ORIGINAL, "AR");
    assert_internal_error_nak(MSG_AL_AL, "CE");
    assert_internal_error_nak(MSG_APP_ONLY, "CE");
}
END_TEST

START_TEST(ack_wanted_follows_the_acknowledgment_condition)
{
    const struct {
        const char *cond;
        bool accept, error;
    } cases[] = {
        {"AL", true, true},  {"NE", false, false}, {"ER", false, true},
        {"SU", true, false}, {"", true, true},     {" ER ", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        px_str c = px_str_from_cstr(cases[i].cond);
        ck_assert_int_eq(hl7_ack_wanted(c, HL7_ACK_CA), cases[i].accept);
        ck_assert_int_eq(hl7_ack_wanted(c, HL7_ACK_AA), cases[i].accept);
        ck_assert_int_eq(hl7_ack_wanted(c, HL7_ACK_CE), cases[i].error);
        ck_assert_int_eq(hl7_ack_wanted(c, HL7_ACK_CR), cases[i].error);
        ck_assert_int_eq(hl7_ack_wanted(c, HL7_ACK_AR), cases[i].error);
    }
}
END_TEST

START_TEST(code_names_parse_back)
{
    for (int c = HL7_ACK_AA; c <= HL7_ACK_CR; c++) {
        hl7_ack_code parsed;
        const char *name = hl7_ack_code_name((hl7_ack_code)c);
        ck_assert_uint_eq(strlen(name), 2);
        ck_assert(hl7_ack_code_parse(px_str_from_cstr(name), &parsed));
        ck_assert_int_eq(parsed, c);
    }
    ck_assert_str_eq(hl7_ack_code_name(HL7_ACK_CE), "CE");
    ck_assert_str_eq(hl7_ack_code_name((hl7_ack_code)42), "??");
    hl7_ack_code parsed;
    ck_assert(!hl7_ack_code_parse(PX_LIT("AX"), &parsed));
    ck_assert(!hl7_ack_code_parse(PX_LIT("A"), &parsed));
    ck_assert(!hl7_ack_code_parse(PX_LIT("AAA"), &parsed));
    ck_assert(!hl7_ack_code_parse(PX_LIT("aa"), &parsed));
    ck_assert(!hl7_ack_code_parse(PX_STR_NULL, &parsed));
}
END_TEST

/* ---- failures ------------------------------------------------------------------------ */

START_TEST(the_buffer_maximum_is_enforced_and_the_buffer_left_as_it_was)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, NASTY_TEXT, "PID^1^3");
    hl7_msg_t *m = parse_text(MSG_ORIGINAL, strlen(MSG_ORIGINAL));
    px_buf full;
    px_buf_init(&full, 1u << 16);
    ck_assert_int_eq(hl7_ack_build(m, &spec, &full, NULL), PX_OK);
    /* Exactly the size fits, one byte less does not, wherever the limit falls. */
    for (size_t max = full.len; max + 40 > full.len && max > 0; max--) {
        px_buf out;
        px_error err;
        px_buf_init(&out, max + 2);
        ck_assert_int_eq(px_buf_append_cstr(&out, "@@"), PX_OK);
        px_err rc = hl7_ack_build(m, &spec, &out, &err);
        if (max == full.len) {
            ck_assert_int_eq(rc, PX_OK);
            ck_assert_mem_eq(out.data + 2, full.data, full.len);
        } else {
            ck_assert_int_eq(rc, PX_ERR_TOO_LARGE);
            ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
            ck_assert_uint_eq(out.len, 2);
            ck_assert_str_eq(out.data, "@@");
        }
        px_buf_free(&out);
    }
    px_buf out;
    px_buf_init(&out, 16);
    ck_assert_int_eq(hl7_ack_build_bare(PX_LIT("C1"), PX_STR_NULL, &spec, &out, NULL),
                     PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 0);
    px_buf_free(&out);
    px_buf_free(&full);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(allocation_failures_give_nomem_and_leak_nothing)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, NASTY_TEXT, "PID^1^3");
    hl7_msg_t *m = parse_text(MSG_ORIGINAL, strlen(MSG_ORIGINAL));
    int failures = 0;
    for (long n = 0; n < 64; n++) {
        px_buf out;
        px_buf_init(&out, 1u << 16);
        px_alloc_fail_after(n);
        px_err rc = hl7_ack_build(m, &spec, &out, NULL);
        px_alloc_fail_after(-1);
        px_buf_free(&out);
        if (rc == PX_OK)
            break;
        ck_assert_int_eq(rc, PX_ERR_NOMEM);
        failures++;
    }
    ck_assert_int_gt(failures, 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(a_bad_code_or_severity_is_refused)
{
    hl7_msg_t *m = parse_text(MSG_ORIGINAL, strlen(MSG_ORIGINAL));
    px_buf out;
    px_error err;
    px_buf_init(&out, 4096);
    hl7_ack_spec spec = make_spec((hl7_ack_code)9, 0, "", "");
    ck_assert_int_eq(hl7_ack_build(m, &spec, &out, &err), PX_ERR_INVAL);
    spec = make_spec(HL7_ACK_AE, HL7_ERR_DATA_TYPE, "x", "");
    spec.severity = 'X';
    ck_assert_int_eq(hl7_ack_build(m, &spec, &out, &err), PX_ERR_INVAL);
    ck_assert_int_eq(hl7_ack_build_bare(PX_LIT("C"), PX_STR_NULL, &spec, &out, &err), PX_ERR_INVAL);
    ck_assert_uint_eq(out.len, 0);
    px_buf_free(&out);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(a_message_without_msh_cannot_be_acknowledged)
{
    const char *text = "BHS|^~\\&|A|B\rBTS|0\r";
    hl7_msg_t *m = parse_text(text, strlen(text));
    hl7_ack_spec spec = make_spec(HL7_ACK_AA, 0, "", "");
    px_buf out;
    px_error err;
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build(m, &spec, &out, &err), PX_ERR_PARSE);
    ck_assert_uint_eq(out.len, 0);
    px_buf_free(&out);
    hl7_msg_destroy(m);
}
END_TEST

/* ---- bare NAKs ------------------------------------------------------------------------ */

START_TEST(a_bare_nak_uses_default_separators_and_escapes_what_it_echoes)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_AR, HL7_ERR_APPLICATION_INTERNAL, "frame unreadable", "");
    px_buf out;
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build_bare(PX_LIT("C|1^2"), PX_STR_NULL, &spec, &out, NULL), PX_OK);
    hl7_msg_t *ack = parse_ack(&out);
    assert_starts_with(&out, "MSH|^~\\&|||||20240102030405||ACK|ACK-77|P|2.5|||NE|NE\rMSA|AR|");
    ASSERT_FIELD(ack, "MSA", 1, "AR");
    assert_decoded(ack, hl7_field(ack, seg_of(ack, "MSA"), 2, 0, 0, 0), "C|1^2");
    ASSERT_FIELD(ack, "ERR", 3, "207^Application internal error^HL70357");
    ASSERT_FIELD(ack, "ERR", 8, "frame unreadable");
    hl7_msg_destroy(ack);
    px_buf_free(&out);

    /* A version that was found sets the layout: v2.3 has ERR-1 and MSA-6. */
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build_bare(PX_STR_NULL, PX_LIT("2.3"), &spec, &out, NULL), PX_OK);
    ack = parse_ack(&out);
    ASSERT_FIELD(ack, "MSH", 12, "2.3");
    ASSERT_FIELD(ack, "MSH", 9, "ACK");
    ASSERT_FIELD(ack, "MSA", 2, "");
    ASSERT_FIELD(ack, "ERR", 1, "^^^207&frame unreadable&HL70357");
    ASSERT_FIELD(ack, "MSA", 6, "207^Application internal error^HL70357");
    hl7_msg_destroy(ack);
    px_buf_free(&out);

    /* An unreadable version is echoed (escaped) with the v2.5 layout. */
    px_buf_init(&out, 4096);
    ck_assert_int_eq(hl7_ack_build_bare(PX_LIT("C2"), PX_LIT("V|2"), &spec, &out, NULL), PX_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "|P|V\\F\\2|||NE|NE\r"));
    ck_assert_ptr_nonnull(strstr(out.data, "\rERR||"));
    px_buf_free(&out);
}
END_TEST

/* ---- reading ACKs --------------------------------------------------------------------- */

static px_err read_ack(const char *text, hl7_ack_info *info, px_error *err)
{
    hl7_msg_t *m = parse_text(text, strlen(text));
    px_err rc = hl7_ack_read(m, info, err);
    if (rc == PX_OK) {
        /* Views must stay inside the parsed bytes. */
        ck_assert(info->acked_control_id.len == 0 ||
                  (info->acked_control_id.ptr >= text &&
                   info->acked_control_id.ptr + info->acked_control_id.len <= text + strlen(text)));
    }
    hl7_msg_destroy(m);
    return rc;
}

START_TEST(reading_an_ack_gives_code_control_id_and_text)
{
    hl7_ack_info info;
    ck_assert_int_eq(
        read_ack("MSH|^~\\&|A|B|C|D|1||ACK^A01^ACK|9|P|2.5\rMSA|AE|C77|bad PID\r", &info, NULL),
        PX_OK);
    ck_assert_int_eq(info.code, HL7_ACK_AE);
    ck_assert(px_str_eq_cstr(info.acked_control_id, "C77"));
    ck_assert(px_str_eq_cstr(info.text, "bad PID"));
    /* Vendors pad MSA-1; some send a blank MSA-2 and no text. */
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.3\rMSA| CA |\r", &info, NULL), PX_OK);
    ck_assert_int_eq(info.code, HL7_ACK_CA);
    ck_assert_uint_eq(info.acked_control_id.len, 0);
    ck_assert_uint_eq(info.text.len, 0);
}
END_TEST

START_TEST(reading_a_malformed_ack_fails_with_parse)
{
    hl7_ack_info info;
    px_error err;
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rERR|||207\r", &info, &err),
                     PX_ERR_PARSE);
    ck_assert_ptr_nonnull(strstr(err.msg, "MSA"));
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rMSA|OK|C1\r", &info, &err),
                     PX_ERR_PARSE);
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rMSA||C1\r", &info, &err),
                     PX_ERR_PARSE);
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rMSA\r", &info, &err),
                     PX_ERR_PARSE);
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rMSA|aa|C1\r", &info, &err),
                     PX_ERR_PARSE);
    ck_assert_int_eq(read_ack("MSH|^~\\&|A|B|C|D|1||ACK|9|P|2.5\rMSA|AA^X|C1\r", &info, &err),
                     PX_ERR_PARSE);
}
END_TEST

START_TEST(an_ack_we_built_reads_back)
{
    hl7_ack_spec spec = make_spec(HL7_ACK_CR, HL7_ERR_UNSUPPORTED_EVENT_CODE, "no A99", "MSH^1^9");
    built b;
    build("MSH|^~\\&|A|B|C|D|20240101||ADT^A99^ADT_A01|Q-5|P|2.5.1|||AL|NE\r", &spec, &b);
    hl7_ack_info info;
    ck_assert_int_eq(hl7_ack_read(b.ack, &info, NULL), PX_OK);
    ck_assert_int_eq(info.code, HL7_ACK_CR);
    ck_assert(px_str_eq_cstr(info.acked_control_id, "Q-5"));
    ck_assert(px_str_eq_cstr(info.text, "no A99"));
    built_free(&b);
}
END_TEST

TCase *hl7_tcase_ack(void)
{
    TCase *tc = tcase_create("ack");
    tcase_add_loop_test(tc, ack_layout_follows_the_dictionary_of_each_version, 0, (int)NVERSIONS);
    tcase_add_test(tc, an_accept_has_no_err_segment_and_no_text);
    tcase_add_test(tc, the_error_location_keeps_only_what_the_version_can_hold);
    tcase_add_test(tc, msh9_echoes_the_trigger_only_when_the_message_has_one);
    tcase_add_test(tc, whole_msh_fields_are_echoed_with_their_components);
    tcase_add_test(tc, missing_processing_id_and_version_get_defaults);
    tcase_add_test(tc, a_hash_field_separator_is_reused);
    tcase_add_test(tc, unusual_encoding_characters_are_reused_for_every_separator);
    tcase_add_test(tc, a_location_written_with_the_message_separators_is_accepted);
    tcase_add_test(tc, a_message_without_escape_character_gets_a_complete_msh2_and_escaped_text);
    tcase_add_test(tc, a_message_with_empty_encoding_characters_still_gets_a_complete_msh2);
    tcase_add_test(tc, a_text_with_separators_never_splits_the_segment);
    tcase_add_test(tc, the_mode_comes_from_msh15_and_msh16_unless_forced);
    tcase_add_test(tc, codes_follow_the_mode);
    tcase_add_test(tc, an_internal_error_is_ar_in_original_mode_and_ce_in_enhanced_mode);
    tcase_add_test(tc, ack_wanted_follows_the_acknowledgment_condition);
    tcase_add_test(tc, code_names_parse_back);
    tcase_add_test(tc, the_buffer_maximum_is_enforced_and_the_buffer_left_as_it_was);
    tcase_add_test(tc, allocation_failures_give_nomem_and_leak_nothing);
    tcase_add_test(tc, a_bad_code_or_severity_is_refused);
    tcase_add_test(tc, a_message_without_msh_cannot_be_acknowledged);
    tcase_add_test(tc, a_bare_nak_uses_default_separators_and_escapes_what_it_echoes);
    tcase_add_test(tc, reading_an_ack_gives_code_control_id_and_text);
    tcase_add_test(tc, reading_a_malformed_ack_fails_with_parse);
    tcase_add_test(tc, an_ack_we_built_reads_back);
    return tc;
}
