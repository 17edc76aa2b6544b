/* Helpers shared by the ledger test cases: temporary directories, typical ops, and direct
 * SQLite access to check what is really on disk. */
#ifndef PX_TESTS_LEDGER_HELPERS_H
#define PX_TESTS_LEDGER_HELPERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "ledger/ledger.h"

/* A fresh private directory under $TMPDIR (or /tmp); lt_cleanup removes it and all in it.
 * The returned path is static storage, valid until lt_cleanup. */
const char *lt_setup_dir(void);
void lt_cleanup(void);

/* dir/name into a static buffer (one of four rotating slots). */
const char *lt_path(const char *name);

/* A notify callback that counts calls in lt_notified. */
extern atomic_int lt_notified;
void lt_notify(void *arg);

/* Options for a ledger at lt_path(name) with lt_notify. */
void lt_options(ledger_options *opt, const char *name);

/* An op for one inbound message: message row (body of body_len bytes), a pending legacy leg,
 * a pending fhir leg and a fhir outbox row. Fails the test on error. */
ledger_op_t *lt_message_op(const char *feed, const char *control_id, int64_t received_at_ms,
                           size_t body_len, void *user);

/* Takes completed ops until n have come back (waits up to 30 s), storing them in order in
 * out[0..n). Fails the test on timeout. */
void lt_take(ledger_t *l, ledger_op_t **out, size_t n);

/* Opens a plain SQLite connection (read-write) to check the file. */
sqlite3 *lt_db(const char *path);
int64_t lt_int(sqlite3 *db, const char *sql);
int64_t lt_count(const char *path, const char *table);
/* Asserts PRAGMA integrity_check returns ok. */
void lt_assert_integrity(const char *path);

#endif
