/* px_buf: capped growth, formatting, consumption and allocation failure. */
#include <check.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/tcases.h"

/* The invariants from buf.h, checked after every operation a test makes. */
static void assert_buf_invariants(const px_buf *b)
{
    ck_assert_uint_le(b->len, b->cap > 0 ? b->cap - 1 : 0);
    ck_assert_uint_le(b->cap, b->max + 1);
    ck_assert_int_eq(b->data == NULL, b->cap == 0);
    if (b->data != NULL)
        ck_assert_int_eq(b->data[b->len], '\0');
}

static void fail_no_more_allocations(void)
{
    px_alloc_fail_after(-1);
}

START_TEST(new_buffer_is_empty_and_has_not_allocated)
{
    px_buf b;
    px_buf_init(&b, 100);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.max, 100);
    px_str v = px_buf_view(&b);
    ck_assert_uint_eq(v.len, 0);
    px_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.max, 100);
}
END_TEST

START_TEST(append_grows_the_buffer_and_keeps_a_trailing_nul)
{
    px_buf b;
    px_buf_init(&b, 1u << 20);
    ck_assert_int_eq(px_buf_append(&b, "MSH", 3), PX_OK);
    ck_assert_int_eq(px_buf_append_byte(&b, '|'), PX_OK);
    ck_assert_int_eq(px_buf_append_cstr(&b, "^~\\&"), PX_OK);
    ck_assert_int_eq(px_buf_append_str(&b, PX_LIT("|LAB")), PX_OK);
    ck_assert_int_eq(px_buf_append(&b, NULL, 0), PX_OK);
    assert_buf_invariants(&b);
    ck_assert_str_eq(b.data, "MSH|^~\\&|LAB");
    ck_assert_uint_eq(b.len, 12);
    /* Many small appends keep every byte in order across reallocations. */
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(px_buf_append_byte(&b, (char)('a' + i % 26)), PX_OK);
    assert_buf_invariants(&b);
    ck_assert_uint_eq(b.len, 10012);
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(b.data[12 + i], 'a' + i % 26);
    px_str v = px_buf_view(&b);
    ck_assert_ptr_eq(v.ptr, b.data);
    ck_assert_uint_eq(v.len, b.len);
    px_buf_free(&b);
}
END_TEST

