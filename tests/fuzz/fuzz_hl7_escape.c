/* libFuzzer target: the HL7 escape codec with fuzzer-chosen delimiters.
 *
 * Input layout: six delimiter bytes (field, component, repetition, escape, sub-component,
 * truncation), one control byte (bit 0: HL7_UNESCAPE_PLAIN_TEXT, bit 1: a 64-byte output cap
 * to reach PX_ERR_TOO_LARGE), then the text. Properties checked for any input:
 * - unescape and escape return only their documented codes (escape may refuse with
 *   PX_ERR_INVAL when there is no escape character) and never write past max;
 * - strict unescape fails exactly when hl7_escape_check finds a bad escape, at that offset;
 * - text without the escape character unescapes to itself;
 * - with proper delimiters (distinct, not alphanumeric, not CR/LF), escaping yields text
 *   that hl7_escape_check accepts, that holds no raw separator, and that unescapes back to
 *   the original bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "hl7/escape.h"
#include "hl7/hl7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define HEADER 7

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Delimiters as a valid MSH-1/MSH-2 could declare them. */
static int proper_delims(const hl7_delims *d)
{
    char s[6] = {d->field, d->component, d->repetition, d->escape, d->subcomponent, d->truncation};
    size_t n = d->truncation != 0 ? 6 : 5;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0 || s[i] == '\r' || s[i] == '\n' || is_alnum(s[i]))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (s[i] == s[j])
                return 0;
    }
    return 1;
}

static int holds_raw_separator(px_str s, const hl7_delims *d)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == d->field || c == d->component || c == d->repetition || c == d->subcomponent ||
            (d->truncation != 0 && c == d->truncation) || c == '\r' || c == '\n')
            return 1;
    }
    return 0;
}

static void check_code(px_err rc, int strict)
{
    CHECK(rc == PX_OK || rc == PX_ERR_TOO_LARGE || rc == PX_ERR_NOMEM ||
          (strict && rc == PX_ERR_PARSE));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER)
        return 0;
    hl7_delims d = {
        .field = (char)data[0],
        .component = (char)data[1],
        .repetition = (char)data[2],
        .escape = (char)data[3],
        .subcomponent = (char)data[4],
        .truncation = (char)data[5],
    };
    unsigned control = data[6];
    unsigned flags = (control & 1u) ? HL7_UNESCAPE_PLAIN_TEXT : 0;
    size_t max = (control & 2u) ? 64 : 1u << 24;
    px_str in = px_str_make((const char *)data + HEADER, size - HEADER);

    px_buf out;
    px_buf_init(&out, max);
    px_error err;

    int has = hl7_has_escape(in, &d);
    px_err rc = hl7_unescape(in, &d, flags, &out, &err);
    check_code(rc, 0);
    CHECK(out.len <= max);
    if (rc == PX_OK && !has)
        CHECK(out.len == in.len && (in.len == 0 || memcmp(out.data, in.ptr, in.len) == 0));

    /* Strict mode agrees with the checker about where the first bad escape is. */
    ptrdiff_t bad = hl7_escape_check(in, &d);
    CHECK(bad >= -1 && bad < (ptrdiff_t)in.len);
    px_buf_reset(&out);
    px_buf big;
    px_buf_init(&big, 1u << 24);
    rc = hl7_unescape(in, &d, flags | HL7_UNESCAPE_STRICT, &big, &err);
    check_code(rc, 1);
    if (rc == PX_ERR_PARSE) {
        CHECK(bad >= 0);
        CHECK(err.detail == (int)bad);
    } else if (rc == PX_OK) {
        CHECK(bad == -1);
    }
    px_buf_free(&big);

    px_buf enc;
    px_buf_init(&enc, max);
    rc = hl7_escape(in, &d, &enc, &err);
    /* Without an escape character a separator cannot be written at all. */
    if (!(rc == PX_ERR_INVAL && d.escape == 0))
        check_code(rc, 0);
    CHECK(enc.len <= max);
    if (rc == PX_OK && proper_delims(&d)) {
        px_str e = px_buf_view(&enc);
        CHECK(e.len >= in.len);
        CHECK(hl7_escape_check(e, &d) == -1);
        CHECK(!holds_raw_separator(e, &d));
        px_buf back;
        px_buf_init(&back, 1u << 24);
        CHECK(hl7_unescape(e, &d, HL7_UNESCAPE_STRICT, &back, &err) == PX_OK);
        CHECK(back.len == in.len && (in.len == 0 || memcmp(back.data, in.ptr, in.len) == 0));
        px_buf_free(&back);
    }
    px_buf_free(&enc);
    px_buf_free(&out);
    return 0;
}
