/* The retransmission window: a bounded map from (feed, MSH-3, MSH-4, MSH-10) to what
 * parallax knows of that message — its content hash (without MSH-7), its ledger id,
 * whether the sender was answered and with which exact ACK bytes.
 *
 * A resend of an answered message gets the stored ACK back and is not forwarded again; a
 * resend while the original is in flight waits for it; the same key with other content is
 * a `duplicate` divergence and is forwarded. Entries leave oldest-first once the window is
 * full, but never while still in flight (the window can then exceed its capacity by the
 * number of messages in flight, which the in-flight limits bound).
 *
 * Loop thread only. */
#ifndef PX_PROXY_RETRANSMIT_H
#define PX_PROXY_RETRANSMIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/str.h"

#define PROXY_HASH_LEN 32

typedef enum proxy_rtx_state {
    PROXY_RTX_IN_FLIGHT, /* received, not yet answered */
    PROXY_RTX_ANSWERED,  /* the sender got ack (stored) */
} proxy_rtx_state;

typedef struct proxy_rtx_entry {
    /* Public, read-only for callers except `waiters`, which the owner manages. */
    int64_t message_id;
    uint8_t hash[PROXY_HASH_LEN];
    proxy_rtx_state state;
    px_str ack;    /* the exact ACK bytes sent (owned by the entry), when answered */
    void *waiters; /* the owner's list of resends waiting for this entry */
    /* Private. */
    struct proxy_rtx_entry *next_in_bucket;
    struct proxy_rtx_entry *older, *newer;
    uint64_t key_hash;
    size_t key_len;
    char key[]; /* feed id, MSH-3, MSH-4, MSH-10 joined with 0x1F separators */
} proxy_rtx_entry;

typedef struct proxy_rtx proxy_rtx_t;

/* A window holding at least `capacity` answered entries. PX_ERR_NOMEM. */
px_err proxy_rtx_create(size_t capacity, proxy_rtx_t **out, px_error *err);
void proxy_rtx_destroy(proxy_rtx_t *w);

/* The entry for a key, or NULL. Borrowed: valid until the entry is evicted, which only
 * happens inside proxy_rtx_insert and only to answered entries. */
proxy_rtx_entry *proxy_rtx_find(proxy_rtx_t *w, uint32_t feed, px_str app, px_str facility,
                                px_str control_id);

/* Adds (or replaces) the entry for a key, in flight. Replacing frees the old entry, so the
 * caller must have dealt with its waiters. Returns the entry, or NULL on PX_ERR_NOMEM. */
proxy_rtx_entry *proxy_rtx_insert(proxy_rtx_t *w, uint32_t feed, px_str app, px_str facility,
                                  px_str control_id, const uint8_t hash[PROXY_HASH_LEN],
                                  int64_t message_id);

/* Records the ACK bytes sent for an entry (copied) and marks it answered.
 * PX_ERR_NOMEM leaves it in flight. */
px_err proxy_rtx_answer(proxy_rtx_t *w, proxy_rtx_entry *e, px_str ack);

/* Removes an entry (for a message that failed before being answered: a resend must then
 * be processed afresh). The caller must have dealt with its waiters. */
void proxy_rtx_remove(proxy_rtx_t *w, proxy_rtx_entry *e);

size_t proxy_rtx_count(const proxy_rtx_t *w);

#endif
