/* libFuzzer target: the HL7 parser and everything that reads a parsed message.
 *
 * The input is a message (or a batch file) as a sender might send it. Beyond "no crash, no
 * leak, no undefined behaviour", it checks properties that hold for any input:
 * - every view an accessor returns lies inside the parsed bytes;
 * - hl7_rep_count / hl7_comp_count / hl7_sub_count and hl7_field agree with hl7_piece over
 *   the enclosing raw view (outside MSH, FHS and BHS, whose first fields are separators);
 * - a segment's first occurrence is found at or before it and carries its name;
 * - hl7_path_get over a path built from a position equals hl7_field at that position;
 * - a path that parses formats back to text that parses to the same path;
 * - the batch iterator returns views of its input, in order, without overlap.
 * Work per input is bounded so that no input takes longer than libFuzzer's -timeout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "hl7/ack.h"
#include "hl7/batch.h"
#include "hl7/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Bytes of field text the accessors may walk per input (each call is charged the length of
 * the view it searches): deep loops over a 100k-repetition field stay bounded. */
#define WORK_BUDGET (1024u * 1024u)

typedef struct ctx {
    const hl7_msg_t *m;
    px_str bytes;
    size_t budget;
} ctx;

static int charge(ctx *c, size_t cost)
{
    cost += 1;
    if (c->budget < cost) {
        c->budget = 0;
        return 0;
    }
    c->budget -= cost;
    return 1;
}

static void check_inside(const ctx *c, px_str v)
{
    if (v.len == 0)
        return;
    CHECK(v.ptr != NULL);
    CHECK(v.ptr >= c->bytes.ptr);
    CHECK(v.len <= c->bytes.len);
    CHECK((size_t)(v.ptr - c->bytes.ptr) <= c->bytes.len - v.len);
}

static void check_inside_view(px_str outer, px_str v)
{
    if (v.len == 0)
        return;
    CHECK(v.ptr >= outer.ptr);
    CHECK(v.len <= outer.len);
    CHECK((size_t)(v.ptr - outer.ptr) <= outer.len - v.len);
}

static int sane_delims(const hl7_delims *d)
{
    const char s[3] = {d->field, d->component, d->repetition};
    for (int i = 0; i < 3; i++) {
        if (s[i] == 0 || s[i] == '\r' || s[i] == '\n')
            return 0;
        for (int j = 0; j < i; j++)
            if (s[i] == s[j])
                return 0;
    }
    if (d->subcomponent != 0 &&
        (d->subcomponent == d->field || d->subcomponent == d->component ||
         d->subcomponent == d->repetition || d->subcomponent == '\r' || d->subcomponent == '\n'))
        return 0;
    return 1;
}

static int separator_segment(px_str name)
{
    return px_str_eq(name, PX_LIT("MSH")) || px_str_eq(name, PX_LIT("FHS")) ||
           px_str_eq(name, PX_LIT("BHS"));
}

/* Walks one field down to its sub-components. Counts and piece comparisons are checked for
 * fields that exist (1 … hl7_field_count); other positions only have to be safe. */
static void walk_field(ctx *c, size_t seg, size_t f, int exists, int compare_pieces)
{
    const hl7_delims *d = hl7_msg_delims(c->m);
    px_str whole = hl7_field(c->m, seg, f, 0, 0, 0);
    check_inside(c, whole);
    hl7_is_null(whole);
    if (!charge(c, whole.len))
        return;
    size_t reps = hl7_rep_count(c->m, seg, f);
    if (!exists) {
        hl7_comp_count(c->m, seg, f, 1);
        hl7_sub_count(c->m, seg, f, 1, 1);
        hl7_field(c->m, seg, f, 1, 1, 1);
        return;
    }
    CHECK(reps >= 1);
    if (compare_pieces)
        CHECK(reps == hl7_piece_count(whole, d->repetition));
    for (size_t r = 1; r <= reps && r <= 8; r++) {
        if (!charge(c, whole.len))
            return;
        px_str rep = hl7_field(c->m, seg, f, r, 0, 0);
        check_inside_view(whole, rep);
        if (compare_pieces)
            CHECK(px_str_eq(rep, hl7_piece(whole, d->repetition, r)));
        size_t comps = hl7_comp_count(c->m, seg, f, r);
        CHECK(comps >= 1);
        if (compare_pieces)
            CHECK(comps == hl7_piece_count(rep, d->component));
        for (size_t k = 1; k <= comps && k <= 8; k++) {
            if (!charge(c, whole.len))
                return;
            px_str comp = hl7_field(c->m, seg, f, r, k, 0);
            check_inside_view(rep, comp);
            if (compare_pieces)
                CHECK(px_str_eq(comp, hl7_piece(rep, d->component, k)));
            size_t subs = hl7_sub_count(c->m, seg, f, r, k);
            CHECK(subs >= 1);
            if (compare_pieces && d->subcomponent != 0)
                CHECK(subs == hl7_piece_count(comp, d->subcomponent));
            for (size_t s = 1; s <= subs && s <= 4; s++) {
                if (!charge(c, whole.len))
                    return;
                px_str sub = hl7_field(c->m, seg, f, r, k, s);
                check_inside_view(comp, sub);
                if (compare_pieces && d->subcomponent != 0)
                    CHECK(px_str_eq(sub, hl7_piece(comp, d->subcomponent, s)));
            }
            /* One past the last sub-component does not exist. */
            if (compare_pieces && d->subcomponent != 0 && subs < 4)
                CHECK(hl7_field(c->m, seg, f, r, k, subs + 1).len == 0);
        }
        if (compare_pieces && comps < 8)
            CHECK(hl7_field(c->m, seg, f, r, comps + 1, 0).len == 0);
    }
    if (compare_pieces && reps < 8)
        CHECK(hl7_field(c->m, seg, f, reps + 1, 0, 0).len == 0);
}