START_TEST(append_past_max_fails_and_leaves_the_content)
{
    px_buf b;
    px_buf_init(&b, 8);
    ck_assert_int_eq(px_buf_append_cstr(&b, "12345"), PX_OK);
    char *data = b.data;
    size_t cap = b.cap;
    ck_assert_int_eq(px_buf_append_cstr(&b, "6789"), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_str_eq(b.data, "12345");
    /* Filling up to max exactly is allowed, one byte more is not. */
    ck_assert_int_eq(px_buf_append_cstr(&b, "678"), PX_OK);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_int_eq(px_buf_append_byte(&b, 'x'), PX_ERR_TOO_LARGE);
    ck_assert_str_eq(b.data, "12345678");
    assert_buf_invariants(&b);
    /* A length so large that len + extra would wrap is refused, not wrapped. */
    ck_assert_int_eq(px_buf_reserve(&b, SIZE_MAX), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 8);
    px_buf_free(&b);
}
END_TEST

START_TEST(a_zero_max_buffer_refuses_every_byte)
{
    px_buf b;
    px_buf_init(&b, 0);
    ck_assert_int_eq(px_buf_append_byte(&b, 'x'), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(px_buf_append(&b, "", 0), PX_OK);
    assert_buf_invariants(&b);
    px_buf_free(&b);
}
END_TEST

START_TEST(appendf_formats_and_respects_max)
{
    px_buf b;
    px_buf_init(&b, 32);
    ck_assert_int_eq(px_buf_appendf(&b, "MSA|%s|%d", "AA", 42), PX_OK);
    ck_assert_str_eq(b.data, "MSA|AA|42");
    ck_assert_int_eq(px_buf_appendf(&b, "|%05u", 7u), PX_OK);
    ck_assert_str_eq(b.data, "MSA|AA|42|00007");
    ck_assert_uint_eq(b.len, 15);
    /* 15 + 20 > 32: refused whole, nothing half-written. */
    ck_assert_int_eq(px_buf_appendf(&b, "%020d", 1), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(b.len, 15);
    ck_assert_str_eq(b.data, "MSA|AA|42|00007");
    ck_assert_int_eq(px_buf_appendf(&b, "%s", ""), PX_OK);
    ck_assert_uint_eq(b.len, 15);
    /* Exactly to max. */
    ck_assert_int_eq(px_buf_appendf(&b, "%017d", 5), PX_OK);
    ck_assert_uint_eq(b.len, 32);
    assert_buf_invariants(&b);
    px_buf_free(&b);
}
END_TEST

START_TEST(appendf_output_longer_than_the_initial_capacity_is_complete)
{
    px_buf b;
    px_buf_init(&b, 1u << 16);
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(px_buf_appendf(&b, "<%s>", big), PX_OK);
    ck_assert_uint_eq(b.len, sizeof(big) + 1);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[b.len - 1], '>');
    ck_assert_int_eq(b.data[2500], 'q');
    assert_buf_invariants(&b);
    px_buf_free(&b);
}
END_TEST

START_TEST(consume_moves_the_rest_to_the_front)
{
    px_buf b;
    px_buf_init(&b, 64);
    ck_assert_int_eq(px_buf_append_cstr(&b, "0123456789"), PX_OK);
    px_buf_consume(&b, 3);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_str_eq(b.data, "3456789");
    px_buf_consume(&b, 0);
    ck_assert_str_eq(b.data, "3456789");
    px_buf_consume(&b, 7);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(px_buf_append_cstr(&b, "abc"), PX_OK);
    px_buf_consume(&b, 1000);
    ck_assert_uint_eq(b.len, 0);
    assert_buf_invariants(&b);
    /* Consuming an empty, never-allocated buffer is harmless. */
    px_buf e;
    px_buf_init(&e, 8);
    px_buf_consume(&e, 5);
    ck_assert_uint_eq(e.len, 0);
    ck_assert_ptr_null(e.data);
    px_buf_free(&b);
}
END_TEST

START_TEST(reset_forgets_content_but_keeps_storage)
{
    px_buf b;
    px_buf_init(&b, 64);
    ck_assert_int_eq(px_buf_append_cstr(&b, "abc"), PX_OK);
    char *data = b.data;
    size_t cap = b.cap;
    px_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_str_eq(b.data, "");
    px_buf_free(&b);
}
END_TEST

START_TEST(reserve_makes_room_without_changing_the_content)
{
    px_buf b;
    px_buf_init(&b, 4096);
    ck_assert_int_eq(px_buf_append_cstr(&b, "ab"), PX_OK);
    ck_assert_int_eq(px_buf_reserve(&b, 1000), PX_OK);
    ck_assert_uint_ge(b.cap, 1003);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_str_eq(b.data, "ab");
    /* With the room reserved, appending does not allocate (an injected failure is not hit). */
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_append(&b, "0123456789", 10), PX_OK);
    px_alloc_fail_after(-1);
    ck_assert_uint_eq(b.len, 12);
    /* Capacity never exceeds max + 1 however the doubling goes. */
    ck_assert_int_eq(px_buf_reserve(&b, 4096 - 12), PX_OK);
    ck_assert_uint_eq(b.cap, 4097);
    ck_assert_int_eq(px_buf_reserve(&b, 4096 - 11), PX_ERR_TOO_LARGE);
    assert_buf_invariants(&b);
    px_buf_free(&b);
}
END_TEST

START_TEST(reserve_failure_leaves_the_buffer_unchanged)
{
    px_buf b;
    px_buf_init(&b, 1u << 20);
    ck_assert_int_eq(px_buf_append_cstr(&b, "keep me"), PX_OK);
    px_buf before = b;
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_reserve(&b, 100000), PX_ERR_NOMEM);
    px_alloc_fail_after(-1);
    ck_assert_ptr_eq(b.data, before.data);
    ck_assert_uint_eq(b.len, before.len);
    ck_assert_uint_eq(b.cap, before.cap);
    ck_assert_uint_eq(b.max, before.max);
    ck_assert_str_eq(b.data, "keep me");
    ck_assert_int_eq(px_buf_reserve(&b, (1u << 20) - 6), PX_ERR_TOO_LARGE);
    ck_assert_ptr_eq(b.data, before.data);
    ck_assert_uint_eq(b.cap, before.cap);
    px_buf_free(&b);
}
END_TEST

