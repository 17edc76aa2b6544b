/* The parser over the sample corpus ($PX_CORPUS/hl7v2): every message parses, fuzz-found
 * inputs never crash, CR-separated messages round-trip, the AVX2 and portable scanners
 * agree byte for byte, and chosen values of real messages read as expected. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7/batch.h"
#include "hl7/hl7.h"
#include "hl7/tcases.h"
#include "support.h"

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

static char *exact_copy(const char *p, size_t len)
{
    char *c = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(c);
    if (len > 0)
        memcpy(c, p, len);
    return c;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Files that are not ER7 messages: provenance tables and XML renderings. */
static int not_a_message_file(const char *path)
{
    return ends_with(path, ".tsv") || ends_with(path, ".xml");
}

/* Inputs the corpus marks as malformed on purpose: they may fail to parse. */
static int malformed_on_purpose(const char *path)
{
    return strstr(path, "/bad-inputs/") != NULL || strstr(path, "/invalid") != NULL;
}

static int is_eol(char c)
{
    return c == '\r' || c == '\n';
}

static int is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Drops the comment lines some collections put between messages (hapi's messages.txt has
 * lines starting with two slashes, and slash-star blocks). Other lines are kept with their
 * terminators. */
static size_t strip_comments(char *text, size_t len)
{
    size_t out = 0, i = 0;
    int in_block = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && !is_eol(text[e]))
            e++;
        size_t next = e;
        if (next < len && text[next] == '\r' && next + 1 < len && text[next + 1] == '\n')
            next += 2;
        else if (next < len)
            next++;
        size_t ll = e - i;
        int drop = 0;
        if (in_block) {
            drop = 1;
            for (size_t k = i; k + 1 < e; k++)
                if (text[k] == '*' && text[k + 1] == '/')
                    in_block = 0;
        } else if (ll >= 2 && text[i] == '/' && text[i + 1] == '*') {
            drop = 1;
            in_block = !(ll >= 4 && text[e - 2] == '*' && text[e - 1] == '/');
        } else if (ll >= 2 && text[i] == '/' && text[i + 1] == '/') {
            drop = 1;
        }
        if (!drop) {
            memmove(text + out, text + i, next - i);
            out += next - i;
        }
        i = next;
    }
    return out;
}

/* Lines starting with MSH and a separator: the messages a file holds. */
static size_t count_msh_lines(const char *text, size_t len)
{
    size_t n = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    for (size_t i = 0; i + 3 < len; i++)
        if ((i == 0 || is_eol(text[i - 1])) && memcmp(text + i, "MSH", 3) == 0 &&
            !is_alnum(text[i + 3]) && !is_eol(text[i + 3]))
            n++;
    return n;
}

static void assert_views_inside(const hl7_msg_t *m, const char *buf, size_t len)
{
    HL7_FOREACH_SEGMENT(m, s) {
        size_t nf = hl7_field_count(m, s);
        px_str raw = hl7_segment_raw(m, s);
        require((uintptr_t)raw.ptr >= (uintptr_t)buf &&
                (uintptr_t)(raw.ptr + raw.len) <= (uintptr_t)(buf + len));
        for (size_t f = 1; f <= nf; f++) {
            size_t nr = hl7_rep_count(m, s, f);
            for (size_t r = 0; r <= nr && r <= 8; r++) {
                size_t nc = r == 0 ? 0 : hl7_comp_count(m, s, f, r);
                for (size_t c = 0; c <= nc && c <= 32; c++) {
                    size_t ns = c == 0 ? 0 : hl7_sub_count(m, s, f, r, c);
                    for (size_t u = 0; u <= ns && u <= 8; u++) {
                        px_str v = hl7_field(m, s, f, r, c, u);
                        require(v.ptr != NULL || v.len == 0);
                        if (v.ptr != NULL)
                            require((uintptr_t)v.ptr >= (uintptr_t)raw.ptr &&
                                    (uintptr_t)(v.ptr + v.len) <= (uintptr_t)(raw.ptr + raw.len));
                    }
                }
            }
        }
    }
}

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
    require(memcmp(pa, pb, na * sizeof(*pa)) == 0);
    require(memcmp(hl7_msg_delims(a), hl7_msg_delims(b), sizeof(hl7_delims)) == 0);
}

