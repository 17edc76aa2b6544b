/* The MLLP framing codec (HL7 v2.x Transport Specification: MLLP, Release 1 and 2).
 *
 * The decoder is a pure function of the caller's pending bytes plus four words of state.
 * While a frame is open its start block stays at offset 0 of the caller's input, and
 * d->scanned says how many bytes after it are known to hold neither a start nor an end
 * block, so each call searches only the bytes that arrived since the last one: feeding a
 * frame one byte at a time costs O(n), not O(n^2). Searching is done with memchr, which
 * libc vectorises. */
#include "hl7/mllp.h"

#include <string.h>

#include "common/buf.h"

static void decoder_reset_frame(hl7_mllp_decoder *d)
{
    d->in_frame = 0;
    d->scanned = 0;
}

void hl7_mllp_decoder_init(hl7_mllp_decoder *d, size_t max)
{
    d->max = max == 0 ? HL7_MLLP_DEFAULT_MAX : max;
    d->scanned = 0;
    d->in_frame = 0;
    d->skipped = 0;
    d->frames = 0;
}

const char *hl7_mllp_fault_text(hl7_mllp_fault f)
{
    switch (f) {
    case HL7_MLLP_OK:
        return "no fault";
    case HL7_MLLP_SB_IN_FRAME:
        return "start block inside a frame";
    case HL7_MLLP_EMPTY_FRAME:
        return "empty frame";
    case HL7_MLLP_OVERSIZE:
        return "frame larger than the configured maximum";
    case HL7_MLLP_TRUNCATED:
        return "connection closed inside a frame";
    case HL7_MLLP_EB_WITHOUT_CR:
        return "end block not followed by a carriage return";
    }
    return "unknown MLLP fault";
}

static px_err frame_fault(hl7_mllp_decoder *d, px_err code, hl7_mllp_fault f, size_t at,
                          px_error *err)
{
    decoder_reset_frame(d);
    return px_error_setd(err, code, (int)f, "MLLP: %s (at byte %zu of the frame)",
                         hl7_mllp_fault_text(f), at);
}

px_err hl7_mllp_decode(hl7_mllp_decoder *d, const char *in, size_t len, px_str *frame,
                       size_t *consumed, px_error *err)
{
    *frame = PX_STR_NULL;
    *consumed = 0;

    /* The caller must hand back the start block it was told to keep; if it did not, the
     * remembered scan position means nothing, so start over rather than trust it. */
    if (d->in_frame && (len == 0 || (unsigned char)in[0] != HL7_MLLP_SB))
        decoder_reset_frame(d);

    size_t start = 0; /* offset of the start block in `in` */
    if (!d->in_frame) {
        const char *sb = len > 0 ? memchr(in, HL7_MLLP_SB, len) : NULL;
        if (sb == NULL) {
            /* Nothing here can begin a frame (HTTP, a TLS ClientHello, line noise): drop it
             * and count it, as the MLLP spec asks receivers to ignore bytes outside frames. */
            d->skipped += len;
            *consumed = len;
            return PX_ERR_AGAIN;
        }
        start = (size_t)(sb - in);
        d->skipped += start;
        d->in_frame = 1;
        d->scanned = 0;
    }

    const char *body = in + start + 1;
    size_t avail = len - start - 1; /* bytes after the start block */
    /* A message may hold max bytes, so max + 1 bytes without an end block is too many.
     * Never look further than that: an endless frame is refused early and cheaply. */
    size_t limit = d->max < avail ? d->max + 1 : avail;
    size_t from = d->scanned;

    const char *eb = from < limit ? memchr(body + from, HL7_MLLP_EB, limit - from) : NULL;
    size_t end = eb != NULL ? (size_t)(eb - body) : limit;
    const char *sb = end > from ? memchr(body + from, HL7_MLLP_SB, end - from) : NULL;
    if (sb != NULL) {
        /* A second start block: the sender gave up on a frame and began again (or the
         * stream is not MLLP). Everything before the new start block is dropped so that
         * decoding resumes at it. */
        size_t at = (size_t)(sb - body);
        *consumed = start + 1 + at;
        return frame_fault(d, PX_ERR_PARSE, HL7_MLLP_SB_IN_FRAME, at + 1, err);
    }
    if (eb == NULL) {
        if (limit > d->max) {
            *consumed = start + 1 + limit;
            return frame_fault(d, PX_ERR_TOO_LARGE, HL7_MLLP_OVERSIZE, limit, err);
        }
        d->scanned = limit;
        *consumed = start;
        return PX_ERR_AGAIN;
    }
    if (end + 1 >= avail) {
        /* The end block is the last byte so far: its carriage return is still to come.
         * Remember the end block's offset so that the next call starts at it. */
        d->scanned = end;
        *consumed = start;
        return PX_ERR_AGAIN;
    }
    if ((unsigned char)body[end + 1] != HL7_MLLP_CR) {
        /* Resume after the end block: the next byte may well be the next start block. */
        *consumed = start + 1 + end + 1;
        return frame_fault(d, PX_ERR_PARSE, HL7_MLLP_EB_WITHOUT_CR, end + 1, err);
    }
    if (end == 0) {
        *consumed = start + 3;
        return frame_fault(d, PX_ERR_PARSE, HL7_MLLP_EMPTY_FRAME, 1, err);
    }
    *frame = px_str_make(body, end);
    *consumed = start + 1 + end + 2;
    d->frames++;
    decoder_reset_frame(d);
    return PX_OK;
}

px_err hl7_mllp_finish(const hl7_mllp_decoder *d, size_t pending, px_error *err)
{
    /* The decoder drops bytes outside frames as soon as it sees them, so after a call that
     * returned PX_ERR_AGAIN every pending byte belongs to an unfinished frame. */
    if (pending == 0)
        return PX_OK;
    return px_error_setd(
        err, PX_ERR_PARSE, HL7_MLLP_TRUNCATED, "MLLP: %s (%zu bytes of an unfinished frame%s)",
        hl7_mllp_fault_text(HL7_MLLP_TRUNCATED), pending, d->in_frame ? "" : ", not yet decoded");
}

px_err hl7_mllp_encode(px_str message, px_buf *out, px_error *err)
{
    /* A start or end block inside the message would let the receiver cut the stream at a
     * different place than we meant (one message smuggled inside another), so refuse. */
    if (message.len > 0 && (memchr(message.ptr, HL7_MLLP_SB, message.len) != NULL ||
                            memchr(message.ptr, HL7_MLLP_EB, message.len) != NULL))
        return px_error_set(err, PX_ERR_INVAL, "MLLP: message holds a start or end block byte");
    if (message.len > (size_t)-1 - 3)
        return px_error_set(err, PX_ERR_TOO_LARGE, "MLLP: message of %zu bytes", message.len);
    px_err rc = px_buf_reserve(out, message.len + 3);
    if (rc == PX_ERR_NOMEM)
        return px_error_set(err, rc, "MLLP: no memory for a %zu-byte frame", message.len + 3);
    if (rc != PX_OK)
        return px_error_set(err, rc, "MLLP: a %zu-byte frame does not fit the output buffer",
                            message.len + 3);
    /* Room is reserved, so these appends cannot fail. */
    px_buf_append_byte(out, (char)HL7_MLLP_SB);
    px_buf_append_str(out, message);
    px_buf_append_byte(out, (char)HL7_MLLP_EB);
    px_buf_append_byte(out, (char)HL7_MLLP_CR);
    return PX_OK;
}
