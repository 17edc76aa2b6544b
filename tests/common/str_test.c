/* px_str: views, comparison, trimming, sub-views, glob matching and number parsing. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "common/str.h"
#include "common/tcases.h"

static bool glob(const char *pattern, const char *s)
{
    return px_str_glob(px_str_from_cstr(pattern), px_str_from_cstr(s));
}

START_TEST(views_of_c_strings_and_literals_have_the_right_length)
{
    px_str a = px_str_from_cstr("MSH");
    ck_assert_uint_eq(a.len, 3);
    ck_assert_uint_eq(PX_LIT("MSH").len, 3);
    ck_assert_uint_eq(PX_LIT("").len, 0);
    px_str n = px_str_from_cstr(NULL);
    ck_assert_ptr_null(n.ptr);
    ck_assert_uint_eq(n.len, 0);
    ck_assert(px_str_empty(n));
    ck_assert(!px_str_empty(a));
    /* A view can hold NUL bytes and is compared by length, not by terminator. */
    px_str withnul = px_str_make("a\0b", 3);
    ck_assert(!px_str_eq(withnul, PX_LIT("a")));
    ck_assert(px_str_eq(withnul, PX_LIT("a\0b")));
}
END_TEST

START_TEST(equality_compares_bytes_and_lengths)
{
    ck_assert(px_str_eq(PX_LIT("ORU"), px_str_from_cstr("ORU")));
    ck_assert(!px_str_eq(PX_LIT("ORU"), PX_LIT("ORM")));
    ck_assert(!px_str_eq(PX_LIT("OR"), PX_LIT("ORU")));
    ck_assert(!px_str_eq(PX_LIT("oru"), PX_LIT("ORU")));
    ck_assert(px_str_eq(PX_STR_NULL, PX_LIT("")));
    ck_assert(px_str_eq_cstr(PX_LIT("A01"), "A01"));
    ck_assert(!px_str_eq_cstr(PX_LIT("A01"), "A011"));
    ck_assert(px_str_eq_cstr(PX_STR_NULL, NULL));
    ck_assert(px_str_eq_cstr(PX_STR_NULL, ""));
}
END_TEST

START_TEST(case_insensitive_equality_folds_ascii_letters_only)
{
    ck_assert(px_str_eq_nocase(PX_LIT("msh"), PX_LIT("MSH")));
    ck_assert(px_str_eq_nocase(PX_LIT("Adt^A01"), PX_LIT("aDT^a01")));
    ck_assert(!px_str_eq_nocase(PX_LIT("MSH"), PX_LIT("MSHX")));
    ck_assert(!px_str_eq_nocase(PX_LIT("MSH"), PX_LIT("MSI")));
    /* '@' and '`', '[' and '{' differ by 0x20 like letters do, but are not letters. */
    ck_assert(!px_str_eq_nocase(PX_LIT("@"), PX_LIT("`")));
    ck_assert(!px_str_eq_nocase(PX_LIT("["), PX_LIT("{")));
    /* Bytes above ASCII are compared as they are (no locale folding). */
    ck_assert(!px_str_eq_nocase(PX_LIT("\xc9"), PX_LIT("\xe9")));
    ck_assert(px_str_eq_nocase(PX_STR_NULL, PX_LIT("")));
}
END_TEST

START_TEST(starts_with_and_find_byte_respect_the_view_length)
{
    ck_assert(px_str_starts_with(PX_LIT("MSH|^~"), PX_LIT("MSH")));
    ck_assert(px_str_starts_with(PX_LIT("MSH"), PX_LIT("")));
    ck_assert(!px_str_starts_with(PX_LIT("MS"), PX_LIT("MSH")));
    ck_assert(!px_str_starts_with(PX_LIT("PID|"), PX_LIT("MSH")));
    ck_assert_int_eq(px_str_find_byte(PX_LIT("a|b|c"), '|'), 1);
    ck_assert_int_eq(px_str_find_byte(PX_LIT("abc"), '|'), -1);
    ck_assert_int_eq(px_str_find_byte(PX_STR_NULL, '|'), -1);
    /* The byte just past the view is not part of it. */
    ck_assert_int_eq(px_str_find_byte(px_str_make("ab|", 2), '|'), -1);
}
END_TEST

