/* The ACK and NAK builder (v2.x chapter 2, "Acknowledgment messages") and the MSA reader.
 *
 * The ERR segment changed shape twice: up to v2.4 everything sits in ERR-1 (an ELD, in
 * v2.1 a bare code) with the condition repeated in MSA-6; v2.5 withdrew ERR-1 for ERR-2
 * location, ERR-3 code, ERR-4 severity and ERR-8 user message; v2.7 withdrew MSA-3 too.
 * The layout follows the version of the message being acknowledged. */
#include "hl7/ack.h"

#include <stdio.h>
#include <string.h>

#include "hl7/escape.h"

/* Version codes (hl7_version_code) where the layout changes. */
#define V22  220u /* MSH-15/16, ERR-1 as ELD, MSA-6 */
#define V231 231u /* MSH-9.3 message structure */
#define V25  250u /* ERR-2/3/4/8 replace ERR-1 and MSA-6 */
#define V27  270u /* MSA-3 withdrawn */

/* The layout used when the version cannot be read. */
#define DEFAULT_VERSION_CODE V25
#define DEFAULT_VERSION      "2.5"

/* ERL holds segment, sequence, field, repetition, component and sub-component. */
#define ERL_PIECES 6
/* ELD holds segment, sequence and field before the code. */
#define ELD_PIECES 3

static const char *const code_names[] = {"AA", "AE", "AR", "CA", "CE", "CR"};

/* Table 0357 texts, from the HL7 dictionary. */
static const struct {
    unsigned code;
    const char *text;
} condition_texts[] = {
    {0, "Message accepted"},
    {100, "Segment sequence error"},
    {101, "Required field missing"},
    {102, "Data type error"},
    {103, "Table value not found"},
    {104, "Value too long"},
    {200, "Unsupported message type"},
    {201, "Unsupported event code"},
    {202, "Unsupported processing id"},
    {203, "Unsupported version id"},
    {204, "Unknown key identifier"},
    {205, "Duplicate key identifier"},
    {206, "Application record locked"},
    {207, "Application internal error"},
};

static const char *condition_text(unsigned code)
{
    for (size_t i = 0; i < sizeof(condition_texts) / sizeof(condition_texts[0]); i++)
        if (condition_texts[i].code == code)
            return condition_texts[i].text;
    return NULL;
}

const char *hl7_ack_code_name(hl7_ack_code code)
{
    if ((unsigned)code >= sizeof(code_names) / sizeof(code_names[0]))
        return "??";
    return code_names[code];
}

bool hl7_ack_code_parse(px_str s, hl7_ack_code *out)
{
    for (size_t i = 0; i < sizeof(code_names) / sizeof(code_names[0]); i++) {
        if (px_str_eq_cstr(s, code_names[i])) {
            *out = (hl7_ack_code)i;
            return true;
        }
    }
    return false;
}

/* Empty, blank, or HL7's explicit null. */
static bool value_absent(px_str s)
{
    s = px_str_trim(s);
    return s.len == 0 || px_str_eq_cstr(s, "\"\"");
}

hl7_ack_mode hl7_ack_mode_for(const hl7_msh *msh, hl7_ack_mode configured)
{
    if (configured != HL7_ACK_MODE_FROM_MSH)
        return configured;
    if (msh == NULL)
        return HL7_ACK_MODE_ORIGINAL;
    /* Chapter 2: a message uses enhanced mode when MSH-15 or MSH-16 is valued. */
    if (!value_absent(msh->accept_ack) || !value_absent(msh->app_ack))
        return HL7_ACK_MODE_ENHANCED;
    return HL7_ACK_MODE_ORIGINAL;
}

hl7_ack_code hl7_ack_code_for(hl7_ack_mode mode, char kind)
{
    bool enhanced = mode == HL7_ACK_MODE_ENHANCED;
    switch (kind) {
    case 'A':
    case 'a':
        return enhanced ? HL7_ACK_CA : HL7_ACK_AA;
    case 'E':
    case 'e':
        return enhanced ? HL7_ACK_CE : HL7_ACK_AE;
    default:
        /* An unknown kind is read as the most conservative answer. */
        return enhanced ? HL7_ACK_CR : HL7_ACK_AR;
    }
}

hl7_ack_code hl7_ack_code_for_error(hl7_ack_mode mode, unsigned err_code)
{
    bool enhanced = mode == HL7_ACK_MODE_ENHANCED;
    if (err_code >= HL7_ERR_UNSUPPORTED_MESSAGE_TYPE && err_code <= HL7_ERR_UNSUPPORTED_VERSION_ID)
        return enhanced ? HL7_ACK_CR : HL7_ACK_AR;
    /* A commit reject (CR) is only for an unacceptable MSH-9, MSH-11 or MSH-12; a failure of
     * the receiver itself is a commit error in enhanced mode and a reject in original mode. */
    if (err_code == HL7_ERR_APPLICATION_INTERNAL)
        return enhanced ? HL7_ACK_CE : HL7_ACK_AR;
    return enhanced ? HL7_ACK_CE : HL7_ACK_AE;
}

