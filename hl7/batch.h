/* Batches and files of messages: FHS/BHS … BTS/FTS envelopes, and files that simply hold
 * messages back to back. */
#ifndef PX_HL7_BATCH_H
#define PX_HL7_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/str.h"

/* An iterator over the messages in a buffer. Views point into the buffer (borrowed). */
typedef struct hl7_batch_iter {
    px_str input;
    size_t pos;
    /* Envelope segments seen so far (empty when absent): the proxy forwards a batch whole,
     * but the ledger wants one row per message and the header's control ids. */
    px_str fhs, bhs, bts, fts;
    size_t messages; /* messages returned so far */
} hl7_batch_iter;

/* Starts iterating over input (a leading UTF-8 byte-order mark is skipped). */
void hl7_batch_iter_init(hl7_batch_iter *it, px_str input);

/* The next message: from one MSH up to (not including) the next MSH or envelope segment,
 * without trailing separators. Segment separators may be \r, \n or \r\n.
 * Returns PX_OK with *msg set, PX_ERR_AGAIN when there are no more messages (not an error),
 * or PX_ERR_PARSE when bytes that are neither envelope segments nor part of a message
 * stand before the next MSH (their offset in detail). */
px_err hl7_batch_next(hl7_batch_iter *it, px_str *msg, px_error *err);

/* True when the input starts (after a BOM and blank lines) with FHS or BHS. */
bool hl7_is_batch(px_str input);

#endif
