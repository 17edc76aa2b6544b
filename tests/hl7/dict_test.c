/* The compiled HL7 name dictionary (hl7/dict.h): known entries, version differences and
 * fallback, unknown names, and an entry-by-entry comparison with the JSON it was generated
 * from. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "hl7/dict.h"
#include "hl7/tcases.h"
#include "support.h"

static const hl7_dict_version *ver(const char *name)
{
    const hl7_dict_version *v = hl7_dict_version_find(px_str_from_cstr(name));
    ck_assert_ptr_nonnull(v);
    return v;
}

START_TEST(pid5_in_2_5_is_the_patient_name_of_type_xpn)
{
    hl7_dict_entry e;
    ck_assert(hl7_dict_field(ver("2.5"), PX_LIT("PID"), 5, &e));
    ck_assert_str_eq(e.name, "Patient Name");
    ck_assert_str_eq(e.datatype, "XPN");
    ck_assert_uint_eq(e.max_reps, 0);
    ck_assert_int_eq(e.opt, HL7_DICT_OPT_REQUIRED);
    ck_assert_str_eq(hl7_dict_segment(ver("2.5"), PX_LIT("PID")), "Patient Identification");
    ck_assert_uint_eq(hl7_dict_field_count(ver("2.5"), PX_LIT("PID")), 39);
}
END_TEST

START_TEST(components_are_named_per_data_type_and_version)
{
    hl7_dict_entry e;
    ck_assert(hl7_dict_component(ver("2.5"), PX_LIT("XPN"), 1, &e));
    ck_assert_str_eq(e.name, "Family Name");
    ck_assert_str_eq(e.datatype, "FN");
    ck_assert(hl7_dict_component(ver("2.5"), PX_LIT("XPN"), 2, &e));
    ck_assert_str_eq(e.name, "Given Name");
    ck_assert(hl7_dict_component(ver("2.5"), PX_LIT("CX"), 1, &e));
    ck_assert_str_eq(e.name, "ID Number");
    ck_assert(hl7_dict_component(ver("2.3"), PX_LIT("CX"), 1, &e));
    ck_assert_str_eq(e.name, "ID");
    ck_assert(hl7_dict_component(ver("2.3"), PX_LIT("XPN"), 1, &e));
    ck_assert_str_eq(e.datatype, "ST");
    ck_assert(hl7_dict_component(ver("2.5"), PX_LIT("MSG"), 3, &e));
    ck_assert_str_eq(e.name, "Message Structure");
    ck_assert_str_eq(hl7_dict_datatype(ver("2.5"), PX_LIT("XPN")), "Extended Person Name");
    ck_assert_uint_eq(hl7_dict_component_count(ver("2.5"), PX_LIT("XPN")), 14);
    ck_assert_uint_eq(hl7_dict_component_count(ver("2.7"), PX_LIT("CWE")), 22);
    /* Primitive types are known but have no components. */
    ck_assert_ptr_nonnull(hl7_dict_datatype(ver("2.5"), PX_LIT("ST")));
    ck_assert_uint_eq(hl7_dict_component_count(ver("2.5"), PX_LIT("ST")), 0);
    ck_assert(!hl7_dict_component(ver("2.5"), PX_LIT("ST"), 1, &e));
    ck_assert(!hl7_dict_component(ver("2.5"), PX_LIT("XPN"), 15, &e));
    ck_assert(!hl7_dict_component(ver("2.5"), PX_LIT("XPN"), 0, &e));
}
END_TEST

START_TEST(subcomponents_are_found_through_the_component_type)
{
    hl7_dict_entry e;
    /* 2.5: XPN.1 is FN, whose first component is Surname. */
    ck_assert(hl7_dict_subcomponent(ver("2.5"), PX_LIT("XPN"), 1, 1, &e));
    ck_assert_str_eq(e.name, "Surname");
    /* CX.4 is HD: Namespace ID, Universal ID, Universal ID Type. */
    ck_assert(hl7_dict_subcomponent(ver("2.5"), PX_LIT("CX"), 4, 2, &e));
    ck_assert_str_eq(e.name, "Universal ID");
    ck_assert_str_eq(e.datatype, "ST");
    /* 2.3: XPN.1 is a plain ST. */
    ck_assert(!hl7_dict_subcomponent(ver("2.3"), PX_LIT("XPN"), 1, 1, &e));
    ck_assert(!hl7_dict_subcomponent(ver("2.5"), PX_LIT("CX"), 4, 4, &e));
    ck_assert(!hl7_dict_subcomponent(ver("2.5"), PX_LIT("CX"), 99, 1, &e));
}
END_TEST

