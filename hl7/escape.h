/* The HL7 v2 escape codec (v2.x chapter 2, "Use of escape sequences in text fields"). */
#ifndef PX_HL7_ESCAPE_H
#define PX_HL7_ESCAPE_H

#include <stddef.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/str.h"
#include "hl7/hl7.h"

enum {
    /* Render the FT formatting commands as plain text: \.br\ and \.sp\ become line breaks,
     * \.in\ and \.ce\ begin a new line, \.sk+n\ becomes n spaces, \.ti\ \.fi\ \.nf\ and
     * \H\ \N\ are dropped (counts are capped at 100). Without this flag they are copied
     * through unchanged, as are \Zxx\, \Cxxyy\ and \Mxxyyzz\ always. */
    HL7_UNESCAPE_PLAIN_TEXT = 1u << 0,
    /* Fail with PX_ERR_PARSE on an unknown or unterminated escape instead of copying it
     * through verbatim. */
    HL7_UNESCAPE_STRICT = 1u << 1,
};

/* Decodes in (a raw field view) into out, appending. \F\ \S\ \T\ \R\ \E\ \P\ become the
 * message's own separators (from d), \Xhh…\ the bytes it spells. Bytes are not
 * transcoded: the character set is the caller's business.
 * Returns PX_OK; PX_ERR_TOO_LARGE when out's max is reached; PX_ERR_NOMEM; PX_ERR_PARSE
 * (strict mode only) with the offset of the bad escape in err->detail. On failure out is
 * left as it was. */
px_err hl7_unescape(px_str in, const hl7_delims *d, unsigned flags, px_buf *out, px_error *err);

/* True when in holds an escape character (a fast check before decoding). */
int hl7_has_escape(px_str in, const hl7_delims *d);

/* Encodes text for a field: the separators and the escape character become \F\ \S\ \T\ \R\
 * \E\ \P\, CR and LF become \X0D\ and \X0A\. Appends to out. PX_ERR_TOO_LARGE, PX_ERR_NOMEM;
 * PX_ERR_INVAL when in needs a sequence but d has no escape character. */
px_err hl7_escape(px_str in, const hl7_delims *d, px_buf *out, px_error *err);

/* Offset of the first malformed escape in in (unterminated, or an unknown code), or -1. */
ptrdiff_t hl7_escape_check(px_str in, const hl7_delims *d);

#endif
