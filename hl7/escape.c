/* The HL7 v2 escape codec (v2.x chapter 2, "Use of escape sequences in text fields", and
 * the FT formatting commands of chapter 2A).
 *
 * An escape sequence is the bytes between two escape characters. Decoding copies the runs
 * between escape characters in one append each, so a field without escapes costs one
 * memchr and one memcpy. On any failure the output buffer is left as it was. */
#include "hl7/escape.h"

#include <limits.h>
#include <string.h>

/* The most blank lines or spaces one \.sp\ or \.sk\ renders in plain text: the count is
 * the sender's, and a large one must not turn a few bytes of input into megabytes. */
#define RENDER_COUNT_MAX 100u

/* The most digits a formatting command's count may have (the value then fits 32 bits). */
#define COUNT_DIGITS_MAX 9u

typedef enum esc_kind {
    ESC_BYTE,      /* \F\ \S\ \T\ \R\ \E\ \P\: one separator */
    ESC_HEX,       /* \Xhh…\: the bytes it spells */
    ESC_HIGHLIGHT, /* \H\ \N\ */
    ESC_BREAK,     /* \.br\ */
    ESC_SPACE,     /* \.sp\: end the line, skip count lines */
    ESC_NEWLINE,   /* \.in\ \.ce\: begin a new output line */
    ESC_SKIP,      /* \.sk\: count spaces to the right */
    ESC_FORMAT,    /* \.ti\ \.fi\ \.nf\: nothing to render in plain text */
    ESC_PASS,      /* \Zxx\ \Cxxyy\ \Mxxyyzz\: always copied through */
} esc_kind;

typedef struct esc_seq {
    esc_kind kind;
    char byte;      /* ESC_BYTE */
    unsigned count; /* ESC_SPACE, ESC_SKIP */
} esc_seq;

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool all_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hex_value(p[i]) < 0)
            return false;
    return true;
}

/* Reads the argument of a formatting command: an optional blank, an optional sign and
 * digits. signs lists the signs allowed; required says whether the digits may be absent
 * (count 1 then). A negative number (an outdent) is read as its magnitude: only \.in\ and
 * \.ti\ take one, and plain text renders neither. */
static bool read_count(const char *p, size_t n, const char *signs, bool required, unsigned *count)
{
    size_t i = 0;
    if (i < n && p[i] == ' ')
        i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        if (strchr(signs, p[i]) == NULL)
            return false;
        i++;
    }
    if (i == n) {
        *count = 1;
        return !required && i == 0;
    }
    if (n - i > COUNT_DIGITS_MAX)
        return false;
    unsigned v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *count = v;
    return true;
}

/* A formatting command (the bytes after the dot). */
static bool classify_command(const char *p, size_t n, esc_seq *seq)
{
    if (n < 2)
        return false;
    const char *arg = p + 2;
    size_t arg_len = n - 2;
    if (memcmp(p, "br", 2) == 0) {
        seq->kind = ESC_BREAK;
        return arg_len == 0;
    }
    if (memcmp(p, "sp", 2) == 0) {
        seq->kind = ESC_SPACE;
        return read_count(arg, arg_len, "+", false, &seq->count);
    }
    if (memcmp(p, "sk", 2) == 0) {
        seq->kind = ESC_SKIP;
        return read_count(arg, arg_len, "+", true, &seq->count);
    }
    if (memcmp(p, "in", 2) == 0 || memcmp(p, "ti", 2) == 0) {
        seq->kind = p[0] == 'i' ? ESC_NEWLINE : ESC_FORMAT;
        return read_count(arg, arg_len, "+-", true, &seq->count);
    }
    if (memcmp(p, "ce", 2) == 0) {
        seq->kind = ESC_NEWLINE;
        return arg_len == 0;
    }
    if (memcmp(p, "fi", 2) == 0 || memcmp(p, "nf", 2) == 0) {
        seq->kind = ESC_FORMAT;
        return arg_len == 0;
    }
    return false;
}

/* What the n bytes between two escape characters mean; false when they are unknown or
 * malformed. */
