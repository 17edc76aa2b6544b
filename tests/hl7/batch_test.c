/* Batches: FHS/BHS … BTS/FTS envelopes and files of back-to-back messages. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7/batch.h"
#include "hl7/hl7.h"
#include "hl7/tcases.h"
#include "support.h"

#define MSH_A "MSH|^~\\&|LAB|FAC|EHR|RFAC|20240101||ORU^R01|C1|P|2.5.1"
#define MSH_B "MSH|^~\\&|LAB|FAC|EHR|RFAC|20240101||ORU^R01|C2|P|2.5.1"

#define assert_view(v, text)                                                                       \
    do {                                                                                           \
        px_str v_ = (v);                                                                           \
        const char *t_ = (text);                                                                   \
        ck_assert_msg(v_.len == strlen(t_) && (v_.len == 0 || memcmp(v_.ptr, t_, v_.len) == 0),    \
                      "expected \"%s\", got \"%.*s\"", t_, (int)v_.len,                            \
                      v_.ptr != NULL ? v_.ptr : "");                                               \
    } while (0)

static void assert_inside(px_str v, px_str in)
{
    ck_assert((uintptr_t)v.ptr >= (uintptr_t)in.ptr &&
              (uintptr_t)(v.ptr + v.len) <= (uintptr_t)(in.ptr + in.len));
}

static px_str next_ok(hl7_batch_iter *it)
{
    px_str msg;
    px_error err;
    px_err rc = hl7_batch_next(it, &msg, &err);
    ck_assert_msg(rc == PX_OK, "batch_next: %s %s", px_err_name(rc), err.msg);
    assert_inside(msg, it->input);
    return msg;
}

static void assert_done(hl7_batch_iter *it)
{
    px_str msg;
    px_error err;
    ck_assert_int_eq(hl7_batch_next(it, &msg, &err), PX_ERR_AGAIN);
    ck_assert_uint_eq(msg.len, 0);
    /* And it stays done. */
    ck_assert_int_eq(hl7_batch_next(it, &msg, &err), PX_ERR_AGAIN);
}

START_TEST(envelope_segments_are_recorded_and_messages_split)
{
    static const char text[] = "FHS|^~\\&|LAB|FAC|||20240101||F1\r\n"
                               "BHS|^~\\&|LAB|FAC|||20240101||B1\r\n" MSH_A "\r\n"
                               "PID|1||X\r\n" MSH_B "\r\n"
                               "PID|2||Y\r\n"
                               "\r\n"
                               "BTS|2\r\n"
                               "FTS|1\r\n";
    px_str in = px_str_make(text, sizeof(text) - 1);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, in);
    ck_assert(hl7_is_batch(in));
    px_str m1 = next_ok(&it);
    assert_view(m1, MSH_A "\r\nPID|1||X");
    assert_view(it.fhs, "FHS|^~\\&|LAB|FAC|||20240101||F1");
    assert_view(it.bhs, "BHS|^~\\&|LAB|FAC|||20240101||B1");
    ck_assert_uint_eq(it.bts.len, 0);
    px_str m2 = next_ok(&it);
    assert_view(m2, MSH_B "\r\nPID|2||Y");
    ck_assert_uint_eq(it.messages, 2);
    assert_done(&it);
    assert_view(it.bts, "BTS|2");
    assert_view(it.fts, "FTS|1");
    assert_inside(it.fts, in);
    ck_assert_uint_eq(it.messages, 2);
}
END_TEST

START_TEST(back_to_back_messages_split_at_each_msh)
{
    static const char text[] = MSH_A "\rPID|1\rMSA|AA|C0\r" MSH_B "\rPID|2";
    px_str in = px_str_make(text, sizeof(text) - 1);
    ck_assert(!hl7_is_batch(in));
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, in);
    hl7_msg_t *m;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    const char *ids[] = {"C1", "C2"};
    const size_t segs[] = {3, 2};
    for (int k = 0; k < 2; k++) {
        px_str msg = next_ok(&it);
        ck_assert_int_eq(hl7_parse(m, msg.ptr, msg.len, HL7_PARSE_STRICT, &err), PX_OK);
        ck_assert_uint_eq(hl7_segment_count(m), segs[k]);
        assert_view(hl7_field(m, 0, 10, 0, 0, 0), ids[k]);
        size_t n;
        hl7_problems(m, &n);
        ck_assert_uint_eq(n, 0);
    }
    assert_done(&it);
    ck_assert_uint_eq(it.fhs.len, 0);
    ck_assert_uint_eq(it.bhs.len, 0);
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(blank_lines_and_byte_order_mark_are_skipped)
{
    static const char text[] = "\xEF\xBB\xBF\n\n  \n" MSH_A "\nPID|1\n\n\n" MSH_B "\nPID|2\n\n";
    px_str in = px_str_make(text, sizeof(text) - 1);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, in);
    ck_assert_ptr_eq(it.input.ptr, text + 3);
    assert_view(next_ok(&it), MSH_A "\nPID|1");
    assert_view(next_ok(&it), MSH_B "\nPID|2");
    assert_done(&it);
}
END_TEST

