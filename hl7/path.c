/* Field paths as interface engineers write them:
 *
 *   path  = SEG [ "[" occurrence "]" ] "-" field [ "[" rep "]" ] [ "." comp [ "." sub ] ]
 *
 * SEG is three upper-case letters or digits; every number is 1-based. */
#include "hl7/hl7.h"

#include <stdio.h>
#include <string.h>

/* Numbers above this are refused: no segment has more fields, nor a field more parts,
 * than a message under 4 GiB could hold, and it keeps formatting short. */
#define PATH_MAX_NUMBER 1000000u

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads a positive number at *i. */
static px_err read_number(px_str t, size_t *i, const char *what, uint32_t *out, px_error *err)
{
    size_t start = *i;
    uint64_t v = 0;
    while (*i < t.len && is_digit(t.ptr[*i])) {
        v = v * 10 + (uint64_t)(t.ptr[*i] - '0');
        if (v > PATH_MAX_NUMBER)
            return px_error_set(err, PX_ERR_PARSE, "path: %s number at offset %zu is too large",
                                what, start);
        (*i)++;
    }
    if (*i == start)
        return px_error_set(err, PX_ERR_PARSE, "path: expected a %s number at offset %zu", what,
                            start);
    if (v == 0)
        return px_error_set(err, PX_ERR_PARSE, "path: %s number at offset %zu must be 1 or more",
                            what, start);
    *out = (uint32_t)v;
    return PX_OK;
}

/* Reads "[n]" at *i when present; *out is left alone otherwise. */
static px_err read_index(px_str t, size_t *i, const char *what, uint32_t *out, px_error *err)
{
    if (*i >= t.len || t.ptr[*i] != '[')
        return PX_OK;
    (*i)++;
    px_err rc = read_number(t, i, what, out, err);
    if (rc != PX_OK)
        return rc;
    if (*i >= t.len || t.ptr[*i] != ']')
        return px_error_set(err, PX_ERR_PARSE, "path: expected ']' after the %s at offset %zu",
                            what, *i);
    (*i)++;
    return PX_OK;
}

px_err hl7_path_parse(px_str text, hl7_path *out, px_error *err)
{
    hl7_path p = {.occurrence = 1};
    size_t i = 0;
    px_err rc;
    if (text.len < 3)
        return px_error_set(err, PX_ERR_PARSE, "path: too short for a segment name");
    for (i = 0; i < 3; i++) {
        char c = text.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || is_digit(c)))
            return px_error_set(err, PX_ERR_PARSE,
                                "path: the segment name must be three upper-case letters or "
                                "digits");
        p.segment[i] = c;
    }
    p.segment[3] = '\0';
    if ((rc = read_index(text, &i, "segment occurrence", &p.occurrence, err)) != PX_OK)
        return rc;
    if (i >= text.len || text.ptr[i] != '-')
        return px_error_set(err, PX_ERR_PARSE, "path: expected '-' and a field at offset %zu", i);
    i++;
    if ((rc = read_number(text, &i, "field", &p.field, err)) != PX_OK)
        return rc;
    uint32_t rep = 0;
    if ((rc = read_index(text, &i, "repetition", &rep, err)) != PX_OK)
        return rc;
    if (i < text.len && text.ptr[i] == '.') {
        i++;
        if ((rc = read_number(text, &i, "component", &p.comp, err)) != PX_OK)
            return rc;
        if (i < text.len && text.ptr[i] == '.') {
            i++;
            if ((rc = read_number(text, &i, "sub-component", &p.sub, err)) != PX_OK)
                return rc;
        }
        /* A component without a repetition means the first repetition's. */
        if (rep == 0)
            rep = 1;
    }
    p.rep = rep;
    if (i != text.len)
        return px_error_set(err, PX_ERR_PARSE, "path: unexpected character at offset %zu", i);
    *out = p;
    return PX_OK;
}

int hl7_path_format(const hl7_path *p, char *dst, size_t dst_size)
{
    char occ[16] = "", rep[16] = "", comp[32] = "";
    int n;
    if (p->occurrence > 1) {
        n = snprintf(occ, sizeof(occ), "[%u]", (unsigned)p->occurrence);
        if (n < 0 || (size_t)n >= sizeof(occ))
            return -1;
    }
    /* The first repetition is implied when a component follows. */
    if (p->rep > 1 || (p->rep == 1 && p->comp == 0)) {
        n = snprintf(rep, sizeof(rep), "[%u]", (unsigned)p->rep);
        if (n < 0 || (size_t)n >= sizeof(rep))
            return -1;
    }
    if (p->comp > 0 && p->sub > 0)
        n = snprintf(comp, sizeof(comp), ".%u.%u", (unsigned)p->comp, (unsigned)p->sub);
    else if (p->comp > 0)
        n = snprintf(comp, sizeof(comp), ".%u", (unsigned)p->comp);
    else
        n = 0;
    if (n < 0 || (size_t)n >= sizeof(comp))
        return -1;
    return snprintf(dst, dst_size, "%.3s%s-%u%s%s", p->segment, occ, (unsigned)p->field, rep, comp);
}

bool hl7_path_get(const hl7_msg_t *m, const hl7_path *p, px_str *out)
{
    size_t name_len = strnlen(p->segment, sizeof(p->segment));
    size_t occurrence = p->occurrence == 0 ? 1 : p->occurrence;
    ptrdiff_t seg = hl7_segment_find(m, px_str_make(p->segment, name_len), occurrence);
    if (seg < 0) {
        *out = PX_STR_NULL;
        return false;
    }
    *out = hl7_field(m, (size_t)seg, p->field, p->rep, p->comp, p->sub);
    return true;
}
