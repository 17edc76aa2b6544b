/* Field paths: parsing, formatting round trips, refusals, and reading values by path. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "hl7/hl7.h"
#include "hl7/tcases.h"

static const char MESSAGE[] =
    "MSH|^~\\&|LAB|FAC|EHR|RFAC|20240101120000||ORU^R01^ORU_R01|CTRL7|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR~MRN2^^^OTHER&1.2.3&ISO^PI||Doe&van^Jane^Q||19700101|F\r"
    "OBR|1|ORD1|FIL1|CBC^Blood count\r"
    "OBX|1|NM|WBC^White cells||7.1|10*9/L\r"
    "OBX|2|NM|RBC^Red cells||4.5|10*12/L\r"
    "OBX|3|NM|HGB^Haemoglobin||135^g/L|g/L\r"
    "OBX|4|ST|NOTE||\"\"\r";

#define assert_view(v, text)                                                                       \
    do {                                                                                           \
        px_str v_ = (v);                                                                           \
        const char *t_ = (text);                                                                   \
        ck_assert_msg(v_.len == strlen(t_) && (v_.len == 0 || memcmp(v_.ptr, t_, v_.len) == 0),    \
                      "expected \"%s\", got \"%.*s\"", t_, (int)v_.len,                            \
                      v_.ptr != NULL ? v_.ptr : "");                                               \
    } while (0)

static hl7_msg_t *parse_message(void)
{
    hl7_msg_t *m = NULL;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    ck_assert_int_eq(hl7_parse(m, MESSAGE, sizeof(MESSAGE) - 1, 0, &err), PX_OK);
    return m;
}

static hl7_path parse_path(const char *text)
{
    hl7_path p;
    px_error err;
    px_err rc = hl7_path_parse(px_str_from_cstr(text), &p, &err);
    ck_assert_msg(rc == PX_OK, "%s: %s", text, err.msg);
    return p;
}

static px_str get(const hl7_msg_t *m, const char *text)
{
    hl7_path p = parse_path(text);
    px_str v;
    ck_assert_msg(hl7_path_get(m, &p, &v), "%s: segment absent", text);
    return v;
}

static const struct {
    const char *text;
    const char *segment;
    uint32_t occurrence, field, rep, comp, sub;
} PATHS[] = {
    {"PID-3", "PID", 1, 3, 0, 0, 0},      {"PID-3[2].1", "PID", 1, 3, 2, 1, 0},
    {"OBX[3]-5.1", "OBX", 3, 5, 1, 1, 0}, {"PID-5.1.1", "PID", 1, 5, 1, 1, 1},
    {"MSH-9.2", "MSH", 1, 9, 1, 2, 0},    {"MSH-1", "MSH", 1, 1, 0, 0, 0},
    {"MSH-2", "MSH", 1, 2, 0, 0, 0},      {"PID-3[2]", "PID", 1, 3, 2, 0, 0},
    {"PID-3[1]", "PID", 1, 3, 1, 0, 0},   {"OBX[12]-5[3].2.7", "OBX", 12, 5, 3, 2, 7},
    {"ZB1-1", "ZB1", 1, 1, 0, 0, 0},      {"PID-3[2].4.2", "PID", 1, 3, 2, 4, 2},
    {"IN1[2]-17", "IN1", 2, 17, 0, 0, 0},
};

START_TEST(paths_parse_into_their_parts)
{
    for (size_t i = 0; i < sizeof(PATHS) / sizeof(PATHS[0]); i++) {
        hl7_path p = parse_path(PATHS[i].text);
        ck_assert_str_eq(p.segment, PATHS[i].segment);
        ck_assert_uint_eq(p.occurrence, PATHS[i].occurrence);
        ck_assert_uint_eq(p.field, PATHS[i].field);
        ck_assert_uint_eq(p.rep, PATHS[i].rep);
        ck_assert_uint_eq(p.comp, PATHS[i].comp);
        ck_assert_uint_eq(p.sub, PATHS[i].sub);
    }
}
END_TEST

START_TEST(formatting_a_parsed_path_gives_the_same_text)
{
    for (size_t i = 0; i < sizeof(PATHS) / sizeof(PATHS[0]); i++) {
        hl7_path p = parse_path(PATHS[i].text);
        char out[64];
        int n = hl7_path_format(&p, out, sizeof(out));
        ck_assert_int_eq(n, (int)strlen(PATHS[i].text));
        ck_assert_str_eq(out, PATHS[i].text);
    }
}
END_TEST

START_TEST(parsing_a_formatted_path_gives_the_same_path)
{
    static const char *names[] = {"MSH", "PID", "OBX", "Z99"};
    for (uint32_t k = 0; k < 4 * 3 * 4 * 4 * 3; k++) {
        hl7_path p = {.occurrence = 1 + k % 3, .field = 1 + (k / 3) % 4 * 7};
        memcpy(p.segment, names[(k / 12) % 4], 4);
        p.comp = (k / 48) % 4;
        p.sub = p.comp > 0 ? (k / 192) % 3 : 0;
        p.rep = p.comp > 0 ? 1 + k % 2 : k % 3;
        char text[64];
        int n = hl7_path_format(&p, text, sizeof(text));
        ck_assert_int_gt(n, 0);
        hl7_path q = parse_path(text);
        ck_assert_str_eq(q.segment, p.segment);
        ck_assert_uint_eq(q.occurrence, p.occurrence);
        ck_assert_uint_eq(q.field, p.field);
        ck_assert_uint_eq(q.rep, p.rep);
        ck_assert_uint_eq(q.comp, p.comp);
        ck_assert_uint_eq(q.sub, p.sub);
    }
}
END_TEST

START_TEST(formatting_into_a_small_buffer_truncates_safely)
{
    hl7_path p = parse_path("OBX[3]-5[2].1.2");
    char small[6];
    memset(small, 'x', sizeof(small));
    int n = hl7_path_format(&p, small, sizeof(small));
    ck_assert_int_eq(n, (int)strlen("OBX[3]-5[2].1.2"));
    ck_assert_str_eq(small, "OBX[3");
    ck_assert_int_eq(hl7_path_format(&p, NULL, 0), n);
}
END_TEST

START_TEST(malformed_paths_are_refused_with_a_reason)
{
    static const char *bad[] = {
        "",        "PI",       "pid-3",     "PID",      "PID-",         "PID-0",
        "PID-3.",  "PID-3[0]", "PID-3[2",   "PID[0]-3", "PID-3.1.2.3",  "PID-3x",
        "PID-3[]", "PID3",     "PID--3",    "PID-3.0",  "PID-3.1.0",    "PI D-3",
        "PID-3 ",  "PID[2-3",  "PID-3[2]x", "PID-a",    "PID-99999999", "PID-3[1][2]",
        "PIDX-3",  "PID-3..1", "PID-+3",    "PID-3.-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hl7_path p;
        px_error err;
        px_error_clear(&err);
        px_err rc = hl7_path_parse(px_str_from_cstr(bad[i]), &p, &err);
        ck_assert_msg(rc == PX_ERR_PARSE, "\"%s\" was accepted", bad[i]);
        ck_assert_int_eq(err.code, PX_ERR_PARSE);
        ck_assert_msg(strncmp(err.msg, "path: ", 6) == 0, "no reason for \"%s\"", bad[i]);
    }
}
END_TEST

START_TEST(paths_read_values_from_a_message)
{
    hl7_msg_t *m = parse_message();
    assert_view(get(m, "PID-3"), "MRN1^^^HOSP^MR~MRN2^^^OTHER&1.2.3&ISO^PI");
    assert_view(get(m, "PID-3[2].1"), "MRN2");
    assert_view(get(m, "PID-3[2].4.2"), "1.2.3");
    assert_view(get(m, "PID-3.5"), "MR");
    assert_view(get(m, "OBX[3]-5.1"), "135");
    assert_view(get(m, "OBX[3]-5"), "135^g/L");
    assert_view(get(m, "OBX-3.2"), "White cells");
    assert_view(get(m, "PID-5.1.1"), "Doe");
    assert_view(get(m, "PID-5.1.2"), "van");
    assert_view(get(m, "MSH-9.2"), "R01");
    assert_view(get(m, "MSH-1"), "|");
    assert_view(get(m, "MSH-2"), "^~\\&");
    assert_view(get(m, "MSH-10"), "CTRL7");
    ck_assert(hl7_is_null(get(m, "OBX[4]-5")));
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(absent_segments_and_fields_read_as_empty)
{
    hl7_msg_t *m = parse_message();
    hl7_path p = parse_path("OBX[5]-5");
    px_str v = PX_LIT("stale");
    ck_assert(!hl7_path_get(m, &p, &v));
    ck_assert_uint_eq(v.len, 0);
    ck_assert_ptr_null(v.ptr);
    p = parse_path("PV1-2");
    ck_assert(!hl7_path_get(m, &p, &v));
    /* The segment is there but the field is not: found, and empty. */
    p = parse_path("OBX[4]-30.2");
    v = PX_LIT("stale");
    ck_assert(hl7_path_get(m, &p, &v));
    ck_assert_uint_eq(v.len, 0);
    p = parse_path("PID-3[3]");
    ck_assert(hl7_path_get(m, &p, &v));
    ck_assert_uint_eq(v.len, 0);
    /* A hand-built path with occurrence 0 means the first. */
    hl7_path h = {.segment = "OBX", .occurrence = 0, .field = 3, .rep = 1, .comp = 1};
    ck_assert(hl7_path_get(m, &h, &v));
    assert_view(v, "WBC");
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(iteration_helpers_walk_segments_repetitions_and_components)
{
    hl7_msg_t *m = parse_message();
    char names[64] = "";
    size_t used = 0;
    HL7_FOREACH_SEGMENT(m, s) {
        px_str n = hl7_segment_name(m, s);
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%.*s ", (int)n.len, n.ptr);
    }
    ck_assert_str_eq(names, "MSH PID OBR OBX OBX OBX OBX ");
    ptrdiff_t pid = hl7_segment_find(m, PX_LIT("PID"), 1);
    ck_assert_int_eq(pid, 1);
    size_t reps = hl7_rep_count(m, 1, 3);
    ck_assert_uint_eq(reps, 2);
    const char *ids[] = {"MRN1", "MRN2"};
    const char *types[] = {"MR", "PI"};
    for (size_t r = 1; r <= reps; r++) {
        assert_view(hl7_field(m, 1, 3, r, 1, 0), ids[r - 1]);
        ck_assert_uint_eq(hl7_comp_count(m, 1, 3, r), 5);
        assert_view(hl7_field(m, 1, 3, r, 5, 0), types[r - 1]);
    }
    px_str authority = hl7_field(m, 1, 3, 2, 4, 0);
    ck_assert_uint_eq(hl7_piece_count(authority, '&'), 3);
    assert_view(hl7_piece(authority, '&', 3), "ISO");
    size_t obx = 0;
    for (size_t k = 1; hl7_segment_find(m, PX_LIT("OBX"), k) >= 0; k++)
        obx++;
    ck_assert_uint_eq(obx, 4);
    hl7_msg_destroy(m);
}
END_TEST

TCase *hl7_tcase_path(void)
{
    TCase *tc = tcase_create("path");
    tcase_add_test(tc, paths_parse_into_their_parts);
    tcase_add_test(tc, formatting_a_parsed_path_gives_the_same_text);
    tcase_add_test(tc, parsing_a_formatted_path_gives_the_same_path);
    tcase_add_test(tc, formatting_into_a_small_buffer_truncates_safely);
    tcase_add_test(tc, malformed_paths_are_refused_with_a_reason);
    tcase_add_test(tc, paths_read_values_from_a_message);
    tcase_add_test(tc, absent_segments_and_fields_read_as_empty);
    tcase_add_test(tc, iteration_helpers_walk_segments_repetitions_and_components);
    return tc;
}