/* Between two segments stand only segment terminators. */
static void assert_segments_tile_the_message(const hl7_msg_t *m)
{
    px_str bytes = hl7_msg_bytes(m);
    size_t n = hl7_segment_count(m);
    const char *at = bytes.ptr;
    for (size_t s = 0; s < n; s++) {
        px_str raw = hl7_segment_raw(m, s);
        for (; at < raw.ptr; at++)
            require_msg(is_eol(*at), "stray byte before segment %zu", s);
        at = raw.ptr + raw.len;
    }
    for (; at < bytes.ptr + bytes.len; at++)
        require(is_eol(*at));
}

typedef struct walk_state {
    hl7_msg_t *fast;
    hl7_msg_t *slow;
    size_t files;
    size_t messages;
    size_t malformed_failures;
    size_t round_trips;
    size_t simd_compared;
} walk_state;

/* Parses buf (exactly len bytes) with both scanners and checks what every parse must hold. */
static px_err parse_both(walk_state *w, const char *buf, size_t len, unsigned flags)
{
    px_error e1, e2;
    px_err a = hl7_parse(w->fast, buf, len, flags, &e1);
    px_err b = hl7_parse(w->slow, buf, len, flags, &e2);
    require(a == b);
    if (a != PX_OK)
        return a;
    assert_same_index(w->fast, w->slow);
    w->simd_compared++;
    assert_views_inside(w->fast, buf, len);
    assert_segments_tile_the_message(w->fast);
    hl7_validate(w->fast);
    hl7_validate(w->slow);
    assert_same_index(w->fast, w->slow);
    hl7_msh msh;
    px_error err;
    if (hl7_msh_read(w->fast, &msh, &err) == PX_OK && msh.control_id.ptr != NULL)
        require((uintptr_t)msh.control_id.ptr >= (uintptr_t)buf &&
                (uintptr_t)(msh.control_id.ptr + msh.control_id.len) <= (uintptr_t)(buf + len));
    return a;
}

/* Joining the segments with \r gives back a message that used \r alone. */
static void check_round_trip(walk_state *w, px_str msg)
{
    if (memchr(msg.ptr, '\n', msg.len) != NULL)
        return;
    size_t n = hl7_segment_count(w->fast);
    char *joined = malloc(msg.len + 1);
    ck_assert_ptr_nonnull(joined);
    size_t used = 0;
    for (size_t s = 0; s < n; s++) {
        px_str raw = hl7_segment_raw(w->fast, s);
        if (s > 0) {
            require(used < msg.len + 1);
            joined[used++] = '\r';
        }
        require(used + raw.len <= msg.len);
        memcpy(joined + used, raw.ptr, raw.len);
        used += raw.len;
    }
    size_t skip = hl7_msg_bytes(w->fast).ptr - msg.ptr;
    require(used == msg.len - skip);
    require(memcmp(joined, msg.ptr + skip, used) == 0);
    w->round_trips++;
    free(joined);
}

static void walk_one(const char *path, void *ctx)
{
    walk_state *w = ctx;
    if (not_a_message_file(path))
        return;
    size_t len;
    char *text = test_read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    int malformed = malformed_on_purpose(path);
    w->files++;

    /* The whole file as one input, from an exact-size copy. */
    char *whole = exact_copy(text, len);
    px_err rc = parse_both(w, whole, len, 0);
    if (rc != PX_OK)
        ck_assert_msg(malformed || count_msh_lines(text, len) == 0, "%s: %s", path,
                      px_err_name(rc));
    parse_both(w, whole, len, HL7_PARSE_STRICT);
    free(whole);

    len = strip_comments(text, len);
    size_t expected = count_msh_lines(text, len);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, px_str_make(text, len));
    size_t found = 0;
    for (int guard = 0; guard < 100000; guard++) {
        px_str msg;
        px_error err;
        rc = hl7_batch_next(&it, &msg, &err);
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc == PX_ERR_PARSE)
            continue;
        ck_assert_int_eq(rc, PX_OK);
        found++;
        char *copy = exact_copy(msg.ptr, msg.len);
        rc = parse_both(w, copy, msg.len, 0);
        if (!malformed) {
            ck_assert_msg(rc == PX_OK, "%s: message %zu: %s", path, found, px_err_name(rc));
            w->messages++;
            check_round_trip(w, px_str_make(copy, msg.len));
        } else if (rc != PX_OK) {
            w->malformed_failures++;
        }
        free(copy);
    }
    ck_assert_msg(found == expected, "%s: %zu messages split, %zu MSH lines", path, found,
                  expected);
    free(text);
}

