/* The ACK and NAK builder: original mode (AA/AE/AR) and enhanced mode (CA/CE/CR), with the
 * ERR segment laid out for the message's version. */
#ifndef PX_HL7_ACK_H
#define PX_HL7_ACK_H

#include <stdbool.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/str.h"
#include "hl7/hl7.h"

typedef enum hl7_ack_code {
    HL7_ACK_AA, /* application accept */
    HL7_ACK_AE, /* application error */
    HL7_ACK_AR, /* application reject */
    HL7_ACK_CA, /* commit accept (enhanced mode) */
    HL7_ACK_CE, /* commit error */
    HL7_ACK_CR, /* commit reject */
} hl7_ack_code;

typedef enum hl7_ack_mode {
    HL7_ACK_MODE_ORIGINAL,
    HL7_ACK_MODE_ENHANCED,
    HL7_ACK_MODE_FROM_MSH, /* enhanced when MSH-15 or MSH-16 is filled, else original */
} hl7_ack_mode;

/* HL7 table 0357 codes parallax uses. */
enum {
    HL7_ERR_SEGMENT_SEQUENCE = 100,
    HL7_ERR_REQUIRED_FIELD_MISSING = 101,
    HL7_ERR_DATA_TYPE = 102,
    HL7_ERR_TABLE_VALUE_NOT_FOUND = 103,
    HL7_ERR_UNSUPPORTED_MESSAGE_TYPE = 200,
    HL7_ERR_UNSUPPORTED_EVENT_CODE = 201,
    HL7_ERR_UNSUPPORTED_PROCESSING_ID = 202,
    HL7_ERR_UNSUPPORTED_VERSION_ID = 203,
    HL7_ERR_UNKNOWN_KEY = 204,
    HL7_ERR_DUPLICATE_KEY = 205,
    HL7_ERR_APPLICATION_RECORD_LOCKED = 206,
    HL7_ERR_APPLICATION_INTERNAL = 207,
};

/* What to say. text, location and the message fields are borrowed for the call.
 * text must not hold PHI: name the field, not its value. */
typedef struct hl7_ack_spec {
    hl7_ack_code code;
    px_str control_id;   /* MSH-10 of the ACK itself */
    px_str datetime;     /* MSH-7 of the ACK (the caller passes the clock: hl7/ is pure) */
    unsigned err_code;   /* table 0357 code; 0 = no ERR segment */
    px_str err_text;     /* ERR-8 (v2.5+) / MSA-3 and ERR-1 text (earlier) */
    px_str err_location; /* e.g. "MSH^1^10" for ERR-2 / ERR-1 location, may be empty */
    char severity;       /* ERR-4: 'E' error, 'W' warning, 'I' information; 0 = 'E' */
} hl7_ack_spec;

/* Picks the mode for a message: forced original or enhanced, or from MSH-15/16. */
hl7_ack_mode hl7_ack_mode_for(const hl7_msh *msh, hl7_ack_mode configured);

/* The code that means accept / error / reject in a mode (AA/CA, AE/CE, AR/CR). */
hl7_ack_code hl7_ack_code_for(hl7_ack_mode mode, char kind /* 'A', 'E' or 'R' */);

/* The negative code for a table 0357 error in a resolved mode (FROM_MSH reads as original):
 * 200-203 (message type, event, processing id or version not supported) are rejects, AR /
 * CR; 207 (internal error: storage, upstream) is AR in original mode and CE in enhanced
 * mode; every other code is AE / CE. */
hl7_ack_code hl7_ack_code_for_error(hl7_ack_mode mode, unsigned err_code);

/* True when, per MSH-15 (enhanced mode), the sender wants a commit ACK for this outcome:
 * AL always, NE never, ER only on error/reject, SU only on success; empty means AL. */
bool hl7_ack_wanted(px_str ack_condition, hl7_ack_code code);

/* Builds an ACK for the parsed message m into out (appending): MSH with sending and
 * receiving application/facility swapped, the ACK's own control id, the message's version,
 * MSH-9 = ACK^<trigger>^ACK (v2.3.1+; ACK^<trigger> before, plain ACK when the message has
 * no trigger), MSH-15/16 = NE (never acknowledge an ACK; from v2.2, v2.1's MSH ends at
 * MSH-14), MSA-1 = code, MSA-2 = the message's MSH-10, and an ERR segment laid out for the
 * version when spec->err_code is set. Segments end with \r; no MLLP framing.
 * The message's own separators are used (any its MSH-2 lacks are filled in, so the ACK's
 * MSH-2 is complete). PX_ERR_TOO_LARGE / PX_ERR_NOMEM; PX_ERR_PARSE when m has no MSH;
 * PX_ERR_INVAL for a code or severity outside the enums. On failure out is left as it was. */
px_err hl7_ack_build(const hl7_msg_t *m, const hl7_ack_spec *spec, px_buf *out, px_error *err);

/* Builds a NAK when the message could not be parsed but a control id was found (or not):
 * default separators, MSH-9 ACK, MSH-12 = version (2.5 when empty; the layout of 2.5 when
 * unreadable). control_id may be empty; both are escaped. */
px_err hl7_ack_build_bare(px_str msg_control_id, px_str version, const hl7_ack_spec *spec,
                          px_buf *out, px_error *err);

/* The stable two-letter code text ("AA"). */
const char *hl7_ack_code_name(hl7_ack_code code);

/* Parses "AA".."CR"; false when s is none of them. */
bool hl7_ack_code_parse(px_str s, hl7_ack_code *out);

/* What an ACK message says: MSA-1 and MSA-2 (views into the parsed ACK). */
typedef struct hl7_ack_info {
    hl7_ack_code code;
    px_str acked_control_id; /* MSA-2 */
    px_str text;             /* MSA-3 when present */
} hl7_ack_info;

/* Reads MSA from a parsed ACK. PX_ERR_PARSE when there is no MSA or MSA-1 is not a code. */
px_err hl7_ack_read(const hl7_msg_t *ack, hl7_ack_info *out, px_error *err);

#endif