START_TEST(stray_bytes_before_a_message_are_reported_with_their_offset)
{
    static const char text[] = "garbage\rmore garbage\r" MSH_A "\rPID|1\rBTS|1\rjunk\r" MSH_B;
    px_str in = px_str_make(text, sizeof(text) - 1);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, in);
    px_str msg;
    px_error err;
    ck_assert_int_eq(hl7_batch_next(&it, &msg, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, 0);
    ck_assert_str_ne(err.msg, "");
    /* The iterator resumes at the next message. */
    assert_view(next_ok(&it), MSH_A "\rPID|1");
    ck_assert_int_eq(hl7_batch_next(&it, &msg, &err), PX_ERR_PARSE);
    ck_assert_int_eq(err.detail, (int)(strstr(text, "junk") - text));
    assert_view(it.bts, "BTS|1");
    assert_view(next_ok(&it), MSH_B);
    assert_done(&it);
    ck_assert_uint_eq(it.messages, 2);
}
END_TEST

START_TEST(input_without_messages_yields_none)
{
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, PX_LIT(""));
    assert_done(&it);
    hl7_batch_iter_init(&it, PX_STR_NULL);
    assert_done(&it);
    hl7_batch_iter_init(&it, PX_LIT("\r\n\r\n"));
    assert_done(&it);
    hl7_batch_iter_init(&it, PX_LIT("FHS|^~\\&|A\rBHS|^~\\&\rBTS|0\rFTS|1"));
    assert_done(&it);
    ck_assert_uint_eq(it.messages, 0);
    assert_view(it.fhs, "FHS|^~\\&|A");
    assert_view(it.fts, "FTS|1");
}
END_TEST

START_TEST(segments_that_merely_resemble_msh_do_not_split)
{
    static const char text[] = MSH_A "\rMSA|AA|C0\rMSHX|1\rZFH|FHS\r" MSH_B;
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, px_str_make(text, sizeof(text) - 1));
    assert_view(next_ok(&it), MSH_A "\rMSA|AA|C0\rMSHX|1\rZFH|FHS");
    assert_view(next_ok(&it), MSH_B);
    assert_done(&it);
}
END_TEST

START_TEST(batch_detection_looks_past_bom_and_blank_lines)
{
    ck_assert(hl7_is_batch(PX_LIT("FHS|^~\\&")));
    ck_assert(hl7_is_batch(PX_LIT("BHS|^~\\&|A")));
    ck_assert(hl7_is_batch(PX_LIT("\xEF\xBB\xBF\r\n\r\nBHS|^~\\&")));
    ck_assert(!hl7_is_batch(PX_LIT(MSH_A)));
    ck_assert(!hl7_is_batch(PX_LIT("")));
    ck_assert(!hl7_is_batch(PX_STR_NULL));
    ck_assert(!hl7_is_batch(PX_LIT("FHSX|^~\\&")));
    ck_assert(!hl7_is_batch(PX_LIT("FH")));
}
END_TEST

static char *read_corpus(const char *rel, size_t *len)
{
    char path[1400];
    int n = snprintf(path, sizeof(path), "%s/hl7v2/%s", test_corpus_dir(), rel);
    ck_assert(n > 0 && (size_t)n < sizeof(path));
    char *text = test_read_file(path, len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    return text;
}

START_TEST(corpus_batch_file_with_envelope_splits)
{
    size_t len;
    char *text = read_corpus("mirth-connect/serializer/test-hl7-batch-input.txt", &len);
    px_str in = px_str_make(text, len);
    ck_assert(hl7_is_batch(in));
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, in);
    px_str msg = next_ok(&it);
    assert_view(it.fhs, "FHS|^~\\&|||||");
    assert_view(it.bhs, "BHS|^~\\&|||||");
    hl7_msg_t *m;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    ck_assert_int_eq(hl7_parse(m, msg.ptr, msg.len, 0, &err), PX_OK);
    ck_assert_uint_eq(hl7_segment_count(m), 22);
    assert_view(hl7_field(m, 0, 10, 0, 0, 0), "12345678");
    assert_view(hl7_field(m, 21, 3, 1, 2, 0), "ALK PHOS");
    assert_done(&it);
    hl7_msg_destroy(m);
    free(text);
}
END_TEST