static char hl7v2_dir[1024];

static const char *corpus_hl7v2(void)
{
    int n = snprintf(hl7v2_dir, sizeof(hl7v2_dir), "%s/hl7v2", test_corpus_dir());
    ck_assert(n > 0 && (size_t)n < sizeof(hl7v2_dir));
    return hl7v2_dir;
}

START_TEST(every_corpus_message_parses_and_both_scanners_agree)
{
    walk_state w = {.fast = msg_new(0), .slow = msg_new(1)};
    size_t visited = test_walk_files(corpus_hl7v2(), walk_one, &w);
    ck_assert_uint_gt(visited, 400);
    ck_assert_uint_gt(w.files, 400);
    /* INDEX.md counts 659 MSH-headed messages in the well-formed files. */
    ck_assert_uint_ge(w.messages, 600);
    ck_assert_uint_ge(w.round_trips, 50);
    ck_assert_uint_ge(w.simd_compared, w.messages);
    hl7_msg_destroy(w.fast);
    hl7_msg_destroy(w.slow);
}
END_TEST

/* Every prefix of every fuzz-found input, from exact-size copies. */
static void fuzz_prefixes(const char *path, void *ctx)
{
    walk_state *w = ctx;
    size_t len;
    char *text = test_read_file(path, &len);
    ck_assert_ptr_nonnull(text);
    w->files++;
    for (size_t l = 0; l <= len && l <= 4096; l++) {
        char *copy = exact_copy(text, l);
        parse_both(w, copy, l, 0);
        parse_both(w, copy, l, HL7_PARSE_STRICT);
        free(copy);
    }
    free(text);
}

START_TEST(fuzz_found_inputs_never_crash_in_any_prefix)
{
    char dir[1200];
    int n = snprintf(dir, sizeof(dir), "%s/nhapi/bad-inputs", corpus_hl7v2());
    ck_assert(n > 0 && (size_t)n < sizeof(dir));
    walk_state w = {.fast = msg_new(0), .slow = msg_new(1)};
    test_walk_files(dir, fuzz_prefixes, &w);
    ck_assert_uint_ge(w.files, 30);
    ck_assert_uint_gt(w.simd_compared, 1000);
    hl7_msg_destroy(w.fast);
    hl7_msg_destroy(w.slow);
}
END_TEST

static const struct {
    const char *file;
    size_t segments;
    size_t obx;
    const char *control_id; /* MSH-10 */
    const char *family;     /* PID-5.1.1 */
    const char *paths[3];
    const char *values[3];
} REAL[] = {
    {"hapi-hl7v2/ADT_A01.txt",
     7,
     0,
     "22139243",
     "Duck",
     {"PID-7", "PV1-3.2", "IN1-4"},
     {"19720227", "WAITING", "  OHIP"}},
    {"mirth-connect/donkey/small.hl7",
     22,
     17,
     "12345678",
     "Hanso",
     {"OBX[17]-3.2", "OBX[6]-3.5", "PID-11.3"},
     {"ALK PHOS", "CREATININE:MCNC:PT:SER/PLAS:QN:", "Santa Barbara"}},
    {"microsoft-fhir-converter/ADT-A01-01.hl7",
     24,
     1,
     "MSG00001",
     "EVERYMAN",
     {"MSH-12", "PID-3[2]", "PID-5.1.5"},
     {"2.8", "123456789^^^USSSA^SS", "Aniston"}},
    {"microsoft-fhir-converter/LAB-ORU-1.hl7",
     16,
     10,
     "182",
     "DUCK",
     {"OBX[10]-3.2", "MSH-9.2", "PID-7"},
     {"BASOPHILS/100 LEUKOCYTES", "R01", "19241010"}},
    {"cdc-data-exchange-hl7/tst-hl7-pipeline/messages/PHLIP_FLU_2.5.1_VALID_MESSAGE.txt",
     9,
     3,
     "6479",
     "",
     {"MSH-2", "PID-5[2].7", "OBX[3]-5.2"},
     {"^~\\&#", "U", "Detected"}},
    {"node-hl7-complete/valid/nist/ORU_R01_2.5.1_SampleTestCase1.hl7",
     7,
     1,
     "NIST-100929110701660",
     "Johnson",
     {"PID-3.4.2", "OBX-3.2", "OBX-5"},
     {"2.16.840.1.113883.19.3.2.1", "Lead BldC-mCnc", "50"}},
    {"hl7-v2-to-fhir/Message.hl7_MDM_T02.txt",
     12,
     4,
     "10819306",
     "JOHN",
     {"TXA-2", "OBX[4]-5.5", "OBX[2]-2"},
     {"PN", "<Base64 encoded>", "FT"}},
    {"rethinkhealth-hl7v2/qa-fixtures/edge-custom-delimiters.hl7",
     2,
     0,
     "MSG007",
     "DOE",
     {"PID-3.4", "PID-5.2", "MSH-2"},
     {"MRN", "JOHN", "!@%*"}},
    {"hapi-hl7v2/omd_o03.txt",
     9,
     0,
     "20101027181706",
     "DUMAS",
     {"ODS[4]-3.2", "PID-3.9.3", "TQ1-7"},
     {"DIABETICO", "ES-EX", "20101117"}},
    {"linuxforhealth-hl7v2-fhir-converter/sample_win.hl7",
     8,
     1,
     "102",
     "DOE",
     {"PID-3[2].5", "AL1[2]-3.2", "OBX-5"},
     {"SS", "TRAMADOL", "ECHOCARDIOGRAPHIC REPORT"}},
};

