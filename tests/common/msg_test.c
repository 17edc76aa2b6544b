/* px_msg: refcounted message bytes shared across threads. */
#include <check.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/msg.h"
#include "common/tcases.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif

#ifdef TEST_ASAN
#include <sanitizer/allocator_interface.h>
#else
#include <malloc.h>
#endif

#define THREADS    8
#define ITERATIONS 100000

/* Bytes the process has allocated and not freed, from the allocator in use. */
static size_t heap_in_use(void)
{
#ifdef TEST_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

static void fail_no_more_allocations(void)
{
    px_alloc_fail_after(-1);
}

START_TEST(create_copies_the_bytes_with_one_reference)
{
    char src[] = "MSH|^~\\&|LAB\rPID|1\r";
    px_msg_t *m = NULL;
    px_error err;
    ck_assert_int_eq(px_msg_create(src, sizeof(src) - 1, &m, &err), PX_OK);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(px_msg_refcount(m), 1);
    px_str b = px_msg_bytes(m);
    ck_assert_uint_eq(b.len, sizeof(src) - 1);
    ck_assert_mem_eq(b.ptr, src, b.len);
    ck_assert_ptr_ne(b.ptr, src);
    /* The copy is NUL-terminated and independent of the source. */
    ck_assert_int_eq(b.ptr[b.len], '\0');
    src[0] = 'X';
    ck_assert_int_eq(px_msg_bytes(m).ptr[0], 'M');
    px_msg_unref(m);
}
END_TEST

START_TEST(an_empty_message_is_valid)
{
    px_msg_t *m = NULL;
    ck_assert_int_eq(px_msg_create(NULL, 0, &m, NULL), PX_OK);
    ck_assert_uint_eq(px_msg_bytes(m).len, 0);
    ck_assert_int_eq(px_msg_bytes(m).ptr[0], '\0');
    px_msg_unref(m);
}
END_TEST

START_TEST(ref_and_unref_move_the_count)
{
    px_msg_t *m = NULL;
    ck_assert_int_eq(px_msg_create("abc", 3, &m, NULL), PX_OK);
    ck_assert_ptr_eq(px_msg_ref(m), m);
    ck_assert_ptr_eq(px_msg_ref(m), m);
    ck_assert_uint_eq(px_msg_refcount(m), 3);
    px_msg_unref(m);
    ck_assert_uint_eq(px_msg_refcount(m), 2);
    px_msg_unref(m);
    ck_assert_uint_eq(px_msg_refcount(m), 1);
    ck_assert_mem_eq(px_msg_bytes(m).ptr, "abc", 3);
    px_msg_unref(m);
    px_msg_unref(NULL);
}
END_TEST

START_TEST(the_last_unref_frees_the_message)
{
    const size_t size = 1u << 20;
    char *src = px_malloc(size);
    ck_assert_ptr_nonnull(src);
    memset(src, 'z', size);
    size_t before = heap_in_use();
    px_msg_t *m = NULL;
    ck_assert_int_eq(px_msg_create(src, size, &m, NULL), PX_OK);
    ck_assert_uint_ge(heap_in_use(), before + size);
    px_msg_ref(m);
    px_msg_unref(m);
    ck_assert_uint_ge(heap_in_use(), before + size);
    px_msg_unref(m);
    ck_assert_uint_lt(heap_in_use(), before + size / 2);
    px_free(src);
}
END_TEST

START_TEST(create_reports_nomem_and_leaves_no_message)
{
    px_msg_t *m = (px_msg_t *)&m; /* not NULL, so the reset is visible */
    px_error err;
    px_error_clear(&err);
    px_alloc_fail_after(0);
    ck_assert_int_eq(px_msg_create("MSH|secret-name", 15, &m, &err), PX_ERR_NOMEM);
    px_alloc_fail_after(-1);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(err.code, PX_ERR_NOMEM);
    ck_assert_ptr_null(strstr(err.msg, "secret"));
    /* The next allocation succeeds again. */
    ck_assert_int_eq(px_msg_create("MSH", 3, &m, &err), PX_OK);
    px_msg_unref(m);
}
END_TEST

START_TEST(create_refuses_a_size_that_would_overflow)
{
    px_msg_t *m = NULL;
    px_error err;
    ck_assert_int_eq(px_msg_create("x", SIZE_MAX - 2, &m, &err), PX_ERR_TOO_LARGE);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(err.code, PX_ERR_TOO_LARGE);
}
END_TEST

static void *ref_unref_loop(void *arg)
{
    px_msg_t *m = arg;
    for (int i = 0; i < ITERATIONS; i++) {
        px_msg_ref(m);
        /* Read the bytes while holding the reference, as a leg would. */
        if (px_msg_bytes(m).ptr[0] != 'M')
            return (void *)1;
        px_msg_unref(m);
    }
    return NULL;
}

START_TEST(references_from_many_threads_balance_out)
{
    px_msg_t *m = NULL;
    ck_assert_int_eq(px_msg_create("MSH|^~\\&", 8, &m, NULL), PX_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, ref_unref_loop, m), 0);
    for (int i = 0; i < THREADS; i++) {
        void *rc = (void *)1;
        ck_assert_int_eq(pthread_join(t[i], &rc), 0);
        ck_assert_ptr_null(rc);
    }
    /* Lost updates would leave the count off by some amount. */
    ck_assert_uint_eq(px_msg_refcount(m), 1);
    px_msg_unref(m);
}
END_TEST

/* Each thread owns one reference it was handed and drops it last. */
static void *ref_unref_then_release(void *arg)
{
    void *rc = ref_unref_loop(arg);
    px_msg_unref(arg);
    return rc;
}

START_TEST(the_last_unref_on_any_thread_frees_the_message)
{
    const size_t size = 1u << 20;
    char *src = px_malloc(size);
    ck_assert_ptr_nonnull(src);
    memset(src, 'M', size);
    size_t before = heap_in_use();
    px_msg_t *m = NULL;
    ck_assert_int_eq(px_msg_create(src, size, &m, NULL), PX_OK);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, ref_unref_then_release, px_msg_ref(m)), 0);
    /* The creator lets go first: whichever thread finishes last frees the message, and
     * AddressSanitizer reports any use after that. */
    px_msg_unref(m);
    for (int i = 0; i < THREADS; i++) {
        void *rc = (void *)1;
        ck_assert_int_eq(pthread_join(t[i], &rc), 0);
        ck_assert_ptr_null(rc);
    }
    ck_assert_uint_lt(heap_in_use(), before + size / 2);
    px_free(src);
}
END_TEST

TCase *common_tcase_msg(void)
{
    TCase *tc = tcase_create("shared_messages");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, fail_no_more_allocations);
    tcase_add_test(tc, create_copies_the_bytes_with_one_reference);
    tcase_add_test(tc, an_empty_message_is_valid);
    tcase_add_test(tc, ref_and_unref_move_the_count);
    tcase_add_test(tc, the_last_unref_frees_the_message);
    tcase_add_test(tc, create_reports_nomem_and_leaves_no_message);
    tcase_add_test(tc, create_refuses_a_size_that_would_overflow);
    tcase_add_test(tc, references_from_many_threads_balance_out);
    tcase_add_test(tc, the_last_unref_on_any_thread_frees_the_message);
    return tc;
}
