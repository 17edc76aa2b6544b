/* hl7_parse and the accessors over its index (see hl7/internal.h for the layout).
 *
 * Parsing reads the separators from the header segment (MSH, or FHS/BHS for a batch),
 * lets the scanner record every field separator and segment boundary, then checks segment
 * names. It refuses only what has no readable field separator. */
#include "hl7/hl7.h"

#include "common/alloc.h"
#include "hl7/internal.h"

#include <stdlib.h>
#include <string.h>

const hl7_delims hl7_default_delims = {
    .field = '|',
    .component = '^',
    .repetition = '~',
    .escape = '\\',
    .subcomponent = '&',
    .truncation = 0,
};

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_eol(char c)
{
    return c == '\r' || c == '\n';
}

px_err hl7_msg_create(hl7_msg_t **out, px_error *err)
{
    hl7_msg_t *m = px_calloc(1, sizeof(*m));
    if (m == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory creating a parser");
    /* PX_HL7_NO_SIMD forces the portable scanner, so tests and the benchmark can compare
     * the two paths; it is read here, once per parser state. */
    const char *no_simd = getenv("PX_HL7_NO_SIMD");
    bool forced_off = no_simd != NULL && no_simd[0] != '\0' && strcmp(no_simd, "0") != 0;
    m->simd = !forced_off && hl7__simd_supported();
    *out = m;
    return PX_OK;
}

void hl7_msg_destroy(hl7_msg_t *m)
{
    if (m == NULL)
        return;
    px_free(m->segs);
    px_free(m->seps);
    px_free(m);
}

void hl7__add_problem(hl7_msg_t *m, hl7_problem_code code, uint32_t seg, uint32_t field)
{
    if (m->nprob == HL7__MAX_PROBLEMS)
        return;
    m->probs[m->nprob++] = (hl7_problem){.code = code, .segment = seg, .field = field};
}

static bool is_header_name(const char *p)
{
    return (p[0] == 'M' && p[1] == 'S' && p[2] == 'H') ||
           (p[0] == 'F' && p[1] == 'H' && p[2] == 'S') ||
           (p[0] == 'B' && p[1] == 'H' && p[2] == 'S');
}

bool hl7__is_header_segment(const hl7_msg_t *m, size_t seg)
{
    const hl7__seg *s = &m->segs[seg];
    if (s->end - s->start < 3 || (s->nsep > 0 && m->seps[s->sep0] != s->start + 3))
        return false;
    return is_header_name(m->base + s->start);
}

/* A field separator the parser can work with: not a terminator, letter, digit or NUL. */
static bool usable_field_sep(char c)
{
    return c != '\0' && !is_eol(c) && !is_alnum(c);
}

/* Finds the header segment: the first non-blank line if it is MSH, FHS or BHS, else the
 * first line starting with MSH. Returns its offset, or -1. *first tells which case. */
static ptrdiff_t find_header(const char *p, size_t len, bool *first)
{
    size_t i = 0;
    while (i < len && is_eol(p[i]))
        i++;
    *first = true;
    if (len - i >= 3 && is_header_name(p + i))
        return (ptrdiff_t)i;
    *first = false;
    for (size_t k = i + 1; k + 3 <= len; k++) {
        if (is_eol(p[k - 1]) && p[k] == 'M' && p[k + 1] == 'S' && p[k + 2] == 'H' &&
            (k + 3 == len || usable_field_sep(p[k + 3])))
            return (ptrdiff_t)k;
    }
    return -1;
}

/* Reads MSH-2 of the header at offset h into m->delims. Duplicated, alphanumeric or NUL
 * characters are left out (0) and flagged in *bad, as are missing characters when MSH-2 is
 * followed by a field separator or more than five characters; *shrt tells that the segment
 * ended before four characters. *count gets the number of characters, *fifth the fifth. */
static void read_encoding(hl7_msg_t *m, size_t h, bool *bad, bool *shrt, unsigned *count,
                          char *fifth)
{
    const char *p = m->base;
    char fs = p[h + 3];
    size_t i = h + 4;
    char chars[5] = {0};
    unsigned k = 0;
    while (i < m->len && p[i] != fs && !is_eol(p[i])) {
        if (k < 5)
            chars[k] = p[i];
        k++;
        i++;
    }
    bool ended = i == m->len || is_eol(p[i]);
    *shrt = k < 4 && ended;
    *bad = k > 5 || (k < 4 && !ended);
    char used[6] = {fs, 0, 0, 0, 0, 0};
    unsigned nused = 1;
    for (unsigned j = 0; j < k && j < 5; j++) {
        char c = chars[j];
        bool ok = c != '\0' && !is_alnum(c) && memchr(used, c, nused) == NULL;
        if (ok)
            used[nused++] = c;
        else {
            chars[j] = 0;
            *bad = true;
        }
    }
    m->delims = (hl7_delims){
        .field = fs,
        .component = chars[0],
        .repetition = chars[1],
        .escape = chars[2],
        .subcomponent = chars[3],
        .truncation = 0,
    };
    *count = k;
    *fifth = chars[4];
}

static void reset(hl7_msg_t *m)
{
    m->base = NULL;
    m->len = 0;
    memset(&m->delims, 0, sizeof(m->delims));
    m->nseg = 0;
    m->nsep = 0;
    m->validated = false;
    m->nprob = 0;
}

static bool good_segment_name(const hl7_msg_t *m, const hl7__seg *s)
{
    uint32_t name_end = s->nsep > 0 ? m->seps[s->sep0] : s->end;
    if (name_end - s->start != 3)
        return false;
    for (uint32_t i = s->start; i < name_end; i++) {
        char c = m->base[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

px_err hl7_parse(hl7_msg_t *m, const char *ptr, size_t len, unsigned flags, px_error *err)
{
    if (m == NULL)
        return px_error_set(err, PX_ERR_INVAL, "no parser state");
    reset(m);
    if (ptr == NULL && len > 0)
        return px_error_set(err, PX_ERR_INVAL, "no message bytes");
    if (len >= 3 && memcmp(ptr, "\xEF\xBB\xBF", 3) == 0) {
        ptr += 3;
        len -= 3;
    }
    if (len > UINT32_MAX)
        return px_error_set(err, PX_ERR_TOO_LARGE, "message of %zu bytes exceeds 4 GiB", len);
    bool first;
    ptrdiff_t h = find_header(ptr, len, &first);
    if (h < 0)
        return px_error_set(err, PX_ERR_PARSE, "no MSH segment to read separators from");
    size_t hs = (size_t)h;
    if (hs + 3 >= len || !usable_field_sep(ptr[hs + 3]))
        return px_error_setd(err, PX_ERR_PARSE, (int)(hs + 3),
                             "MSH-1 does not hold a usable field separator");
    m->base = ptr;
    m->len = len;
    bool bad, shrt;
    unsigned nenc;
    char fifth;
    read_encoding(m, hs, &bad, &shrt, &nenc, &fifth);

    /* Header problems go first so that a flood of later ones cannot push them out; their
     * segment index is known once the index is built. */
    if (!first)
        hl7__add_problem(m, HL7_PROB_NO_MSH, 0, 0);
    if (shrt)
        hl7__add_problem(m, HL7_PROB_SHORT_MSH, 0, 2);
    if (bad)
        hl7__add_problem(m, HL7_PROB_BAD_ENCODING_CHARS, 0, 2);
    uint32_t nheader = m->nprob;

    px_err rc = hl7__index(m, m->delims.field, flags, err);
    if (rc != PX_OK) {
        reset(m);
        return rc;
    }

    /* The header is the segment starting at hs; segments before it exist only when the
     * message did not start with a header. */
    uint32_t hdr = 0;
    while (hdr < m->nseg && m->segs[hdr].start < hs)
        hdr++;
    for (uint32_t i = 0; i < nheader; i++)
        if (m->probs[i].code != HL7_PROB_NO_MSH)
            m->probs[i].segment = hdr;

    bool seen_msh = false;
    ptrdiff_t first_msh = -1;
    for (uint32_t i = 0; i < m->nseg; i++) {
        const hl7__seg *s = &m->segs[i];
        if (!good_segment_name(m, s)) {
            hl7__add_problem(m, HL7_PROB_BAD_SEGMENT_NAME, i, 0);
            continue;
        }
        if (memcmp(m->base + s->start, "MSH", 3) == 0) {
            if (seen_msh)
                hl7__add_problem(m, HL7_PROB_SECOND_MSH, i, 0);
            else
                first_msh = i;
            seen_msh = true;
        }
    }

    /* From v2.7 a fifth encoding character is the truncation character. */
    if (nenc == 5 && fifth != 0 && first_msh >= 0) {
        px_str v = hl7_field(m, (size_t)first_msh, 12, 1, 1, 0);
        if (hl7_version_code(v) >= 270)
            m->delims.truncation = fifth;
    }
    return PX_OK;
}

px_str hl7_msg_bytes(const hl7_msg_t *m)
{
    return px_str_make(m->base, m->len);
}

const hl7_delims *hl7_msg_delims(const hl7_msg_t *m)
{
    return &m->delims;
}

size_t hl7_segment_count(const hl7_msg_t *m)
{
    return m->nseg;
}

px_str hl7_segment_name(const hl7_msg_t *m, size_t seg)
{
    if (seg >= m->nseg)
        return PX_STR_NULL;
    const hl7__seg *s = &m->segs[seg];
    uint32_t end = s->nsep > 0 ? m->seps[s->sep0] : s->end;
    return px_str_make(m->base + s->start, end - s->start);
}

px_str hl7_segment_raw(const hl7_msg_t *m, size_t seg)
{
    if (seg >= m->nseg)
        return PX_STR_NULL;
    const hl7__seg *s = &m->segs[seg];
    return px_str_make(m->base + s->start, s->end - s->start);
}

ptrdiff_t hl7_segment_find(const hl7_msg_t *m, px_str name, size_t occurrence)
{
    if (occurrence == 0)
        return -1;
    for (uint32_t i = 0; i < m->nseg; i++) {
        px_str n = hl7_segment_name(m, i);
        if (n.len == name.len && memcmp(n.ptr, name.ptr, n.len) == 0 && --occurrence == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

size_t hl7_field_count(const hl7_msg_t *m, size_t seg)
{
    if (seg >= m->nseg)
        return 0;
    const hl7__seg *s = &m->segs[seg];
    if (s->nsep > 0 && hl7__is_header_segment(m, seg))
        return (size_t)s->nsep + 1;
    return s->nsep;
}

/* The raw field, and whether it is MSH-1/MSH-2 (never split further). */
static px_str field_view(const hl7_msg_t *m, size_t seg, size_t field, bool *literal)
{
    *literal = false;
    if (seg >= m->nseg || field == 0)
        return PX_STR_NULL;
    const hl7__seg *s = &m->segs[seg];
    size_t idx = field;
    if (s->nsep > 0 && hl7__is_header_segment(m, seg)) {
        if (field <= 2)
            *literal = true;
        if (field == 1)
            return px_str_make(m->base + m->seps[s->sep0], 1);
        idx = field - 1;
    }
    if (idx > s->nsep)
        return PX_STR_NULL;
    uint32_t start = m->seps[s->sep0 + idx - 1] + 1;
    uint32_t end = idx < s->nsep ? m->seps[s->sep0 + idx] : s->end;
    return px_str_make(m->base + start, end - start);
}

px_str hl7_piece(px_str s, char sep, size_t n)
{
    if (n == 0 || s.ptr == NULL)
        return PX_STR_NULL;
    if (sep == '\0')
        return n == 1 ? s : PX_STR_NULL;
    const char *p = s.ptr, *end = s.ptr + s.len;
    for (size_t i = 1; i < n; i++) {
        const char *q = memchr(p, sep, (size_t)(end - p));
        if (q == NULL)
            return PX_STR_NULL;
        p = q + 1;
    }
    const char *q = memchr(p, sep, (size_t)(end - p));
    return px_str_make(p, (size_t)((q != NULL ? q : end) - p));
}

size_t hl7_piece_count(px_str s, char sep)
{
    if (sep == '\0' || s.len == 0)
        return 1;
    size_t count = 1;
    const char *p = s.ptr, *end = s.ptr + s.len;
    const char *q;
    while ((q = memchr(p, sep, (size_t)(end - p))) != NULL) {
        count++;
        p = q + 1;
    }
    return count;
}

px_str hl7_field(const hl7_msg_t *m, size_t seg, size_t field, size_t rep, size_t comp, size_t sub)
{
    bool literal;
    px_str v = field_view(m, seg, field, &literal);
    if (v.ptr == NULL)
        return v;
    if (sub != 0 && comp == 0)
        comp = 1;
    if (comp != 0 && rep == 0)
        rep = 1;
    if (literal)
        return rep <= 1 && comp <= 1 && sub <= 1 ? v : PX_STR_NULL;
    if (rep == 0)
        return v;
    v = hl7_piece(v, m->delims.repetition, rep);
    if (comp == 0 || v.ptr == NULL)
        return v;
    v = hl7_piece(v, m->delims.component, comp);
    if (sub == 0 || v.ptr == NULL)
        return v;
    return hl7_piece(v, m->delims.subcomponent, sub);
}

size_t hl7_rep_count(const hl7_msg_t *m, size_t seg, size_t field)
{
    bool literal;
    px_str v = field_view(m, seg, field, &literal);
    if (v.ptr == NULL)
        return 0;
    return literal ? 1 : hl7_piece_count(v, m->delims.repetition);
}

size_t hl7_comp_count(const hl7_msg_t *m, size_t seg, size_t field, size_t rep)
{
    px_str v = hl7_field(m, seg, field, rep == 0 ? 1 : rep, 0, 0);
    if (v.ptr == NULL)
        return 0;
    bool literal;
    field_view(m, seg, field, &literal);
    return literal ? 1 : hl7_piece_count(v, m->delims.component);
}

size_t hl7_sub_count(const hl7_msg_t *m, size_t seg, size_t field, size_t rep, size_t comp)
{
    px_str v = hl7_field(m, seg, field, rep == 0 ? 1 : rep, comp == 0 ? 1 : comp, 0);
    if (v.ptr == NULL)
        return 0;
    bool literal;
    field_view(m, seg, field, &literal);
    return literal ? 1 : hl7_piece_count(v, m->delims.subcomponent);
}

bool hl7_is_null(px_str value)
{
    return value.len == 2 && value.ptr[0] == '"' && value.ptr[1] == '"';
}

const hl7_problem *hl7_problems(const hl7_msg_t *m, size_t *count)
{
    if (count != NULL)
        *count = m->nprob;
    return m->probs;
}
