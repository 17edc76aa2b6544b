/* The MLLP framing codec: <VT> message <FS><CR>, that is 0x0B … 0x1C 0x0D. */
#ifndef PX_HL7_MLLP_H
#define PX_HL7_MLLP_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/str.h"

#define HL7_MLLP_SB          0x0B
#define HL7_MLLP_EB          0x1C
#define HL7_MLLP_CR          0x0D
#define HL7_MLLP_DEFAULT_MAX (16u * 1024u * 1024u)

/* Why a frame was refused (err->detail with PX_ERR_PARSE / PX_ERR_TOO_LARGE). */
typedef enum hl7_mllp_fault {
    HL7_MLLP_OK = 0,
    HL7_MLLP_SB_IN_FRAME = 1, /* a start block inside a frame */
    HL7_MLLP_EMPTY_FRAME,     /* SB immediately followed by EB CR */
    HL7_MLLP_OVERSIZE,        /* more than max bytes without an end block */
    HL7_MLLP_TRUNCATED,       /* the peer closed inside a frame */
    HL7_MLLP_EB_WITHOUT_CR,   /* EB followed by something other than CR */
} hl7_mllp_fault;

/* An incremental decoder over a caller-owned byte stream (embeddable; no allocation).
 * The caller keeps the received bytes in its own buffer and hands the unconsumed part to
 * hl7_mllp_decode on each arrival; the decoder remembers how far it has scanned so it
 * never rescans. */
typedef struct hl7_mllp_decoder {
    size_t max;       /* maximum message bytes between SB and EB */
    size_t scanned;   /* bytes of the current frame already searched for EB */
    int in_frame;     /* an SB was seen at offset 0 of the pending input */
    uint64_t skipped; /* bytes discarded before a start block (counted, per the spec) */
    uint64_t frames;  /* frames returned */
} hl7_mllp_decoder;

/* Starts a decoder for frames of at most max message bytes (0: HL7_MLLP_DEFAULT_MAX). */
void hl7_mllp_decoder_init(hl7_mllp_decoder *d, size_t max);

/* Looks for one frame at the start of in (the caller's unconsumed bytes).
 * - PX_OK: *frame is the message between SB and EB (borrowed from in); *consumed bytes of
 *   in (garbage, SB, message, EB, CR) are done with.
 * - PX_ERR_AGAIN: no whole frame yet; *consumed bytes (garbage before SB) may be dropped.
 * - PX_ERR_PARSE (detail = hl7_mllp_fault: SB_IN_FRAME, EMPTY_FRAME, EB_WITHOUT_CR):
 *   *consumed covers the bad frame up to the point of recovery, so decoding can go on.
 * - PX_ERR_TOO_LARGE (detail = HL7_MLLP_OVERSIZE): the frame exceeds max; the caller
 *   should refuse and close (there is no safe resynchronisation mid-frame).
 * Bytes before an SB are skipped and counted in d->skipped. */
px_err hl7_mllp_decode(hl7_mllp_decoder *d, const char *in, size_t len, px_str *frame,
                       size_t *consumed, px_error *err);

/* Called when the peer closes with `pending` unconsumed bytes: PX_OK when nothing of a
 * frame is pending, PX_ERR_PARSE with detail HL7_MLLP_TRUNCATED otherwise. */
px_err hl7_mllp_finish(const hl7_mllp_decoder *d, size_t pending, px_error *err);

/* A short English name for a fault ("start block inside a frame"). */
const char *hl7_mllp_fault_text(hl7_mllp_fault f);

/* Appends SB message EB CR to out (unchanged on failure). PX_ERR_TOO_LARGE / PX_ERR_NOMEM;
 * PX_ERR_INVAL when message holds an SB or EB byte (the receiver would cut it elsewhere). */
px_err hl7_mllp_encode(px_str message, px_buf *out, px_error *err);

#endif