static void check_path(ctx *c, size_t seg, px_str name, size_t f)
{
    /* Path syntax is defined for proper segment names only. */
    if (name.len != 3)
        return;
    for (size_t i = 0; i < 3; i++) {
        char ch = name.ptr[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return;
    }
    ptrdiff_t first = hl7_segment_find(c->m, name, 1);
    CHECK(first >= 0 && (size_t)first <= seg);
    CHECK(px_str_eq(hl7_segment_name(c->m, (size_t)first), name));
    hl7_path p;
    memset(&p, 0, sizeof(p));
    memcpy(p.segment, name.ptr, 3);
    p.occurrence = 1;
    p.field = (uint32_t)f;
    for (uint32_t rep = 0; rep <= 1; rep++) {
        p.rep = rep;
        p.comp = rep; /* whole field, then the first component of the first repetition */
        if (!charge(c, hl7_field(c->m, (size_t)first, f, 0, 0, 0).len))
            return;
        px_str got = PX_STR_NULL;
        CHECK(hl7_path_get(c->m, &p, &got));
        check_inside(c, got);
        CHECK(px_str_eq(got, hl7_field(c->m, (size_t)first, f, p.rep, p.comp, 0)));
    }
    /* A path that formats and parses back is the same path. */
    char text[64];
    int n = hl7_path_format(&p, text, sizeof(text));
    CHECK(n > 0 && (size_t)n < sizeof(text));
    hl7_path back;
    if (hl7_path_parse(px_str_make(text, (size_t)n), &back, NULL) == PX_OK) {
        CHECK(memcmp(back.segment, p.segment, 4) == 0);
        CHECK(back.occurrence == p.occurrence && back.field == p.field);
        CHECK(back.rep == p.rep && back.comp == p.comp && back.sub == p.sub);
    }
}

static void walk_message(ctx *c)
{
    const hl7_delims *d = hl7_msg_delims(c->m);
    CHECK(d != NULL);
    int compare = sane_delims(d);
    size_t segs = hl7_segment_count(c->m);
    for (size_t s = 0; s < segs && c->budget > 0; s++) {
        px_str name = hl7_segment_name(c->m, s);
        px_str raw = hl7_segment_raw(c->m, s);
        check_inside(c, name);
        check_inside(c, raw);
        if (!charge(c, 16))
            return;
        size_t fields = hl7_field_count(c->m, s);
        int pieces = compare && !separator_segment(name);
        for (size_t f = 0; f <= fields + 1 && f <= 64 && c->budget > 0; f++)
            walk_field(c, s, f, f >= 1 && f <= fields, pieces);
        if (s < 64)
            for (size_t f = 1; f <= fields && f <= 4; f++)
                check_path(c, s, name, f);
    }
    /* Out-of-range positions are empty, never a crash. */
    CHECK(hl7_field(c->m, segs, 1, 0, 0, 0).len == 0);
    CHECK(hl7_field(c->m, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX).len == 0);
    hl7_segment_name(c->m, segs + 5);
    hl7_segment_raw(c->m, SIZE_MAX);
    hl7_segment_find(c->m, PX_LIT("MSH"), 0);
    hl7_segment_find(c->m, PX_LIT("PID"), SIZE_MAX);

    hl7_msh msh;
    if (hl7_msh_read(c->m, &msh, NULL) == PX_OK) {
        const px_str all[] = {msh.sending_app,   msh.sending_facility,
                              msh.receiving_app, msh.receiving_facility,
                              msh.datetime,      msh.type,
                              msh.trigger,       msh.structure,
                              msh.control_id,    msh.processing_id,
                              msh.version,       msh.accept_ack,
                              msh.app_ack,       msh.charset};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            check_inside(c, all[i]);
        hl7_version_code(msh.version);
        hl7_ack_mode mode = hl7_ack_mode_for(&msh, HL7_ACK_MODE_FROM_MSH);
        hl7_ack_wanted(msh.accept_ack, hl7_ack_code_for(mode, 'A'));

        /* An ACK for whatever arrived must build and parse as a message again. */
        hl7_ack_spec spec = {
            .code = hl7_ack_code_for(mode, 'R'),
            .control_id = PX_LIT("ACK0001"),
            .datetime = PX_LIT("20240101120000"),
            .err_code = HL7_ERR_APPLICATION_INTERNAL,
            .err_text = PX_LIT("fuzz"),
            .err_location = PX_LIT("MSH^1^10"),
        };
        px_buf out;
        px_buf_init(&out, 1u << 20);
        if (hl7_ack_build(c->m, &spec, &out, NULL) == PX_OK) {
            hl7_msg_t *ack = NULL;
            if (hl7_msg_create(&ack, NULL) == PX_OK) {
                if (hl7_parse(ack, out.data, out.len, 0, NULL) == PX_OK) {
                    hl7_ack_info info;
                    hl7_ack_read(ack, &info, NULL);
                }
                hl7_msg_destroy(ack);
            }
        }
        px_buf_free(&out);
    }
    hl7_ack_info info;
    if (hl7_ack_read(c->m, &info, NULL) == PX_OK) {
        check_inside(c, info.acked_control_id);
        check_inside(c, info.text);
        hl7_ack_code_name(info.code);
    }
}

static void check_problems(const hl7_msg_t *m)
{
    size_t count = 0;
    const hl7_problem *p = hl7_problems(m, &count);
    CHECK(count == 0 || p != NULL);
    for (size_t i = 0; i < count; i++) {
        CHECK(hl7_problem_name(p[i].code) != NULL);
        CHECK(hl7_problem_text(p[i].code) != NULL);
    }
}

static void parse_and_walk(hl7_msg_t *m, const char *ptr, size_t len, unsigned flags)
{
    px_error err;
    px_err rc = hl7_parse(m, ptr, len, flags, &err);
    if (rc != PX_OK) {
        CHECK(rc == PX_ERR_PARSE || rc == PX_ERR_NOMEM || rc == PX_ERR_TOO_LARGE);
        return;
    }
    ctx c = {.m = m, .bytes = hl7_msg_bytes(m), .budget = WORK_BUDGET};
    /* The parsed bytes are the input, less a byte-order mark at most. */
    CHECK(c.bytes.ptr >= ptr && c.bytes.ptr <= ptr + 3 && c.bytes.len <= len);
    CHECK((size_t)(c.bytes.ptr - ptr) + c.bytes.len <= len);
    check_problems(m);
    size_t before = 0;
    hl7_problems(m, &before);
    size_t after = hl7_validate(m);
    CHECK(after >= before);
    size_t now = 0;
    hl7_problems(m, &now);
    CHECK(now == after);
    check_problems(m);
    walk_message(&c);
}

static void walk_batch(hl7_msg_t *m, const char *ptr, size_t len)
{
    px_str input = px_str_make(ptr, len);
    hl7_is_batch(input);
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, input);
    const char *prev_end = ptr;
    for (size_t i = 0; i <= len; i++) {
        px_str msg = PX_STR_NULL;
        px_err rc = hl7_batch_next(&it, &msg, NULL);
        if (rc != PX_OK) {
            CHECK(rc == PX_ERR_AGAIN || rc == PX_ERR_PARSE);
            break;
        }
        CHECK(msg.len > 0);
        check_inside_view(input, msg);
        CHECK(msg.ptr >= prev_end);
        prev_end = msg.ptr + msg.len;
        CHECK(it.messages == i + 1);
        check_inside_view(input, it.fhs);
        check_inside_view(input, it.bhs);
        if (i < 8)
            parse_and_walk(m, msg.ptr, msg.len, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hl7_msg_t *m = NULL;
    if (hl7_msg_create(&m, NULL) != PX_OK)
        return 0;
    const char *ptr = (const char *)data;
    parse_and_walk(m, ptr, size, 0);
    parse_and_walk(m, ptr, size, HL7_PARSE_STRICT);
    walk_batch(m, ptr, size);

    /* Paths typed by an engineer: the first line of the input read as one. */
    const char *eol = size > 0 ? memchr(ptr, '\r', size < 64 ? size : 64) : NULL;
    size_t plen = eol != NULL ? (size_t)(eol - ptr) : (size < 64 ? size : 64);
    hl7_path p;
    if (hl7_path_parse(px_str_make(ptr, plen), &p, NULL) == PX_OK) {
        char text[96];
        int n = hl7_path_format(&p, text, sizeof(text));
        CHECK(n > 0 && (size_t)n < sizeof(text));
        hl7_path back;
        CHECK(hl7_path_parse(px_str_make(text, (size_t)n), &back, NULL) == PX_OK);
        CHECK(memcmp(back.segment, p.segment, 4) == 0 && back.occurrence == p.occurrence);
        CHECK(back.field == p.field && back.rep == p.rep && back.comp == p.comp);
        CHECK(back.sub == p.sub);
        if (hl7_parse(m, ptr, size, 0, NULL) == PX_OK) {
            px_str got;
            hl7_path_get(m, &p, &got);
        }
    }
    hl7_msg_destroy(m);
    return 0;
}