START_TEST(sub_clamps_start_and_length_to_the_view)
{
    px_str s = PX_LIT("0123456789");
    px_str a = px_str_sub(s, 2, 3);
    ck_assert_uint_eq(a.len, 3);
    ck_assert_ptr_eq(a.ptr, s.ptr + 2);
    px_str b = px_str_sub(s, 7, 100);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_ptr_eq(b.ptr, s.ptr + 7);
    px_str c = px_str_sub(s, 10, 1);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_ptr_eq(c.ptr, s.ptr + 10);
    px_str d = px_str_sub(s, 50, 1);
    ck_assert_uint_eq(d.len, 0);
    ck_assert_ptr_eq(d.ptr, s.ptr + 10);
    px_str e = px_str_sub(s, 3, SIZE_MAX);
    ck_assert_uint_eq(e.len, 7);
    px_str f = px_str_sub(s, SIZE_MAX, SIZE_MAX);
    ck_assert_uint_eq(f.len, 0);
    px_str g = px_str_sub(PX_STR_NULL, 0, 5);
    ck_assert_ptr_null(g.ptr);
    ck_assert_uint_eq(g.len, 0);
    px_str h = px_str_sub(s, 0, 0);
    ck_assert_uint_eq(h.len, 0);
}
END_TEST

START_TEST(trim_removes_spaces_and_tabs_at_both_ends_only)
{
    px_str t = px_str_trim(PX_LIT(" \t ADT^A01 \t"));
    ck_assert(px_str_eq(t, PX_LIT("ADT^A01")));
    ck_assert(px_str_eq(px_str_trim(PX_LIT("a b")), PX_LIT("a b")));
    ck_assert_uint_eq(px_str_trim(PX_LIT("   \t  ")).len, 0);
    ck_assert_uint_eq(px_str_trim(PX_STR_NULL).len, 0);
    /* CR and LF are segment separators, not blanks: trimming keeps them. */
    ck_assert(px_str_eq(px_str_trim(PX_LIT(" x\r")), PX_LIT("x\r")));
    ck_assert(px_str_eq(px_str_trim(PX_LIT("\nx ")), PX_LIT("\nx")));
    px_str s = PX_LIT("  y");
    ck_assert_ptr_eq(px_str_trim(s).ptr, s.ptr + 2);
}
END_TEST

START_TEST(glob_matches_stars_and_question_marks)
{
    ck_assert(glob("*", ""));
    ck_assert(glob("*", "ADT^A01"));
    ck_assert(glob("", ""));
    ck_assert(!glob("", "x"));
    ck_assert(glob("ADT^A0?", "ADT^A01"));
    ck_assert(!glob("ADT^A0?", "ADT^A0"));
    ck_assert(!glob("ADT^A0?", "ADT^A011"));
    ck_assert(glob("ADT^*", "ADT^A31"));
    ck_assert(!glob("ADT^*", "ORU^R01"));
    ck_assert(glob("*^R01", "ORU^R01"));
    ck_assert(!glob("*^R01", "ORU^R011"));
    ck_assert(glob("O*U^R0*", "ORU^R01"));
    ck_assert(glob("LAB*", "LAB"));
    ck_assert(glob("**", "abc"));
    ck_assert(glob("*?", "a"));
    ck_assert(!glob("*?", ""));
    ck_assert(!glob("abc", "abd"));
    ck_assert(!glob("abcd", "abc"));
    ck_assert(glob("?", "\xff"));
}
END_TEST

START_TEST(glob_backtracks_over_several_stars)
{
    ck_assert(glob("a*b*c", "aXbYc"));
    ck_assert(glob("a*b*c", "abbbbc"));
    ck_assert(glob("a*b*c", "a-b-b-c"));
    ck_assert(!glob("a*b*c", "a-b-b-d"));
    ck_assert(glob("*ab", "aaab"));
    ck_assert(glob("*aab", "aaab"));
    ck_assert(!glob("*aab", "aaba"));
    ck_assert(glob("*a*a*a*", "banana ananas"));
    ck_assert(!glob("*a*a*a*a*a*a*a*", "banana"));
}
END_TEST