static bool code_is_accept(hl7_ack_code code)
{
    return code == HL7_ACK_AA || code == HL7_ACK_CA;
}

bool hl7_ack_wanted(px_str ack_condition, hl7_ack_code code)
{
    px_str c = px_str_trim(ack_condition);
    if (px_str_eq_nocase(c, PX_LIT("NE")))
        return false;
    if (px_str_eq_nocase(c, PX_LIT("ER")))
        return !code_is_accept(code);
    if (px_str_eq_nocase(c, PX_LIT("SU")))
        return code_is_accept(code);
    /* AL, empty, and values outside table 0155: acknowledging is the safe answer. */
    return true;
}

/* Appends to a buffer until the first failure, which it keeps. */
typedef struct writer {
    px_buf *out;
    const hl7_delims *d;
    px_err rc;
} writer;

static void put(writer *w, const char *p, size_t n)
{
    if (w->rc == PX_OK)
        w->rc = px_buf_append(w->out, p, n);
}

static void put_str(writer *w, px_str s)
{
    put(w, s.ptr, s.len);
}

static void put_cstr(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_byte(writer *w, char c)
{
    put(w, &c, 1);
}

static void put_uint(writer *w, unsigned v)
{
    char tmp[16];
    int n = snprintf(tmp, sizeof(tmp), "%u", v);
    if (n > 0 && (size_t)n < sizeof(tmp))
        put(w, tmp, (size_t)n);
}

static void next_field(writer *w)
{
    put_byte(w, w->d->field);
}

static void next_component(writer *w)
{
    put_byte(w, w->d->component);
}

/* Text written into a field: escaped, so a separator in it never splits the segment (the
 * ACK's separators always include an escape character). */
static void put_text(writer *w, px_str s)
{
    if (w->rc == PX_OK)
        w->rc = hl7_escape(s, w->d, w->out, NULL);
}

/* The n-th (0-based) piece of a location such as "PID^1^3", split on ^ or on the message's
 * component separator. */
static px_str location_piece(px_str loc, char component, size_t n)
{
    if (loc.len == 0)
        return PX_STR_NULL;
    size_t begin = 0, piece = 0;
    for (size_t i = 0; i <= loc.len; i++) {
        if (i == loc.len || loc.ptr[i] == '^' || loc.ptr[i] == component) {
            if (piece == n)
                return px_str_make(loc.ptr + begin, i - begin);
            piece++;
            begin = i + 1;
        }
    }
    return PX_STR_NULL;
}

static size_t location_pieces(px_str loc, char component)
{
    if (loc.len == 0)
        return 0;
    size_t count = 1;
    for (size_t i = 0; i < loc.len; i++)
        if (loc.ptr[i] == '^' || loc.ptr[i] == component)
            count++;
    return count;
}

/* Writes the first `pieces` pieces of the location (padding with empty ones when pad). */
static void put_location(writer *w, px_str loc, size_t pieces, bool pad)
{
    size_t have = location_pieces(loc, w->d->component);
    size_t count = pad ? pieces : (have < pieces ? have : pieces);
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            next_component(w);
        put_text(w, location_piece(loc, w->d->component, i));
    }
}

/* What goes into the ACK's MSH and MSA-2, taken from the message or, for a bare NAK, from
 * the caller. Views are borrowed for one build. */
typedef struct ack_parts {
    const hl7_delims *d;
    px_str app[4];        /* the ACK's MSH-3..6: the message's MSH-5, 6, 3, 4 (raw) */
    px_str trigger;       /* MSH-9.2 of the message (raw) */
    px_str processing_id; /* the message's MSH-11 (raw) */
    px_str version;       /* the message's MSH-12 (raw), or the bare NAK's text */
    px_str acked_id;      /* MSA-2: the message's MSH-10 (raw), or the bare NAK's text */
    bool bare;            /* version and acked_id are text to escape */
    unsigned vcode;       /* the layout version, never 0 */
} ack_parts;

/* MSH-2. The ACK's separators are all set (see hl7_ack_build); the truncation character
 * exists from v2.7 only. */
static void put_encoding_chars(writer *w)
{
    const hl7_delims *d = w->d;
    const char enc[5] = {d->component, d->repetition, d->escape, d->subcomponent, d->truncation};
    put(w, enc, d->truncation != 0 ? 5 : 4);
}