START_TEST(versions_2_3_and_2_7_name_the_same_fields_differently)
{
    hl7_dict_entry old, now;
    ck_assert(hl7_dict_field(ver("2.3"), PX_LIT("PID"), 8, &old));
    ck_assert(hl7_dict_field(ver("2.7"), PX_LIT("PID"), 8, &now));
    ck_assert_str_eq(old.name, "Sex");
    ck_assert_str_eq(old.datatype, "IS");
    ck_assert_str_eq(now.name, "Administrative Sex");
    ck_assert_str_eq(now.datatype, "CWE");
    ck_assert_uint_eq(now.table, 1);

    ck_assert(hl7_dict_field(ver("2.3"), PX_LIT("PID"), 7, &old));
    ck_assert(hl7_dict_field(ver("2.7"), PX_LIT("PID"), 7, &now));
    ck_assert_str_eq(old.name, "Date of Birth");
    ck_assert_str_eq(old.datatype, "TS");
    ck_assert_str_eq(now.name, "Date/Time of Birth");
    ck_assert_str_eq(now.datatype, "DTM");

    /* PID-2 is kept in 2.7 for backward compatibility only. */
    ck_assert(hl7_dict_field(ver("2.7"), PX_LIT("PID"), 2, &now));
    ck_assert_int_eq(now.opt, HL7_DICT_OPT_BACKWARD);
    ck_assert(hl7_dict_field(ver("2.3"), PX_LIT("MSH"), 9, &old));
    ck_assert_str_eq(old.datatype, "CM_MSG");

    /* Segments come and go between versions. */
    ck_assert_ptr_null(hl7_dict_segment(ver("2.3"), PX_LIT("SPM")));
    ck_assert_str_eq(hl7_dict_segment(ver("2.5"), PX_LIT("SPM")), "Specimen");
    ck_assert_ptr_null(hl7_dict_segment(ver("2.6"), PX_LIT("PRT")));
    ck_assert_str_eq(hl7_dict_segment(ver("2.7"), PX_LIT("PRT")), "Participation Information");
    ck_assert_uint_eq(hl7_dict_field_count(ver("2.4"), PX_LIT("ERR")), 1);
    ck_assert_uint_eq(hl7_dict_field_count(ver("2.5"), PX_LIT("ERR")), 12);
    ck_assert_ptr_null(hl7_dict_datatype(ver("2.2"), PX_LIT("XPN")));
}
END_TEST

START_TEST(msh1_and_msh2_are_the_separators)
{
    hl7_dict_entry e;
    ck_assert(hl7_dict_field(ver("2.5.1"), PX_LIT("MSH"), 1, &e));
    ck_assert_str_eq(e.name, "Field Separator");
    ck_assert(hl7_dict_field(ver("2.5.1"), PX_LIT("MSH"), 2, &e));
    ck_assert_str_eq(e.name, "Encoding Characters");
    ck_assert(hl7_dict_field(ver("2.5.1"), PX_LIT("MSH"), 10, &e));
    ck_assert_str_eq(e.name, "Message Control ID");
    ck_assert(hl7_dict_field(ver("2.1"), PX_LIT("MSH"), 12, &e));
    ck_assert_str_eq(e.name, "Version id");
}
END_TEST

