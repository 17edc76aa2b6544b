/* The zero-copy HL7 v2 (ER7) parser.
 *
 * hl7_parse() indexes a message held in the caller's buffer: it records where every
 * segment and every field starts and ends, and never copies or modifies the bytes, never
 * needs a NUL terminator and never reads past ptr + len. Components, repetitions and
 * sub-components are found on demand inside a field. All views returned by accessors
 * point into the caller's buffer and are valid while it is (and until the next parse into
 * the same hl7_msg_t).
 *
 * Numbering follows HL7: segments are indexed from 0 in message order (MSH is 0), but
 * fields, repetitions, components and sub-components count from 1. In the accessors a 0
 * for rep/comp/sub means "the whole": hl7_field(m, s, 3, 0, 0, 0) is all of PID-3 with its
 * repetitions, hl7_field(m, s, 3, 2, 0, 0) its second repetition, and so on.
 * MSH's quirk is kept: MSH-1 is the field separator itself and MSH-2 the encoding
 * characters, so MSH-3 is the first field after them.
 *
 * Reading never fails on oddities the proxy must still forward (bad segment names, short
 * MSH, missing MSH-10 …): those are recorded as problems (hl7_problems) and the caller
 * decides. Only a message whose separators cannot be read at all fails to parse. */
#ifndef PX_HL7_HL7_H
#define PX_HL7_HL7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/str.h"

/* The separators of one message, read from MSH-1 and MSH-2. truncation is 0 before
 * v2.7 or when MSH-2 has four characters. */
typedef struct hl7_delims {
    char field;        /* usually | */
    char component;    /* usually ^ */
    char repetition;   /* usually ~ */
    char escape;       /* usually \ ; 0 when MSH-2 omits it */
    char subcomponent; /* usually & ; 0 when MSH-2 omits it */
    char truncation;   /* # from v2.7, else 0 */
} hl7_delims;

/* The default separators |^~\& (for building messages). */
extern const hl7_delims hl7_default_delims;

/* Parse options. */
enum {
    /* Refuse \n and \r\n as segment separators (HL7 says \r only). */
    HL7_PARSE_STRICT = 1u << 0,
};

/* Problems found while parsing or validating; the proxy reports them, the parser reads on. */
typedef enum hl7_problem_code {
    HL7_PROB_NO_MSH = 1,          /* the message does not start with MSH (or FHS/BHS) */
    HL7_PROB_SHORT_MSH,           /* MSH too short to hold its separators */
    HL7_PROB_BAD_ENCODING_CHARS,  /* MSH-2 duplicated, alphanumeric or missing characters */
    HL7_PROB_MISSING_MSH9,        /* message type empty */
    HL7_PROB_MISSING_MSH10,       /* message control id empty */
    HL7_PROB_MISSING_MSH12,       /* version id empty */
    HL7_PROB_BAD_SEGMENT_NAME,    /* segment name not three upper-case letters/digits */
    HL7_PROB_EMPTY_SEGMENT,       /* an empty line between segments */
    HL7_PROB_LF_SEPARATOR,        /* \n or \r\n used between segments */
    HL7_PROB_SECOND_MSH,          /* another MSH inside the message */
    HL7_PROB_BAD_ESCAPE,          /* an escape sequence is unterminated or unknown */
    HL7_PROB_UNSUPPORTED_VERSION, /* MSH-12 is not 2.1 … 2.8.x */
    HL7_PROB_BAD_PROCESSING_ID,   /* MSH-11 not P, D or T */
} hl7_problem_code;

typedef struct hl7_problem {
    hl7_problem_code code;
    uint32_t segment; /* index of the segment (0 = MSH) */
    uint32_t field;   /* field number, 0 when the whole segment is meant */
} hl7_problem;

typedef struct hl7_msg hl7_msg_t;

/* A parser state, reusable across messages (its index storage is kept and grown).
 * Returns PX_ERR_NOMEM. Destroy with hl7_msg_destroy (NULL is a no-op). */
px_err hl7_msg_create(hl7_msg_t **out, px_error *err);
void hl7_msg_destroy(hl7_msg_t *m);

/* Indexes the len bytes at ptr (borrowed: they must outlive every view taken from m).
 * A leading UTF-8 byte-order mark is skipped. Trailing segment separators are ignored.
 * Returns PX_OK when the separators could be read, even if problems were recorded;
 * PX_ERR_PARSE when there is no MSH to read separators from (or, with HL7_PARSE_STRICT,
 * a \n separator); PX_ERR_TOO_LARGE beyond 4 GiB; PX_ERR_NOMEM. */
px_err hl7_parse(hl7_msg_t *m, const char *ptr, size_t len, unsigned flags, px_error *err);

/* The bytes parsed (after a skipped byte-order mark). */
px_str hl7_msg_bytes(const hl7_msg_t *m);
const hl7_delims *hl7_msg_delims(const hl7_msg_t *m);

