/* The bench's log-linear latency histogram. */
#include <check.h>
#include <stdlib.h>

#include "proxy/bench.h"
#include "tools/tcases.h"

START_TEST(hist_is_exact_below_128_microseconds)
{
    for (uint64_t v = 0; v < 128; v++) {
        ck_assert_uint_eq(proxy_hist_bucket(v), v);
        ck_assert_uint_eq(proxy_hist_bucket_high(proxy_hist_bucket(v)), v);
    }
}
END_TEST

START_TEST(hist_buckets_rise_with_the_value_and_err_by_at_most_one_64th)
{
    size_t prev = 0;
    for (uint64_t v = 1; v < (1ull << 40); v += v / 97 + 1) {
        size_t b = proxy_hist_bucket(v);
        ck_assert_uint_lt(b, PROXY_HIST_BUCKETS);
        ck_assert_uint_ge(b, prev);
        uint64_t high = proxy_hist_bucket_high(b);
        ck_assert_uint_ge(high, v);
        ck_assert_msg((double)(high - v) <= (double)v / 64.0, "v=%llu high=%llu",
                      (unsigned long long)v, (unsigned long long)high);
        if (b > 0)
            ck_assert_uint_lt(proxy_hist_bucket_high(b - 1), v);
        prev = b;
    }
    ck_assert_uint_eq(proxy_hist_bucket(UINT64_MAX), PROXY_HIST_BUCKETS - 1);
    ck_assert_uint_eq(proxy_hist_bucket((1ull << 40) - 1), PROXY_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(hist_percentiles_of_a_uniform_run_land_within_the_bucket_error)
{
    proxy_hist *h = malloc(sizeof(*h));
    proxy_hist_reset(h);
    for (uint64_t v = 1; v <= 100000; v++)
        proxy_hist_record(h, v);
    ck_assert_uint_eq(h->total, 100000);
    ck_assert_uint_eq(h->max, 100000);
    uint64_t p50 = proxy_hist_percentile(h, 50), p99 = proxy_hist_percentile(h, 99),
             p999 = proxy_hist_percentile(h, 99.9);
    ck_assert_uint_ge(p50, 50000);
    ck_assert_uint_le(p50, 50000 + 50000 / 64);
    ck_assert_uint_ge(p99, 99000);
    ck_assert_uint_le(p99, 100000);
    ck_assert_uint_ge(p999, 99900);
    ck_assert_uint_eq(proxy_hist_percentile(h, 100), 100000);
    free(h);
}
END_TEST

START_TEST(hist_percentile_of_nothing_is_zero_and_of_one_value_is_that_value)
{
    proxy_hist *h = malloc(sizeof(*h));
    proxy_hist_reset(h);
    ck_assert_uint_eq(proxy_hist_percentile(h, 50), 0);
    proxy_hist_record(h, 12345);
    ck_assert_uint_eq(proxy_hist_percentile(h, 1), 12345);
    ck_assert_uint_eq(proxy_hist_percentile(h, 99.9), 12345);
    ck_assert_uint_eq(h->sum, 12345);
    free(h);
}
END_TEST

TCase *tools_tcase_histogram(void)
{
    TCase *tc = tcase_create("histogram");
    tcase_add_test(tc, hist_is_exact_below_128_microseconds);
    tcase_add_test(tc, hist_buckets_rise_with_the_value_and_err_by_at_most_one_64th);
    tcase_add_test(tc, hist_percentiles_of_a_uniform_run_land_within_the_bucket_error);
    tcase_add_test(tc, hist_percentile_of_nothing_is_zero_and_of_one_value_is_that_value);
    return tc;
}