START_TEST(unknown_and_local_segments_have_no_name)
{
    const hl7_dict_version *v = ver("2.5");
    hl7_dict_entry e = {.name = "untouched"};
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("ZPI")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("ZZZ")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("XYZ")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("pid")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("PI")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("PIDX")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_LIT("")));
    ck_assert_ptr_null(hl7_dict_segment(v, PX_STR_NULL));
    /* The source lists the ED data type among 2.6's segments; it is not a segment. */
    ck_assert_ptr_null(hl7_dict_segment(ver("2.6"), PX_LIT("ED")));
    ck_assert_uint_eq(hl7_dict_field_count(v, PX_LIT("ZPI")), 0);
    ck_assert(!hl7_dict_field(v, PX_LIT("ZPI"), 1, &e));
    ck_assert(!hl7_dict_field(v, PX_LIT("PID"), 0, &e));
    ck_assert(!hl7_dict_field(v, PX_LIT("PID"), 40, &e));
    ck_assert(!hl7_dict_component(v, PX_LIT("ZXP"), 1, &e));
    ck_assert(!hl7_dict_subcomponent(v, PX_LIT("ZXP"), 1, 1, &e));
    ck_assert_ptr_null(hl7_dict_datatype(v, PX_LIT("XP")));
    ck_assert_str_eq(e.name, "untouched");
    /* A missing version names nothing. */
    ck_assert_ptr_null(hl7_dict_segment(NULL, PX_LIT("PID")));
    ck_assert(!hl7_dict_field(NULL, PX_LIT("PID"), 5, &e));
    ck_assert(!hl7_dict_component(NULL, PX_LIT("XPN"), 1, &e));
    ck_assert_str_eq(hl7_dict_version_name(NULL), "");
}
END_TEST

static const struct {
    const char *asked;
    const char *used; /* NULL: no dictionary */
} fallbacks[] = {
    {"2.1", "2.1"}, {"2.2", "2.2"},     {"2.3", "2.3"}, {"2.3.1", "2.3.1"}, {"2.4", "2.4"},
    {"2.5", "2.5"}, {"2.5.1", "2.5.1"}, {"2.6", "2.6"}, {"2.7", "2.7"},     {"2.7.1", "2.7"},
    {"2.8", "2.7"}, {"2.8.2", "2.7"},   {"2.9", "2.7"}, {"2.0", "2.1"},     {"", NULL},
    {"abc", NULL},  {"3.0", NULL},
};

START_TEST(versions_fall_back_to_the_newest_known_not_newer)
{
    const hl7_dict_version *v = hl7_dict_version_find(px_str_from_cstr(fallbacks[_i].asked));
    if (fallbacks[_i].used == NULL) {
        ck_assert_msg(v == NULL, "version '%s' should have no dictionary", fallbacks[_i].asked);
    } else {
        ck_assert_msg(v != NULL, "version '%s' found no dictionary", fallbacks[_i].asked);
        ck_assert_str_eq(hl7_dict_version_name(v), fallbacks[_i].used);
    }
}
END_TEST

START_TEST(a_2_8_message_is_named_with_2_7)
{
    hl7_dict_entry e;
    const hl7_dict_version *v = hl7_dict_version_find(PX_LIT("2.8"));
    ck_assert(hl7_dict_field(v, PX_LIT("PRT"), 1, &e));
    ck_assert_str_eq(e.name, "Participation Instance ID");
    ck_assert(hl7_dict_field(v, PX_LIT("PID"), 8, &e));
    ck_assert_str_eq(e.datatype, "CWE");
}
END_TEST

