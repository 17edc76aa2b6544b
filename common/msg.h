/* Refcounted, immutable message bytes shared by the listener, both legs and the ledger
 * thread. Counts are atomic: other threads hold references. */
#ifndef PX_COMMON_MSG_H
#define PX_COMMON_MSG_H

#include <stddef.h>

#include "common/error.h"
#include "common/str.h"

typedef struct px_msg px_msg_t;

/* Copies len bytes at ptr into a new message with one reference (owned by the caller).
 * The copy is NUL-terminated for convenience, the NUL not counted. PX_ERR_NOMEM. */
px_err px_msg_create(const char *ptr, size_t len, px_msg_t **out, px_error *err);

/* Adds a reference and returns m. */
px_msg_t *px_msg_ref(px_msg_t *m);

/* Drops a reference; the last one frees the message. NULL is a no-op. */
void px_msg_unref(px_msg_t *m);

/* The bytes, borrowed while the caller holds a reference. */
px_str px_msg_bytes(const px_msg_t *m);

/* The current count (for tests and assertions only: it may change at once). */
unsigned px_msg_refcount(const px_msg_t *m);

#endif
