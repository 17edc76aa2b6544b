/* Reading MSH: the header fields every caller wants, and the version as a number. */
#include "hl7/hl7.h"

#include <string.h>

px_err hl7_msh_read(const hl7_msg_t *m, hl7_msh *out, px_error *err)
{
    memset(out, 0, sizeof(*out));
    ptrdiff_t s = hl7_segment_find(m, PX_LIT("MSH"), 1);
    if (s < 0)
        return px_error_set(err, PX_ERR_PARSE, "message has no MSH segment");
    size_t i = (size_t)s;
    out->sending_app = hl7_field(m, i, 3, 0, 0, 0);
    out->sending_facility = hl7_field(m, i, 4, 0, 0, 0);
    out->receiving_app = hl7_field(m, i, 5, 0, 0, 0);
    out->receiving_facility = hl7_field(m, i, 6, 0, 0, 0);
    out->datetime = hl7_field(m, i, 7, 0, 0, 0);
    out->type = hl7_field(m, i, 9, 1, 1, 0);
    out->trigger = hl7_field(m, i, 9, 1, 2, 0);
    out->structure = hl7_field(m, i, 9, 1, 3, 0);
    out->control_id = hl7_field(m, i, 10, 0, 0, 0);
    out->processing_id = hl7_field(m, i, 11, 1, 1, 0);
    out->version = hl7_field(m, i, 12, 1, 1, 0);
    out->accept_ack = hl7_field(m, i, 15, 0, 0, 0);
    out->app_ack = hl7_field(m, i, 16, 0, 0, 0);
    /* MSH-18 may repeat (ISO 2022 code extensions); the first repetition is the default
     * character set. The bytes themselves are never transcoded here. */
    out->charset = hl7_field(m, i, 18, 1, 0, 0);
    return PX_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

unsigned hl7_version_code(px_str v)
{
    /* "2.D" or "2.D.D": one digit per part, as every published v2 version is written. */
    if (v.ptr == NULL || (v.len != 3 && v.len != 5))
        return 0;
    const char *p = v.ptr;
    if (!is_digit(p[0]) || p[1] != '.' || !is_digit(p[2]))
        return 0;
    unsigned code = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[2] - '0') * 10;
    if (v.len == 5) {
        if (p[3] != '.' || !is_digit(p[4]))
            return 0;
        code += (unsigned)(p[4] - '0');
    }
    return code;
}
