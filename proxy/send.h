/* `parallax send`: an MLLP client for interface engineers. It loads messages from files and
 * directories, sends them one at a time over one connection, waits for each ACK and reports
 * what each ACK said. */
#ifndef PX_PROXY_SEND_H
#define PX_PROXY_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/error.h"
#include "common/str.h"

/* The messages to send, in order. */
typedef struct proxy_send_list proxy_send_list_t;

px_err proxy_send_list_create(proxy_send_list_t **out, px_error *err);
void proxy_send_list_destroy(proxy_send_list_t *l);

/* Adds the messages of a file, or of every regular file under a directory (recursively,
 * names sorted bytewise; names starting with '.' skipped). A file may hold several
 * messages one after another; segment separators may be \r, \n or \r\n and are rewritten
 * to \r (blank lines dropped, the last segment terminated). A batch file (FHS/BHS …) is
 * split into its messages, or kept whole as one message when batch_as_one is set.
 * path is borrowed for the call. PX_ERR_IO when a file or directory cannot be read,
 * PX_ERR_PARSE when a file holds no message or bytes that belong to none (err names the
 * file and offset), PX_ERR_TOO_LARGE beyond 64 MiB per file, PX_ERR_NOMEM. On failure the
 * list keeps what was added before. */
px_err proxy_send_list_add_path(proxy_send_list_t *l, const char *path, bool batch_as_one,
                                px_error *err);

size_t proxy_send_list_count(const proxy_send_list_t *l);

/* The i-th message (borrowed from l) and its MSH-10 (empty when absent). */
px_str proxy_send_list_message(const proxy_send_list_t *l, size_t i);
px_str proxy_send_list_control_id(const proxy_send_list_t *l, size_t i);

/* Where MSH-10 lies in the i-th message; false when the message has no MSH-10 position
 * (no readable MSH, or an MSH with fewer than ten fields). */
bool proxy_send_list_control_id_span(const proxy_send_list_t *l, size_t i, size_t *off,
                                     size_t *len);

/* Where the i-th message came from ("path#n", borrowed from l). */
const char *proxy_send_list_source(const proxy_send_list_t *l, size_t i);

typedef struct proxy_send_opts {
    const char *host; /* name or numeric address (borrowed) */
    unsigned port;
    unsigned timeout_ms; /* for connecting and for each ACK; 0 = 10000 */
    FILE *out;           /* one line per ACK received (borrowed); NULL = quiet */
} proxy_send_opts;

typedef struct proxy_send_result {
    size_t sent;       /* messages written */
    size_t answered;   /* messages that got an answer */
    size_t accepted;   /* AA or CA with a matching MSA-2 */
    size_t negative;   /* AE, AR, CE or CR */
    size_t mismatched; /* MSA-2 differs from the message's MSH-10 */
    size_t unreadable; /* answers without a readable MSA */
    size_t app_acks;   /* enhanced-mode application ACKs seen for earlier messages */
    size_t app_negative;
} proxy_send_result;

/* Sends every message of l in order over one connection, each after the previous one's
 * answer. Returns PX_OK when every message was answered (whatever the answers said: see
 * result); PX_ERR_IO when the connection could not be made or broke (err->detail = uv
 * error), PX_ERR_CLOSED when the peer closed it, PX_ERR_TIMEOUT when an answer or the
 * connection took longer than timeout_ms. result is filled in every case. */
px_err proxy_send_run(const proxy_send_opts *opts, const proxy_send_list_t *l,
                      proxy_send_result *result, px_error *err);

/* True when result holds only positive, matching answers (the exit status 0 case). */
bool proxy_send_result_ok(const proxy_send_result *result);

#endif
