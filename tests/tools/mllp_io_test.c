/* The MLLP reader and writer queues the tools share, without sockets. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/mllp_client.h"
#include "tools/tcases.h"

static const char stream[] = "\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|ONE|P|2.5\r\x1c\r"
                             "noise\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|TWO|P|2.5\r\x1c\r"
                             "\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|THREE|P|2.5\r\x1c\r";

/* Feeds stream in pieces of `step` bytes the way a read callback does and returns the
 * frames found, joined by '#'. */
static char *feed(size_t step)
{
    proxy_mllp_in in;
    proxy_mllp_in_init(&in, 1024);
    px_buf out;
    px_buf_init(&out, 4096);
    size_t total = sizeof(stream) - 1, pos = 0;
    while (pos < total) {
        uv_buf_t b;
        proxy_mllp_in_alloc(&in, &b);
        ck_assert_uint_gt(b.len, 0);
        size_t n = total - pos < step ? total - pos : step;
        if (n > b.len)
            n = b.len;
        memcpy(b.base, stream + pos, n);
        proxy_mllp_in_commit(&in, n);
        pos += n;
        for (;;) {
            px_str f;
            px_err rc = proxy_mllp_in_next(&in, &f, NULL);
            if (rc == PX_ERR_AGAIN)
                break;
            ck_assert_int_eq(rc, PX_OK);
            ck_assert_int_eq(px_buf_append_str(&out, f), PX_OK);
            ck_assert_int_eq(px_buf_append_byte(&out, '#'), PX_OK);
        }
    }
    ck_assert_int_eq(proxy_mllp_in_finish(&in, NULL), PX_OK);
    ck_assert_uint_eq(in.buf.len, 0);
    proxy_mllp_in_free(&in);
    char *text = strdup(out.data);
    px_buf_free(&out);
    return text;
}

START_TEST(reader_finds_the_same_frames_however_the_bytes_are_split)
{
    char *whole = feed(sizeof(stream));
    ck_assert_ptr_nonnull(strstr(whole, "|ONE|P|2.5\r#MSH"));
    ck_assert_ptr_nonnull(strstr(whole, "|TWO|P|2.5\r#MSH"));
    ck_assert_ptr_nonnull(strstr(whole, "|THREE|P|2.5\r#"));
    ck_assert_ptr_null(strstr(whole, "noise"));
    static const size_t steps[] = {1, 2, 3, 7, 50};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char *parts = feed(steps[i]);
        ck_assert_str_eq(parts, whole);
        free(parts);
    }
    free(whole);
}
END_TEST

START_TEST(reader_refuses_a_frame_over_its_limit_and_a_truncated_one_at_the_end)
{
    proxy_mllp_in in;
    proxy_mllp_in_init(&in, 100);
    uv_buf_t b;
    proxy_mllp_in_alloc(&in, &b);
    ck_assert_uint_ge(b.len, 300);
    b.base[0] = 0x0b;
    memset(b.base + 1, 'x', 299);
    proxy_mllp_in_commit(&in, 300);
    px_str f;
    px_error err;
    ck_assert_int_eq(proxy_mllp_in_next(&in, &f, &err), PX_ERR_TOO_LARGE);
    proxy_mllp_in_free(&in);

    proxy_mllp_in_init(&in, 100);
    proxy_mllp_in_alloc(&in, &b);
    memcpy(b.base, "\x0bMSH|", 5);
    proxy_mllp_in_commit(&in, 5);
    ck_assert_int_eq(proxy_mllp_in_next(&in, &f, &err), PX_ERR_AGAIN);
    ck_assert_int_eq(proxy_mllp_in_finish(&in, &err), PX_ERR_PARSE);
    proxy_mllp_in_free(&in);
}
END_TEST

START_TEST(reader_stops_handing_out_room_once_full)
{
    proxy_mllp_in in;
    proxy_mllp_in_init(&in, 16);
    size_t got = 0;
    for (int i = 0; i < 100; i++) {
        uv_buf_t b;
        proxy_mllp_in_alloc(&in, &b);
        if (b.len == 0)
            break;
        memset(b.base, 'y', b.len); /* garbage before any start block */
        proxy_mllp_in_commit(&in, b.len);
        got += b.len;
    }
    ck_assert_uint_le(in.buf.len, in.buf.max);
    ck_assert_uint_gt(got, 0);
    /* The decoder drops bytes before a start block, which makes room again. */
    px_str f;
    ck_assert_int_eq(proxy_mllp_in_next(&in, &f, NULL), PX_ERR_AGAIN);
    ck_assert_uint_eq(in.buf.len, 0);
    proxy_mllp_in_free(&in);
}
END_TEST

START_TEST(writer_frames_parts_and_leaves_the_queue_unchanged_when_full)
{
    proxy_mllp_out o;
    proxy_mllp_out_init(&o, NULL, 24);
    px_str parts[3] = {PX_LIT("MSH|A|"), PX_LIT("ID-1"), PX_LIT("|P\r")};
    ck_assert_int_eq(proxy_mllp_out_framev(&o, parts, 3, NULL), PX_OK);
    static const char want[] = "\x0bMSH|A|ID-1|P\r\x1c\r";
    ck_assert_uint_eq(proxy_mllp_out_pending(&o), sizeof(want) - 1);
    ck_assert_mem_eq(proxy_mllp_out_buf(&o)->data, want, sizeof(want) - 1);
    px_error err;
    ck_assert_int_eq(proxy_mllp_out_framev(&o, parts, 3, &err), PX_ERR_TOO_LARGE);
    ck_assert_uint_eq(proxy_mllp_out_pending(&o), sizeof(want) - 1);
    proxy_mllp_out_free(&o);
}
END_TEST

TCase *tools_tcase_mllp_io(void)
{
    TCase *tc = tcase_create("mllp_io");
    tcase_add_test(tc, reader_finds_the_same_frames_however_the_bytes_are_split);
    tcase_add_test(tc, reader_refuses_a_frame_over_its_limit_and_a_truncated_one_at_the_end);
    tcase_add_test(tc, reader_stops_handing_out_room_once_full);
    tcase_add_test(tc, writer_frames_parts_and_leaves_the_queue_unchanged_when_full);
    return tc;
}