static bool classify(const char *p, size_t n, const hl7_delims *d, esc_seq *seq)
{
    if (n == 0)
        return false;
    seq->count = 0;
    seq->byte = 0;
    if (n == 1) {
        seq->kind = ESC_BYTE;
        switch (p[0]) {
        case 'F':
            seq->byte = d->field;
            break;
        case 'S':
            seq->byte = d->component;
            break;
        case 'T':
            seq->byte = d->subcomponent;
            break;
        case 'R':
            seq->byte = d->repetition;
            break;
        case 'E':
            seq->byte = d->escape;
            break;
        case 'P':
            seq->byte = d->truncation;
            break;
        case 'H':
        case 'N':
            seq->kind = ESC_HIGHLIGHT;
            return true;
        default:
            return false;
        }
        /* \T\ without a sub-component separator, \P\ before v2.7: nothing to stand for. */
        return seq->byte != 0;
    }
    switch (p[0]) {
    case 'X':
        seq->kind = ESC_HEX;
        return (n - 1) % 2 == 0 && all_hex(p + 1, n - 1);
    case 'Z':
        seq->kind = ESC_PASS;
        return true;
    case 'C':
        seq->kind = ESC_PASS;
        return n == 5 && all_hex(p + 1, 4);
    case 'M':
        seq->kind = ESC_PASS;
        return (n == 5 || n == 7) && all_hex(p + 1, n - 1);
    case '.':
        return classify_command(p + 1, n - 1, seq);
    default:
        return false;
    }
}

static int clamp_offset(size_t off)
{
    return off > (size_t)INT_MAX ? INT_MAX : (int)off;
}

static px_err append_repeated(px_buf *out, char c, unsigned count)
{
    if (count > RENDER_COUNT_MAX)
        count = RENDER_COUNT_MAX;
    px_err rc = px_buf_reserve(out, count);
    if (rc != PX_OK)
        return rc;
    memset(out->data + out->len, c, count);
    out->len += count;
    out->data[out->len] = '\0';
    return PX_OK;
}

/* Plain text: true when the next byte would start an output line. */
static bool at_line_start(const px_buf *out, size_t start)
{
    return out->len == start || out->data[out->len - 1] == '\n';
}

static px_err emit(const esc_seq *seq, const char *raw, size_t raw_len, unsigned flags, px_buf *out,
                   size_t start)
{
    bool plain = (flags & HL7_UNESCAPE_PLAIN_TEXT) != 0;
    px_err rc;
    switch (seq->kind) {
    case ESC_BYTE:
        return px_buf_append_byte(out, seq->byte);
    case ESC_HEX: {
        size_t bytes = (raw_len - 3) / 2; /* raw is escape, X, digits, escape */
        rc = px_buf_reserve(out, bytes);
        if (rc != PX_OK)
            return rc;
        const char *h = raw + 2;
        for (size_t i = 0; i < bytes; i++)
            out->data[out->len + i] = (char)(hex_value(h[2 * i]) << 4 | hex_value(h[2 * i + 1]));
        out->len += bytes;
        out->data[out->len] = '\0';
        return PX_OK;
    }
    case ESC_PASS:
        break;
    case ESC_HIGHLIGHT:
    case ESC_FORMAT:
        if (plain)
            return PX_OK;
        break;
    case ESC_BREAK:
        if (plain)
            return px_buf_append_byte(out, '\n');
        break;
    case ESC_NEWLINE:
        if (plain)
            return at_line_start(out, start) ? PX_OK : px_buf_append_byte(out, '\n');
        break;
    case ESC_SPACE:
        if (plain) {
            /* "End current output line and skip <number> vertical spaces." */
            if (!at_line_start(out, start)) {
                rc = px_buf_append_byte(out, '\n');
                if (rc != PX_OK)
                    return rc;
            }
            return append_repeated(out, '\n', seq->count);
        }
        break;
    case ESC_SKIP:
        if (plain)
            return append_repeated(out, ' ', seq->count);
        break;
    }
    return px_buf_append(out, raw, raw_len);
}

static void truncate_to(px_buf *out, size_t start)
{
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
}

static px_err fail(px_buf *out, size_t start, px_err rc, px_error *err)
{
    truncate_to(out, start);
    if (rc == PX_ERR_TOO_LARGE)
        return px_error_set(err, rc, "decoded text exceeds the buffer maximum (%zu bytes)",
                            out->max);
    return px_error_set(err, rc, "out of memory decoding escapes");
}