/* Segment access. */
size_t hl7_segment_count(const hl7_msg_t *m);
px_str hl7_segment_name(const hl7_msg_t *m, size_t seg);
/* The whole segment without its terminator. */
px_str hl7_segment_raw(const hl7_msg_t *m, size_t seg);
/* The index of the occurrence-th (1-based) segment named name, or -1. */
ptrdiff_t hl7_segment_find(const hl7_msg_t *m, px_str name, size_t occurrence);

/* Number of fields in a segment, not counting the name (for MSH, MSH-1 counts). */
size_t hl7_field_count(const hl7_msg_t *m, size_t seg);

/* The value at (seg, field, rep, comp, sub), 0 meaning "whole" for rep/comp/sub.
 * A position that does not exist gives an empty view (ptr may be NULL). The view is raw:
 * escapes are not decoded (see hl7/escape.h). */
px_str hl7_field(const hl7_msg_t *m, size_t seg, size_t field, size_t rep, size_t comp, size_t sub);

/* Counts inside a field: repetitions of the field; components of one repetition;
 * sub-components of one component. An empty field has one empty repetition. */
size_t hl7_rep_count(const hl7_msg_t *m, size_t seg, size_t field);
size_t hl7_comp_count(const hl7_msg_t *m, size_t seg, size_t field, size_t rep);
size_t hl7_sub_count(const hl7_msg_t *m, size_t seg, size_t field, size_t rep, size_t comp);

/* Splitting helpers over any raw view (a field, a repetition …) with a separator:
 * the n-th (1-based) piece, and the count of pieces (1 for an empty view). */
px_str hl7_piece(px_str s, char sep, size_t n);
size_t hl7_piece_count(px_str s, char sep);

/* True when the value is HL7's explicit null `""` (meaning "delete"), as opposed to an
 * empty value (meaning "leave unchanged"). */
bool hl7_is_null(px_str value);

/* Problems recorded by the last parse (and by hl7_validate). Borrowed from m. */
const hl7_problem *hl7_problems(const hl7_msg_t *m, size_t *count);

/* Runs the checks that go beyond reading (MSH-9/10/12 present, version supported,
 * processing id, escapes well formed) and appends them to the problem list.
 * Returns the number of problems now recorded. */
size_t hl7_validate(hl7_msg_t *m);

/* A stable short name ("missing_msh10") and an English description of a problem code. */
const char *hl7_problem_name(hl7_problem_code code);
const char *hl7_problem_text(hl7_problem_code code);

/* The MSH fields every caller wants, as raw views (empty when absent). */
typedef struct hl7_msh {
    px_str sending_app;        /* MSH-3 */
    px_str sending_facility;   /* MSH-4 */
    px_str receiving_app;      /* MSH-5 */
    px_str receiving_facility; /* MSH-6 */
    px_str datetime;           /* MSH-7 */
    px_str type;               /* MSH-9.1 */
    px_str trigger;            /* MSH-9.2 */
    px_str structure;          /* MSH-9.3 */
    px_str control_id;         /* MSH-10 */
    px_str processing_id;      /* MSH-11.1 */
    px_str version;            /* MSH-12.1 */
    px_str accept_ack;         /* MSH-15 */
    px_str app_ack;            /* MSH-16 */
    px_str charset;            /* MSH-18 (first repetition) */
} hl7_msh;

/* Fills out from the MSH of a parsed message. PX_ERR_PARSE when m has no MSH. */
px_err hl7_msh_read(const hl7_msg_t *m, hl7_msh *out, px_error *err);

/* The version as a number for layout decisions: "2.5.1" -> 251, "2.3" -> 230, "2.1" -> 210;
 * 0 when unreadable. */
unsigned hl7_version_code(px_str version);

/* Paths as interface engineers write them: PID-3, PID-3[2].1, OBX[3]-5.1, PID-5.1.1.
 * Segment occurrence and repetition are 1-based and optional (default 1 for the segment;
 * for the repetition, absent means the whole field when no component follows, else 1). */
typedef struct hl7_path {
    char segment[4]; /* NUL-terminated three-character name */
    uint32_t occurrence;
    uint32_t field;
    uint32_t rep;  /* 0 = whole field */
    uint32_t comp; /* 0 = whole repetition */
    uint32_t sub;  /* 0 = whole component */
} hl7_path;

/* Parses a path. PX_ERR_PARSE with a message naming what is wrong. */
px_err hl7_path_parse(px_str text, hl7_path *out, px_error *err);

/* Formats a path back into text ("OBX[3]-5.1"); returns snprintf's count. */
int hl7_path_format(const hl7_path *p, char *dst, size_t dst_size);

/* The value at a path; false (and an empty view) when the segment is absent. */
bool hl7_path_get(const hl7_msg_t *m, const hl7_path *p, px_str *out);

/* Iterate over segments: for (size_t i = 0; i < hl7_segment_count(m); i++). */
#define HL7_FOREACH_SEGMENT(m, i) for (size_t i = 0; i < hl7_segment_count(m); i++)

#endif