static void assert_value(px_str v, const char *want, const char *file, const char *what)
{
    ck_assert_msg(v.len == strlen(want) && memcmp(v.ptr != NULL ? v.ptr : "", want, v.len) == 0,
                  "%s %s: got \"%.*s\", want \"%s\"", file, what, (int)v.len,
                  v.ptr != NULL ? v.ptr : "", want);
}

START_TEST(real_messages_read_their_known_values)
{
    ck_assert_int_lt(_i, (int)(sizeof(REAL) / sizeof(REAL[0])));
    char path[1400];
    int n = snprintf(path, sizeof(path), "%s/%s", corpus_hl7v2(), REAL[_i].file);
    ck_assert(n > 0 && (size_t)n < sizeof(path));
    size_t len;
    char *text = test_read_file(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    for (int scalar = 0; scalar <= 1; scalar++) {
        hl7_msg_t *m = msg_new(scalar);
        px_error err;
        ck_assert_int_eq(hl7_parse(m, text, len, 0, &err), PX_OK);
        ck_assert_uint_eq(hl7_segment_count(m), REAL[_i].segments);
        size_t obx = 0;
        HL7_FOREACH_SEGMENT(m, s) {
            if (px_str_eq(hl7_segment_name(m, s), PX_LIT("OBX")))
                obx++;
        }
        ck_assert_uint_eq(obx, REAL[_i].obx);
        hl7_msh msh;
        ck_assert_int_eq(hl7_msh_read(m, &msh, &err), PX_OK);
        assert_value(msh.control_id, REAL[_i].control_id, REAL[_i].file, "MSH-10");
        ptrdiff_t pid = hl7_segment_find(m, PX_LIT("PID"), 1);
        ck_assert_int_ge(pid, 0);
        assert_value(hl7_field(m, (size_t)pid, 5, 1, 1, 1), REAL[_i].family, REAL[_i].file,
                     "PID-5.1.1");
        for (int k = 0; k < 3; k++) {
            hl7_path p;
            ck_assert_int_eq(hl7_path_parse(px_str_from_cstr(REAL[_i].paths[k]), &p, &err), PX_OK);
            px_str v;
            ck_assert(hl7_path_get(m, &p, &v));
            assert_value(v, REAL[_i].values[k], REAL[_i].file, REAL[_i].paths[k]);
        }
        hl7_msg_destroy(m);
    }
    free(text);
}
END_TEST

TCase *hl7_tcase_corpus(void)
{
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, every_corpus_message_parses_and_both_scanners_agree);
    tcase_add_test(tc, fuzz_found_inputs_never_crash_in_any_prefix);
    tcase_add_loop_test(tc, real_messages_read_their_known_values, 0,
                        (int)(sizeof(REAL) / sizeof(REAL[0])));
    return tc;
}