static void put_msh(writer *w, const ack_parts *a, const hl7_ack_spec *spec)
{
    put_cstr(w, "MSH");
    next_field(w);
    put_encoding_chars(w);
    for (size_t i = 0; i < 4; i++) {
        next_field(w);
        put_str(w, a->app[i]);
    }
    next_field(w);
    put_text(w, spec->datetime); /* MSH-7 */
    next_field(w);               /* MSH-8 security, empty */
    next_field(w);
    /* MSH-9: the trigger event echoes the message's (a message without one gets a plain
     * ACK); from v2.3.1 the MSG type adds the message structure. */
    put_cstr(w, "ACK");
    if (a->trigger.len > 0) {
        next_component(w);
        put_str(w, a->trigger);
        if (a->vcode >= V231) {
            next_component(w);
            put_cstr(w, "ACK");
        }
    }
    next_field(w);
    put_text(w, spec->control_id); /* MSH-10 */
    next_field(w);
    put_str(w, a->processing_id.len > 0 ? a->processing_id : PX_LIT("P")); /* MSH-11 */
    next_field(w);
    if (a->version.len == 0) /* MSH-12 */
        put_cstr(w, DEFAULT_VERSION);
    else if (a->bare)
        put_text(w, a->version);
    else
        put_str(w, a->version);
    if (a->vcode >= V22) {
        /* MSH-13 and MSH-14 empty; MSH-15/16 NE: an ACK is never acknowledged. */
        next_field(w);
        next_field(w);
        next_field(w);
        put_cstr(w, "NE");
        next_field(w);
        put_cstr(w, "NE");
    }
    put_byte(w, '\r');
}

/* code^text^HL70357 (a CE or CWE in table 0357), with the table's text for the code. */
static void put_condition(writer *w, const hl7_ack_spec *spec, char sep)
{
    const char *text = condition_text(spec->err_code);
    put_uint(w, spec->err_code);
    put_byte(w, sep);
    if (text != NULL)
        put_cstr(w, text);
    else
        put_text(w, spec->err_text);
    put_byte(w, sep);
    put_cstr(w, "HL70357");
}

static void put_msa(writer *w, const ack_parts *a, const hl7_ack_spec *spec)
{
    bool text3 = a->vcode < V27 && spec->err_text.len > 0;
    bool cond6 = spec->err_code != 0 && a->vcode >= V22 && a->vcode < V25;
    put_cstr(w, "MSA");
    next_field(w);
    put_cstr(w, hl7_ack_code_name(spec->code));
    next_field(w);
    if (a->bare)
        put_text(w, a->acked_id);
    else
        put_str(w, a->acked_id);
    if (text3 || cond6) {
        next_field(w);
        if (text3)
            put_text(w, spec->err_text); /* MSA-3 text message */
    }
    if (cond6) {
        next_field(w); /* MSA-4 expected sequence number */
        next_field(w); /* MSA-5 delayed acknowledgment type */
        next_field(w);
        put_condition(w, spec, w->d->component); /* MSA-6 error condition (CE) */
    }
    put_byte(w, '\r');
}

static void put_err(writer *w, const ack_parts *a, const hl7_ack_spec *spec)
{
    const hl7_delims *d = w->d;
    put_cstr(w, "ERR");
    next_field(w);
    if (a->vcode < V22) {
        /* v2.1: ERR-1 is an ID, the bare code. */
        put_uint(w, spec->err_code);
    } else if (a->vcode < V25) {
        /* ERR-1 ELD: segment^sequence^field^code&text&HL70357. */
        put_location(w, spec->err_location, ELD_PIECES, true);
        next_component(w);
        put_uint(w, spec->err_code);
        put_byte(w, d->subcomponent);
        if (spec->err_text.len > 0)
            put_text(w, spec->err_text);
        else if (condition_text(spec->err_code) != NULL)
            put_cstr(w, condition_text(spec->err_code));
        put_byte(w, d->subcomponent);
        put_cstr(w, "HL70357");
    } else {
        /* ERR-1 withdrawn; ERR-2 ERL, ERR-3 CWE, ERR-4 severity, ERR-8 user message. */
        next_field(w);
        put_location(w, spec->err_location, ERL_PIECES, false);
        next_field(w);
        put_condition(w, spec, d->component);
        next_field(w);
        put_byte(w, spec->severity == 0 ? 'E' : spec->severity);
        if (spec->err_text.len > 0) {
            for (int i = 5; i <= 8; i++)
                next_field(w);
            put_text(w, spec->err_text);
        }
    }
    put_byte(w, '\r');
}

static px_err check_spec(const hl7_ack_spec *spec, px_error *err)
{
    if ((unsigned)spec->code > (unsigned)HL7_ACK_CR)
        return px_error_set(err, PX_ERR_INVAL, "ACK code %u is not an acknowledgment code",
                            (unsigned)spec->code);
    switch (spec->severity) {
    case 0:
    case 'E':
    case 'W':
    case 'I':
    case 'F':
        return PX_OK;
    default:
        return px_error_set(err, PX_ERR_INVAL, "ERR-4 severity %d is not in table 0516",
                            spec->severity);
    }
}

