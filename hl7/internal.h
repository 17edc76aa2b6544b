/* Private to hl7/: the parser's index and the scanner that fills it.
 *
 * The index is compact: every segment is four uint32 offsets into the message, and every
 * field separator of the message is one uint32 offset in one array (seps). Field n of a
 * segment lies between two consecutive separators, so no per-field record exists and
 * nothing is allocated per field. Both arrays are kept and grown across parses into the
 * same hl7_msg_t. Repetitions, components and sub-components are found on demand by
 * scanning inside a field. */
#ifndef PX_HL7_INTERNAL_H
#define PX_HL7_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "hl7/hl7.h"

/* Problems beyond this many are not stored, so a hostile message (60k bad segment names)
 * costs no memory; the header's problems are recorded first and always kept. */
#define HL7__MAX_PROBLEMS 128

/* One segment: bytes [start, end) of the message (end excludes the terminator) and its
 * field separators seps[sep0 … sep0 + nsep). The name is [start, seps[sep0]) or, when
 * nsep is 0, the whole segment. */
typedef struct hl7__seg {
    uint32_t start;
    uint32_t end;
    uint32_t sep0;
    uint32_t nsep;
} hl7__seg;

/* Invariants: segs has nseg entries in message order, none empty; seps is sorted and every
 * entry lies inside its segment; nprob <= HL7__MAX_PROBLEMS. base is borrowed from the
 * caller of hl7_parse. */
struct hl7_msg {
    const char *base;
    size_t len;
    hl7_delims delims;
    hl7__seg *segs;
    uint32_t nseg;
    uint32_t seg_cap;
    uint32_t *seps;
    uint32_t nsep;
    uint32_t seps_cap;
    bool simd;      /* scan with AVX2 (decided when the state is created) */
    bool validated; /* hl7_validate has run since the last parse */
    uint32_t nprob;
    hl7_problem probs[HL7__MAX_PROBLEMS];
};

/* Records a problem (dropped past HL7__MAX_PROBLEMS). */
void hl7__add_problem(hl7_msg_t *m, hl7_problem_code code, uint32_t seg, uint32_t field);

/* Indexes m->base[0 … m->len) with fs as the field separator: fills m->segs and m->seps and
 * records HL7_PROB_EMPTY_SEGMENT and HL7_PROB_LF_SEPARATOR. Uses the AVX2 scanner when
 * m->simd is set, otherwise the portable one; both give identical indexes.
 * Returns PX_OK, PX_ERR_NOMEM, or PX_ERR_PARSE for a \n under HL7_PARSE_STRICT (offset in
 * err->detail). */
px_err hl7__index(hl7_msg_t *m, char fs, unsigned flags, px_error *err);

/* True when this CPU can run the AVX2 scanner. */
bool hl7__simd_supported(void);

/* True when segment seg is MSH, FHS or BHS, whose field 1 is the field separator itself. */
bool hl7__is_header_segment(const hl7_msg_t *m, size_t seg);

#endif