START_TEST(every_append_reports_nomem_when_allocation_fails)
{
    px_buf b;
    px_buf_init(&b, 1u << 20);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_append(&b, "x", 1), PX_ERR_NOMEM);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_append_byte(&b, 'x'), PX_ERR_NOMEM);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_append_cstr(&b, "x"), PX_ERR_NOMEM);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_append_str(&b, PX_LIT("x")), PX_ERR_NOMEM);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_buf_appendf(&b, "%d", 1), PX_ERR_NOMEM);
    px_alloc_fail_after(-1);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    px_buf_free(&b);
}
END_TEST

START_TEST(growth_survives_a_failure_at_every_allocation)
{
    /* SQLite-style: fail the Nth allocation for N = 0 … all, and check that the content built
     * so far is intact and that retrying after the failure completes the job. */
    px_buf probe;
    px_buf_init(&probe, 1u << 20);
    px_alloc_fail_after(-1);
    for (int i = 0; i < 3000; i++)
        ck_assert_int_eq(px_buf_append_cstr(&probe, "OBX|1|NM|"), PX_OK);
    long allocations = px_alloc_fail_after(-1);
    ck_assert_int_gt(allocations, 3);
    for (long n = 0; n < allocations; n++) {
        px_buf b;
        px_buf_init(&b, 1u << 20);
        px_alloc_fail_after(n);
        int failures = 0;
        for (int i = 0; i < 3000; i++) {
            px_err rc = px_buf_append_cstr(&b, "OBX|1|NM|");
            if (rc == PX_ERR_NOMEM) {
                failures++;
                ck_assert_uint_eq(b.len, (size_t)i * 9);
                assert_buf_invariants(&b);
                rc = px_buf_append_cstr(&b, "OBX|1|NM|");
            }
            ck_assert_int_eq(rc, PX_OK);
        }
        px_alloc_fail_after(-1);
        ck_assert_int_eq(failures, 1);
        ck_assert_uint_eq(b.len, probe.len);
        ck_assert_mem_eq(b.data, probe.data, b.len);
        px_buf_free(&b);
    }
    px_buf_free(&probe);
}
END_TEST

START_TEST(steal_hands_over_the_storage_and_empties_the_buffer)
{
    px_buf b;
    px_buf_init(&b, 64);
    size_t len = 99;
    ck_assert_ptr_null(px_buf_steal(&b, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(px_buf_append_cstr(&b, "owned"), PX_OK);
    char *p = px_buf_steal(&b, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(p, "owned");
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_uint_eq(b.max, 64);
    px_free(p);
    /* The emptied buffer is usable again. */
    ck_assert_int_eq(px_buf_append_cstr(&b, "again"), PX_OK);
    ck_assert_str_eq(b.data, "again");
    px_buf_free(&b);
}
END_TEST

TCase *common_tcase_buf(void)
{
    TCase *tc = tcase_create("buffers");
    tcase_add_checked_fixture(tc, NULL, fail_no_more_allocations);
    tcase_add_test(tc, new_buffer_is_empty_and_has_not_allocated);
    tcase_add_test(tc, append_grows_the_buffer_and_keeps_a_trailing_nul);
    tcase_add_test(tc, append_past_max_fails_and_leaves_the_content);
    tcase_add_test(tc, a_zero_max_buffer_refuses_every_byte);
    tcase_add_test(tc, appendf_formats_and_respects_max);
    tcase_add_test(tc, appendf_output_longer_than_the_initial_capacity_is_complete);
    tcase_add_test(tc, consume_moves_the_rest_to_the_front);
    tcase_add_test(tc, reset_forgets_content_but_keeps_storage);
    tcase_add_test(tc, reserve_makes_room_without_changing_the_content);
    tcase_add_test(tc, reserve_failure_leaves_the_buffer_unchanged);
    tcase_add_test(tc, every_append_reports_nomem_when_allocation_fails);
    tcase_add_test(tc, growth_survives_a_failure_at_every_allocation);
    tcase_add_test(tc, steal_hands_over_the_storage_and_empties_the_buffer);
    return tc;
}
