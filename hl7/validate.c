/* Checks beyond reading: MSH-9/10/12 present, a supported version, a valid processing id
 * and well-formed escape sequences; plus the names and texts of every problem code.
 *
 * The escape check is done here rather than through hl7/escape.h so that parsing and
 * validation depend on nothing but the index. */
#include "hl7/hl7.h"

#include "hl7/internal.h"

#include <string.h>

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static bool all_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_hex(p[i]))
            return false;
    return true;
}

/* A formatting command's optional signed count: "", "5", "+2", "-4". */
static bool is_count(const char *p, size_t n)
{
    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        p++;
        n--;
        if (n == 0)
            return false;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

/* The text between two escape characters (v2.x chapter 2.7): \F\ \S\ \T\ \R\ \E\ \P\,
 * \H\ \N\, \Xhh…\, \Zxx…\, \Cxxyy\, \Mxxyy[zz]\ and the FT commands \.br\ \.sp\ \.fi\
 * \.nf\ \.in\ \.ti\ \.sk\ \.ce\. */
static bool escape_body_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    switch (p[0]) {
    case 'F':
    case 'S':
    case 'T':
    case 'R':
    case 'E':
    case 'P':
    case 'H':
    case 'N':
        return n == 1;
    case 'X':
        return n >= 3 && (n - 1) % 2 == 0 && all_hex(p + 1, n - 1);
    case 'Z':
        return n >= 2;
    case 'C':
        return n == 5 && all_hex(p + 1, 4);
    case 'M':
        return (n == 5 || n == 7) && all_hex(p + 1, n - 1);
    case '.':
        if (n == 3 && (memcmp(p, ".br", 3) == 0 || memcmp(p, ".fi", 3) == 0 ||
                       memcmp(p, ".nf", 3) == 0 || memcmp(p, ".ce", 3) == 0))
            return true;
        if (n >= 3 && (memcmp(p, ".sp", 3) == 0 || memcmp(p, ".in", 3) == 0 ||
                       memcmp(p, ".ti", 3) == 0 || memcmp(p, ".sk", 3) == 0))
            return is_count(p + 3, n - 3);
        return false;
    default:
        return false;
    }
}

/* True when every escape sequence in the raw field v is terminated and known. A sequence
 * cannot span a separator: one inside it means it was never closed. */
static bool field_escapes_ok(px_str v, const hl7_delims *d)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p < end) {
        const char *open = memchr(p, d->escape, (size_t)(end - p));
        if (open == NULL)
            return true;
        const char *close = memchr(open + 1, d->escape, (size_t)(end - open - 1));
        if (close == NULL)
            return false;
        const char *body = open + 1;
        size_t n = (size_t)(close - body);
        for (size_t i = 0; i < n; i++) {
            char c = body[i];
            if ((d->component != 0 && c == d->component) ||
                (d->repetition != 0 && c == d->repetition) ||
                (d->subcomponent != 0 && c == d->subcomponent))
                return false;
        }
        if (!escape_body_ok(body, n))
            return false;
        p = close + 1;
    }
    return true;
}

static void check_escapes(hl7_msg_t *m)
{
    const hl7_delims *d = &m->delims;
    if (d->escape == 0)
        return;
    for (uint32_t s = 0; s < m->nseg; s++) {
        const hl7__seg *seg = &m->segs[s];
        /* Cheap rejection: most segments hold no escape character at all. */
        if (memchr(m->base + seg->start, d->escape, seg->end - seg->start) == NULL)
            continue;
        size_t nf = hl7_field_count(m, s);
        size_t first = hl7__is_header_segment(m, s) ? 3 : 1;
        for (size_t f = first; f <= nf; f++) {
            if (!field_escapes_ok(hl7_field(m, s, f, 0, 0, 0), d))
                hl7__add_problem(m, HL7_PROB_BAD_ESCAPE, s, (uint32_t)f);
        }
    }
}