static px_err write_ack(const ack_parts *a, const hl7_ack_spec *spec, px_buf *out, px_error *err)
{
    px_err rc = check_spec(spec, err);
    if (rc != PX_OK)
        return rc;
    writer w = {out, a->d, PX_OK};
    size_t start = out->len;
    put_msh(&w, a, spec);
    put_msa(&w, a, spec);
    if (spec->err_code != 0)
        put_err(&w, a, spec);
    if (w.rc == PX_OK)
        return PX_OK;
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    if (w.rc == PX_ERR_TOO_LARGE)
        return px_error_set(err, w.rc, "ACK exceeds the buffer maximum (%zu bytes)", out->max);
    if (w.rc == PX_ERR_NOMEM)
        return px_error_set(err, w.rc, "out of memory building an ACK");
    return px_error_set(err, w.rc, "cannot build the ACK");
}

/* A separator for a position the message left empty: the first candidate it does not use. */
static char spare_separator(const hl7_delims *d)
{
    const char candidates[] = "^~\\&#$%*@!";
    for (size_t i = 0; i < sizeof(candidates) - 1; i++) {
        char c = candidates[i];
        if (c != d->field && c != d->component && c != d->repetition && c != d->escape &&
            c != d->subcomponent && c != d->truncation)
            return c;
    }
    return 0;
}

px_err hl7_ack_build(const hl7_msg_t *m, const hl7_ack_spec *spec, px_buf *out, px_error *err)
{
    hl7_msh msh;
    px_err rc = hl7_msh_read(m, &msh, err);
    if (rc != PX_OK)
        return rc;
    ptrdiff_t seg = hl7_segment_find(m, PX_LIT("MSH"), 1);
    if (seg < 0)
        return px_error_set(err, PX_ERR_PARSE, "message has no MSH to acknowledge");
    size_t s = (size_t)seg;

    /* The ACK is written with the message's separators, so its raw fields can be echoed.
     * Where the message's MSH-2 lacks a character (short, duplicated or empty), the ACK
     * takes the usual one, or another unused: its MSH-2 is complete and its text can
     * always be escaped. */
    hl7_delims d = *hl7_msg_delims(m);
    if (d.component == 0)
        d.component = spare_separator(&d);
    if (d.repetition == 0)
        d.repetition = spare_separator(&d);
    if (d.escape == 0)
        d.escape = spare_separator(&d);
    if (d.subcomponent == 0)
        d.subcomponent = spare_separator(&d);

    ack_parts a;
    a.d = &d;
    /* The ACK goes back where the message came from: its sender is the receiver. */
    a.app[0] = hl7_field(m, s, 5, 0, 0, 0);
    a.app[1] = hl7_field(m, s, 6, 0, 0, 0);
    a.app[2] = hl7_field(m, s, 3, 0, 0, 0);
    a.app[3] = hl7_field(m, s, 4, 0, 0, 0);
    a.trigger = msh.trigger;
    a.processing_id = hl7_field(m, s, 11, 0, 0, 0);
    a.version = hl7_field(m, s, 12, 0, 0, 0);
    a.acked_id = hl7_field(m, s, 10, 0, 0, 0);
    a.bare = false;
    a.vcode = hl7_version_code(msh.version);
    if (a.vcode == 0)
        a.vcode = DEFAULT_VERSION_CODE;
    return write_ack(&a, spec, out, err);
}

px_err hl7_ack_build_bare(px_str msg_control_id, px_str version, const hl7_ack_spec *spec,
                          px_buf *out, px_error *err)
{
    ack_parts a;
    memset(&a, 0, sizeof(a));
    a.d = &hl7_default_delims;
    a.version = px_str_trim(version);
    a.acked_id = msg_control_id;
    a.bare = true;
    a.vcode = hl7_version_code(a.version);
    if (a.vcode == 0)
        a.vcode = DEFAULT_VERSION_CODE;
    return write_ack(&a, spec, out, err);
}

px_err hl7_ack_read(const hl7_msg_t *ack, hl7_ack_info *out, px_error *err)
{
    ptrdiff_t seg = hl7_segment_find(ack, PX_LIT("MSA"), 1);
    if (seg < 0)
        return px_error_set(err, PX_ERR_PARSE, "ACK has no MSA segment");
    size_t s = (size_t)seg;
    px_str code = px_str_trim(hl7_field(ack, s, 1, 0, 0, 0));
    if (!hl7_ack_code_parse(code, &out->code))
        return px_error_set(err, PX_ERR_PARSE, "MSA-1 is not an acknowledgment code");
    out->acked_control_id = hl7_field(ack, s, 2, 0, 0, 0);
    out->text = hl7_field(ack, s, 3, 0, 0, 0);
    return PX_OK;
}