START_TEST(glob_stays_fast_on_a_pathological_pattern)
{
    /* A naive recursive matcher takes exponential time here; ours is linear times the
     * pattern length. 64 KiB of 'a' against a pattern that almost matches. */
    static char text[65536];
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    ck_assert(!glob("*a*a*a*a*a*a*a*a*b", text));
    ck_assert(glob("*a*a*a*a*a*a*a*a", text));
}
END_TEST

START_TEST(to_u64_parses_decimal_digits_within_range)
{
    uint64_t v = 99;
    ck_assert_int_eq(px_str_to_u64(PX_LIT("0"), 10, &v), PX_OK);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("12345"), UINT64_MAX, &v), PX_OK);
    ck_assert_uint_eq(v, 12345);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("007"), 10, &v), PX_OK);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("65535"), 65535, &v), PX_OK);
    ck_assert_uint_eq(v, 65535);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("18446744073709551615"), UINT64_MAX, &v), PX_OK);
    ck_assert(v == UINT64_MAX);
    /* The digits are taken from the view only, not from the bytes after it. */
    ck_assert_int_eq(px_str_to_u64(px_str_make("129", 2), 100, &v), PX_OK);
    ck_assert_uint_eq(v, 12);
}
END_TEST

START_TEST(to_u64_refuses_out_of_range_overflow_and_non_digits)
{
    uint64_t v = 4242;
    ck_assert_int_eq(px_str_to_u64(PX_LIT("65536"), 65535, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("11"), 10, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("5"), 4, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("1"), 0, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("18446744073709551616"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("99999999999999999999999"), UINT64_MAX, &v),
                     PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT(""), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_STR_NULL, UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("-1"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("+1"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT(" 1"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("1 "), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("12a"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("0x10"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(PX_LIT("1.5"), UINT64_MAX, &v), PX_ERR_PARSE);
    ck_assert_int_eq(px_str_to_u64(px_str_make("1\0", 2), UINT64_MAX, &v), PX_ERR_PARSE);
    /* A failed parse leaves the output alone. */
    ck_assert_uint_eq(v, 4242);
}
END_TEST

START_TEST(to_cbuf_copies_and_truncates_with_a_terminator)
{
    char small[4];
    ck_assert_str_eq(px_str_to_cbuf(PX_LIT("ORU^R01"), small, sizeof(small)), "ORU");
    char big[16];
    ck_assert_str_eq(px_str_to_cbuf(PX_LIT("ORU^R01"), big, sizeof(big)), "ORU^R01");
    ck_assert_str_eq(px_str_to_cbuf(PX_STR_NULL, big, sizeof(big)), "");
    char one[1] = {'x'};
    ck_assert_str_eq(px_str_to_cbuf(PX_LIT("abc"), one, sizeof(one)), "");
    char none[1] = {'x'};
    ck_assert_ptr_eq(px_str_to_cbuf(PX_LIT("abc"), none, 0), none);
    ck_assert_int_eq(none[0], 'x');
}
END_TEST

TCase *common_tcase_str(void)
{
    TCase *tc = tcase_create("string_views");
    tcase_add_test(tc, views_of_c_strings_and_literals_have_the_right_length);
    tcase_add_test(tc, equality_compares_bytes_and_lengths);
    tcase_add_test(tc, case_insensitive_equality_folds_ascii_letters_only);
    tcase_add_test(tc, starts_with_and_find_byte_respect_the_view_length);
    tcase_add_test(tc, sub_clamps_start_and_length_to_the_view);
    tcase_add_test(tc, trim_removes_spaces_and_tabs_at_both_ends_only);
    tcase_add_test(tc, glob_matches_stars_and_question_marks);
    tcase_add_test(tc, glob_backtracks_over_several_stars);
    tcase_add_test(tc, glob_stays_fast_on_a_pathological_pattern);
    tcase_add_test(tc, to_u64_parses_decimal_digits_within_range);
    tcase_add_test(tc, to_u64_refuses_out_of_range_overflow_and_non_digits);
    tcase_add_test(tc, to_cbuf_copies_and_truncates_with_a_terminator);
    return tc;
}