static void check_msh(hl7_msg_t *m)
{
    ptrdiff_t found = hl7_segment_find(m, PX_LIT("MSH"), 1);
    if (found < 0)
        return;
    uint32_t s = (uint32_t)found;
    if (hl7_field(m, s, 9, 1, 1, 0).len == 0)
        hl7__add_problem(m, HL7_PROB_MISSING_MSH9, s, 9);
    if (hl7_field(m, s, 10, 0, 0, 0).len == 0)
        hl7__add_problem(m, HL7_PROB_MISSING_MSH10, s, 10);
    px_str pid = hl7_field(m, s, 11, 1, 1, 0);
    if (pid.len != 1 || (pid.ptr[0] != 'P' && pid.ptr[0] != 'D' && pid.ptr[0] != 'T'))
        hl7__add_problem(m, HL7_PROB_BAD_PROCESSING_ID, s, 11);
    px_str version = hl7_field(m, s, 12, 1, 1, 0);
    if (version.len == 0) {
        hl7__add_problem(m, HL7_PROB_MISSING_MSH12, s, 12);
    } else {
        unsigned code = hl7_version_code(version);
        if (code < 210 || code > 289)
            hl7__add_problem(m, HL7_PROB_UNSUPPORTED_VERSION, s, 12);
    }
}

size_t hl7_validate(hl7_msg_t *m)
{
    if (m->validated || m->base == NULL)
        return m->nprob;
    m->validated = true;
    check_msh(m);
    check_escapes(m);
    return m->nprob;
}

const char *hl7_problem_name(hl7_problem_code code)
{
    switch (code) {
    case HL7_PROB_NO_MSH:
        return "no_msh";
    case HL7_PROB_SHORT_MSH:
        return "short_msh";
    case HL7_PROB_BAD_ENCODING_CHARS:
        return "bad_encoding_chars";
    case HL7_PROB_MISSING_MSH9:
        return "missing_msh9";
    case HL7_PROB_MISSING_MSH10:
        return "missing_msh10";
    case HL7_PROB_MISSING_MSH12:
        return "missing_msh12";
    case HL7_PROB_BAD_SEGMENT_NAME:
        return "bad_segment_name";
    case HL7_PROB_EMPTY_SEGMENT:
        return "empty_segment";
    case HL7_PROB_LF_SEPARATOR:
        return "lf_separator";
    case HL7_PROB_SECOND_MSH:
        return "second_msh";
    case HL7_PROB_BAD_ESCAPE:
        return "bad_escape";
    case HL7_PROB_UNSUPPORTED_VERSION:
        return "unsupported_version";
    case HL7_PROB_BAD_PROCESSING_ID:
        return "bad_processing_id";
    }
    return "unknown";
}

const char *hl7_problem_text(hl7_problem_code code)
{
    switch (code) {
    case HL7_PROB_NO_MSH:
        return "the message does not start with an MSH segment";
    case HL7_PROB_SHORT_MSH:
        return "the MSH segment ends before its encoding characters";
    case HL7_PROB_BAD_ENCODING_CHARS:
        return "MSH-2 has duplicated, alphanumeric, missing or extra encoding characters";
    case HL7_PROB_MISSING_MSH9:
        return "MSH-9 (message type) is empty";
    case HL7_PROB_MISSING_MSH10:
        return "MSH-10 (message control id) is empty";
    case HL7_PROB_MISSING_MSH12:
        return "MSH-12 (version id) is empty";
    case HL7_PROB_BAD_SEGMENT_NAME:
        return "a segment name is not three upper-case letters or digits";
    case HL7_PROB_EMPTY_SEGMENT:
        return "an empty line stands between segments";
    case HL7_PROB_LF_SEPARATOR:
        return "segments are separated by \\n or \\r\\n instead of \\r";
    case HL7_PROB_SECOND_MSH:
        return "another MSH segment appears inside the message";
    case HL7_PROB_BAD_ESCAPE:
        return "an escape sequence is unterminated or unknown";
    case HL7_PROB_UNSUPPORTED_VERSION:
        return "MSH-12 is not a version from 2.1 to 2.8.x";
    case HL7_PROB_BAD_PROCESSING_ID:
        return "MSH-11 is not P, D or T";
    }
    return "unknown problem";
}