START_TEST(corpus_files_of_back_to_back_messages_split)
{
    static const struct {
        const char *file;
        size_t messages;
        const char *triggers[8];
    } files[] = {
        {"mirth-connect/filereader/batch/batch01.hl7", 3, {"S12", "S14", "S15"}},
        {"mirth-connect/filereader/batch/batch03.hl7", 2, {"A40", "R01"}},
        {"cdc-data-exchange-hl7/fn-receiver-debatcher/genV1/GenV1_Batch_No_headers_eightMSHs.txt",
         8,
         {"R01", "R01", "R01", "R01", "R01", "R01", "R01", "R01"}},
    };
    hl7_msg_t *m;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t len;
        char *text = read_corpus(files[f].file, &len);
        hl7_batch_iter it;
        hl7_batch_iter_init(&it, px_str_make(text, len));
        for (size_t k = 0; k < files[f].messages; k++) {
            px_str msg = next_ok(&it);
            ck_assert_int_eq(hl7_parse(m, msg.ptr, msg.len, 0, &err), PX_OK);
            hl7_msh h;
            ck_assert_int_eq(hl7_msh_read(m, &h, &err), PX_OK);
            assert_view(h.trigger, files[f].triggers[k]);
            ck_assert_int_eq(hl7_segment_find(m, PX_LIT("MSH"), 2), -1);
            ck_assert(msg.len > 0 && msg.ptr[msg.len - 1] != '\n' && msg.ptr[msg.len - 1] != '\r');
        }
        assert_done(&it);
        ck_assert_uint_eq(it.messages, files[f].messages);
        free(text);
    }
    hl7_msg_destroy(m);
}
END_TEST

START_TEST(corpus_collection_with_comments_splits_once_they_are_stripped)
{
    size_t len;
    char *text = read_corpus("hapi-hl7v2/messages.txt", &len);
    /* Blank out the comment lines (two slashes, or a slash-star block) with spaces, so
     * offsets stay put and the lines read as blank. */
    int in_block = 0;
    size_t msh_lines = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n' && text[e] != '\r')
            e++;
        int comment = in_block ||
                      (e - i >= 2 && text[i] == '/' && (text[i + 1] == '/' || text[i + 1] == '*'));
        if (!in_block && e - i >= 2 && text[i] == '/' && text[i + 1] == '*')
            in_block = 1;
        if (in_block && e - i >= 2 && text[e - 2] == '*' && text[e - 1] == '/')
            in_block = 0;
        if (comment)
            memset(text + i, ' ', e - i);
        else if (e - i > 3 && memcmp(text + i, "MSH", 3) == 0)
            msh_lines++;
        i = e + 1;
    }
    ck_assert_uint_ge(msh_lines, 15);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, px_str_make(text, len));
    hl7_msg_t *m;
    px_error err;
    ck_assert_int_eq(hl7_msg_create(&m, &err), PX_OK);
    for (size_t k = 0; k < msh_lines; k++) {
        px_str msg = next_ok(&it);
        ck_assert_int_eq(hl7_parse(m, msg.ptr, msg.len, 0, &err), PX_OK);
        ck_assert_int_eq(hl7_segment_find(m, PX_LIT("MSH"), 2), -1);
        /* No blank comment line was swallowed into the message's tail. */
        ck_assert(msg.ptr[msg.len - 1] != ' ');
    }
    assert_done(&it);
    hl7_msg_destroy(m);
    free(text);
}
END_TEST

TCase *hl7_tcase_batch(void)
{
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, envelope_segments_are_recorded_and_messages_split);
    tcase_add_test(tc, back_to_back_messages_split_at_each_msh);
    tcase_add_test(tc, blank_lines_and_byte_order_mark_are_skipped);
    tcase_add_test(tc, stray_bytes_before_a_message_are_reported_with_their_offset);
    tcase_add_test(tc, input_without_messages_yields_none);
    tcase_add_test(tc, segments_that_merely_resemble_msh_do_not_split);
    tcase_add_test(tc, batch_detection_looks_past_bom_and_blank_lines);
    tcase_add_test(tc, corpus_batch_file_with_envelope_splits);
    tcase_add_test(tc, corpus_files_of_back_to_back_messages_split);
    tcase_add_test(tc, corpus_collection_with_comments_splits_once_they_are_stripped);
    return tc;
}