px_err hl7_unescape(px_str in, const hl7_delims *d, unsigned flags, px_buf *out, px_error *err)
{
    const char esc = d->escape;
    const char *p = in.ptr;
    size_t n = in.len;
    size_t start = out->len;
    px_err rc;

    if (n == 0)
        return PX_OK;
    const char *first = esc == 0 ? NULL : memchr(p, esc, n);
    if (first == NULL) {
        rc = px_buf_append(out, p, n);
        return rc == PX_OK ? PX_OK : fail(out, start, rc, err);
    }
    /* Decoded text is never longer than its source, except for the counts plain text
     * renders, so one reservation (within max) makes the appends below copies. */
    size_t room = out->max - out->len;
    rc = px_buf_reserve(out, n < room ? n : room);
    if (rc != PX_OK)
        return fail(out, start, rc, err);

    size_t i = 0;
    while (first != NULL) {
        size_t at = (size_t)(first - p);
        rc = px_buf_append(out, p + i, at - i);
        if (rc != PX_OK)
            return fail(out, start, rc, err);
        const char *end = memchr(first + 1, esc, n - at - 1);
        esc_seq seq;
        if (end == NULL || !classify(first + 1, (size_t)(end - first - 1), d, &seq)) {
            if (flags & HL7_UNESCAPE_STRICT) {
                truncate_to(out, start);
                return px_error_setd(err, PX_ERR_PARSE, clamp_offset(at),
                                     "%s escape sequence at offset %zu",
                                     end == NULL ? "unterminated" : "unknown", at);
            }
            /* Copy the lone escape character and read on after it: the rest may still
             * hold well-formed sequences. */
            rc = px_buf_append_byte(out, esc);
            i = at + 1;
        } else {
            size_t raw_len = (size_t)(end - first) + 1;
            rc = emit(&seq, first, raw_len, flags, out, start);
            i = at + raw_len;
        }
        if (rc != PX_OK)
            return fail(out, start, rc, err);
        first = i < n ? memchr(p + i, esc, n - i) : NULL;
    }
    rc = px_buf_append(out, p + i, n - i);
    return rc == PX_OK ? PX_OK : fail(out, start, rc, err);
}

int hl7_has_escape(px_str in, const hl7_delims *d)
{
    return d->escape != 0 && px_str_find_byte(in, d->escape) >= 0;
}

ptrdiff_t hl7_escape_check(px_str in, const hl7_delims *d)
{
    const char esc = d->escape;
    if (esc == 0 || in.len == 0)
        return -1;
    const char *p = in.ptr;
    size_t n = in.len, i = 0;
    const char *first;
    while (i < n && (first = memchr(p + i, esc, n - i)) != NULL) {
        size_t at = (size_t)(first - p);
        const char *end = memchr(first + 1, esc, n - at - 1);
        esc_seq seq;
        if (end == NULL || !classify(first + 1, (size_t)(end - first - 1), d, &seq))
            return (ptrdiff_t)at;
        i = (size_t)(end - p) + 1;
    }
    return -1;
}

/* The escape sequence that stands for byte c, or NULL when c stands for itself. */
static const char *encoding_of(unsigned char c, const hl7_delims *d)
{
    if (c == '\r')
        return "X0D";
    if (c == '\n')
        return "X0A";
    if (c == 0)
        return NULL;
    if (c == (unsigned char)d->field)
        return "F";
    if (c == (unsigned char)d->component)
        return "S";
    if (c == (unsigned char)d->repetition)
        return "R";
    if (c == (unsigned char)d->escape)
        return "E";
    if (c == (unsigned char)d->subcomponent)
        return "T";
    if (c == (unsigned char)d->truncation)
        return "P";
    return NULL;
}

px_err hl7_escape(px_str in, const hl7_delims *d, px_buf *out, px_error *err)
{
    /* Which bytes need a sequence, and the encoded size, in one pass; then one
     * reservation, so a failure leaves out unchanged. */
    unsigned char special[256] = {0};
    const char seps[] = {d->field,        d->component,  d->repetition, d->escape,
                         d->subcomponent, d->truncation, '\r',          '\n'};
    for (size_t k = 0; k < sizeof(seps); k++)
        if (seps[k] != 0)
            special[(unsigned char)seps[k]] = 1;

    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t need = in.len, specials = 0;
    for (size_t i = 0; i < in.len; i++) {
        if (special[p[i]]) {
            specials++;
            need += strlen(encoding_of(p[i], d)) + 1; /* two escape characters replace one byte */
        }
    }
    if (specials == 0) {
        px_err rc = px_buf_append(out, in.ptr, in.len);
        if (rc == PX_ERR_TOO_LARGE)
            return px_error_set(err, rc, "encoded text exceeds the buffer maximum");
        return rc == PX_OK ? PX_OK : px_error_set(err, rc, "out of memory encoding text");
    }
    if (d->escape == 0)
        return px_error_set(err, PX_ERR_INVAL,
                            "text holds a separator or line break but the message has no "
                            "escape character");
    px_err rc = px_buf_reserve(out, need);
    if (rc == PX_ERR_TOO_LARGE)
        return px_error_set(err, rc, "encoded text exceeds the buffer maximum");
    if (rc != PX_OK)
        return px_error_set(err, rc, "out of memory encoding text");

    char *w = out->data + out->len;
    size_t run = 0;
    for (size_t i = 0; i < in.len; i++) {
        if (!special[p[i]])
            continue;
        memcpy(w, in.ptr + run, i - run);
        w += i - run;
        const char *code = encoding_of(p[i], d);
        size_t code_len = strlen(code);
        *w++ = d->escape;
        memcpy(w, code, code_len);
        w += code_len;
        *w++ = d->escape;
        run = i + 1;
    }
    memcpy(w, in.ptr + run, in.len - run);
    w += in.len - run;
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return PX_OK;
}