/* The generator strips blanks around names and turns a mis-encoded en dash into "-". */
static void normalise(const char *in, char *out, size_t out_size)
{
    static const char mojibake[] = "\xd0\xb2\xd0\x82\xe2\x80\x9c";
    size_t n = 0;
    while (*in == ' ')
        in++;
    while (*in != '\0' && n + 1 < out_size) {
        if (strncmp(in, mojibake, sizeof(mojibake) - 1) == 0) {
            out[n++] = '-';
            in += sizeof(mojibake) - 1;
        } else {
            out[n++] = *in++;
        }
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

static json_t *load_json(const char *version, const char *file)
{
    char path[1024];
    int n =
        snprintf(path, sizeof(path), "%s/hl7-dictionary/%s/%s", test_corpus_dir(), version, file);
    ck_assert(n > 0 && (size_t)n < sizeof(path));
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "cannot read %s: %s", path, jerr.text);
    return root;
}

static json_int_t int_or_zero(json_t *item, const char *key)
{
    json_t *v = json_object_get(item, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void check_entry(const char *where, json_t *item, const hl7_dict_entry *e)
{
    char want[256];
    normalise(json_string_value(json_object_get(item, "desc")), want, sizeof(want));
    ck_assert_msg(strcmp(e->name, want) == 0, "%s: '%s' != '%s'", where, e->name, want);
    ck_assert_msg(strcmp(e->datatype, json_string_value(json_object_get(item, "datatype"))) == 0,
                  "%s: datatype %s", where, e->datatype);
    ck_assert_msg((json_int_t)e->max_reps == int_or_zero(item, "rep"), "%s: reps", where);
    ck_assert_msg((json_int_t)e->table == int_or_zero(item, "table"), "%s: table", where);
    ck_assert_msg((json_int_t)e->opt == int_or_zero(item, "opt"), "%s: opt", where);
}

static const char *const source_versions[] = {"2.1", "2.2",   "2.3", "2.3.1", "2.4",
                                              "2.5", "2.5.1", "2.6", "2.7"};

START_TEST(every_entry_matches_the_source_dictionary)
{
    const char *name = source_versions[_i];
    const hl7_dict_version *v = ver(name);
    ck_assert_str_eq(hl7_dict_version_name(v), name);
    char where[128], want[256];
    size_t checked = 0;

    json_t *segments = load_json(name, "segments.json");
    const char *seg;
    json_t *def;
    json_object_foreach(segments, seg, def)
    {
        px_str s = px_str_from_cstr(seg);
        if (s.len != 3) {
            ck_assert_ptr_null(hl7_dict_segment(v, s));
            continue;
        }
        normalise(json_string_value(json_object_get(def, "desc")), want, sizeof(want));
        const char *got = hl7_dict_segment(v, s);
        ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s %s", name, seg);
        json_t *fields = json_object_get(def, "fields");
        ck_assert_uint_eq(hl7_dict_field_count(v, s), json_array_size(fields));
        for (size_t i = 0; i < json_array_size(fields); i++) {
            hl7_dict_entry e;
            snprintf(where, sizeof(where), "%s %s-%zu", name, seg, i + 1);
            ck_assert_msg(hl7_dict_field(v, s, i + 1, &e), "%s missing", where);
            check_entry(where, json_array_get(fields, i), &e);
            checked++;
        }
    }
    json_decref(segments);

    json_t *types = load_json(name, "fields.json");
    json_object_foreach(types, seg, def)
    {
        px_str t = px_str_from_cstr(seg);
        normalise(json_string_value(json_object_get(def, "desc")), want, sizeof(want));
        const char *got = hl7_dict_datatype(v, t);
        ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s type %s", name, seg);
        json_t *comps = json_object_get(def, "subfields");
        ck_assert_uint_eq(hl7_dict_component_count(v, t), json_array_size(comps));
        for (size_t i = 0; i < json_array_size(comps); i++) {
            hl7_dict_entry e;
            snprintf(where, sizeof(where), "%s %s.%zu", name, seg, i + 1);
            ck_assert_msg(hl7_dict_component(v, t, i + 1, &e), "%s missing", where);
            check_entry(where, json_array_get(comps, i), &e);
            checked++;
        }
    }
    json_decref(types);
    ck_assert_uint_gt(checked, 400);
}
END_TEST

TCase *hl7_tcase_dict(void)
{
    TCase *tc = tcase_create("dict");
    tcase_add_test(tc, pid5_in_2_5_is_the_patient_name_of_type_xpn);
    tcase_add_test(tc, components_are_named_per_data_type_and_version);
    tcase_add_test(tc, subcomponents_are_found_through_the_component_type);
    tcase_add_test(tc, versions_2_3_and_2_7_name_the_same_fields_differently);
    tcase_add_test(tc, msh1_and_msh2_are_the_separators);
    tcase_add_test(tc, unknown_and_local_segments_have_no_name);
    tcase_add_loop_test(tc, versions_fall_back_to_the_newest_known_not_newer, 0,
                        (int)(sizeof(fallbacks) / sizeof(fallbacks[0])));
    tcase_add_test(tc, a_2_8_message_is_named_with_2_7);
    tcase_add_loop_test(tc, every_entry_matches_the_source_dictionary, 0,
                        (int)(sizeof(source_versions) / sizeof(source_versions[0])));
    return tc;
}
