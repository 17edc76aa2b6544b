/* MLLP over a libuv stream for the test and load tools (send, bench, mock-ehr): an
 * outbound byte queue that batches frames into few writes, an inbound frame reader, and
 * a small asynchronous MLLP client connection built from both.
 *
 * Everything here runs on one loop thread. None of it allocates per message: the queues
 * are capped px_bufs that grow once and are reused. */
#ifndef PX_PROXY_MLLP_CLIENT_H
#define PX_PROXY_MLLP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/str.h"
#include "hl7/mllp.h"

/* An outbound queue on a stream with at most one uv_write in flight.
 *
 * Frames are appended to bufs[fill]; proxy_mllp_out_flush() writes what is there with
 * uv_try_write and hands any rest to uv_write, after which that buffer belongs to the
 * write request until its callback and new frames go to the other buffer. So several
 * frames queued in one callback leave in one system call, and nothing is copied twice.
 *
 * Invariants: bufs[fill ^ 1] is empty unless writing; the stream outlives the queue's use;
 * the request's memory (embedded here) lives until the write callback, which libuv also
 * runs (with UV_ECANCELED) when the stream is closed with a write pending. */
typedef struct proxy_mllp_out {
    uv_stream_t *stream; /* borrowed */
    px_buf bufs[2];
    int fill;
    bool writing;
    uv_write_t req;
    /* Called after each uv_write completes (status < 0 on failure) and after the next
     * flush was attempted; may be NULL. */
    void (*written)(struct proxy_mllp_out *o, int status);
    void *data; /* for the owner */
} proxy_mllp_out;

/* Prepares an empty queue on stream whose buffers may each grow to max bytes. */
void proxy_mllp_out_init(proxy_mllp_out *o, uv_stream_t *stream, size_t max);

/* Frees the buffers. Call only once no write is in flight (from the stream's close
 * callback or later). */
void proxy_mllp_out_free(proxy_mllp_out *o);

/* Appends SB, the concatenation of the n parts, EB CR. On failure nothing is appended.
 * The parts are copied (borrowed for the call). PX_ERR_TOO_LARGE / PX_ERR_NOMEM. */
px_err proxy_mllp_out_framev(proxy_mllp_out *o, const px_str *parts, size_t n, px_error *err);

/* The buffer frames are currently appended to, for callers that build a frame in place
 * (SB, content, EB CR). Borrowed until the next flush. */
px_buf *proxy_mllp_out_buf(proxy_mllp_out *o);

/* Starts writing what is queued, unless a write is in flight (its callback flushes again).
 * Returns 0 or a negative uv error (the stream should then be closed). */
int proxy_mllp_out_flush(proxy_mllp_out *o);

/* Bytes queued and not yet known to be written. */
size_t proxy_mllp_out_pending(const proxy_mllp_out *o);

/* An inbound frame reader: a capped receive buffer and an hl7_mllp_decoder.
 * Views returned by proxy_mllp_in_next stay valid until it returns something other than
 * PX_OK (the buffer is compacted then) or the next read. */
typedef struct proxy_mllp_in {
    px_buf buf;
    hl7_mllp_decoder dec;
    size_t off; /* bytes of buf already consumed by the decoder */
} proxy_mllp_in;

/* max_frame bounds one message; the buffer may hold that plus one read. */
void proxy_mllp_in_init(proxy_mllp_in *in, size_t max_frame);
void proxy_mllp_in_free(proxy_mllp_in *in);

/* For a uv_alloc_cb: room for the next read (len 0 when the buffer is full, which libuv
 * reports to the read callback as UV_ENOBUFS). */
void proxy_mllp_in_alloc(proxy_mllp_in *in, uv_buf_t *out);

/* Records nread > 0 bytes read into the space last handed out. */
void proxy_mllp_in_commit(proxy_mllp_in *in, size_t nread);

/* The next whole frame: PX_OK with *frame (borrowed, see above); PX_ERR_AGAIN when no whole
 * frame is buffered (not an error); PX_ERR_PARSE / PX_ERR_TOO_LARGE for unframeable input,
 * with err->detail an hl7_mllp_fault. */
px_err proxy_mllp_in_next(proxy_mllp_in *in, px_str *frame, px_error *err);

/* PX_OK when no partial frame is pending (for end of stream), else PX_ERR_PARSE. */
px_err proxy_mllp_in_finish(const proxy_mllp_in *in, px_error *err);

/* An asynchronous MLLP client connection. */
typedef struct proxy_mllp_client proxy_mllp_client_t;

typedef struct proxy_mllp_client_cbs {
    /* The connection is up; may be NULL. */
    void (*connected)(proxy_mllp_client_t *c, void *ud);
    /* One received message (between SB and EB), borrowed until the callback returns. */
    void (*frame)(proxy_mllp_client_t *c, px_str frame, void *ud);
    /* The connection failed or ended: PX_ERR_IO (err->detail = the uv error) for connect,
     * resolve, read and write failures, PX_ERR_CLOSED when the peer closed,
     * PX_ERR_PARSE / PX_ERR_TOO_LARGE for unframeable input. Called at most once and never
     * after proxy_mllp_client_close; the client then does nothing until closed. */
    void (*failed)(proxy_mllp_client_t *c, const px_error *err, void *ud);
} proxy_mllp_client_cbs;

/* Creates an unconnected client on loop. cbs is copied; ud is passed to every callback.
 * max_frame bounds inbound messages (0 = HL7_MLLP_DEFAULT_MAX). The client is owned by
 * the caller and released with proxy_mllp_client_close (also when never connected).
 * PX_ERR_NOMEM / PX_ERR_IO. */
px_err proxy_mllp_client_create(uv_loop_t *loop, const proxy_mllp_client_cbs *cbs, void *ud,
                                size_t max_frame, proxy_mllp_client_t **out, px_error *err);

/* Starts connecting to host (a numeric address, or a name resolved with uv_getaddrinfo;
 * its first IPv4 address is used when it has one, else its first address) and port; the outcome
 * arrives through connected or failed. host is copied. PX_ERR_INVAL when called twice; PX_ERR_IO
 * when the attempt cannot start. */
px_err proxy_mllp_client_connect(proxy_mllp_client_t *c, const char *host, unsigned port,
                                 px_error *err);

/* Queues one message framed as MLLP (the concatenation of n parts, copied). Frames queued
 * during one loop iteration leave together at its end (a uv_check handle), and frames
 * queued before the connection is up leave once it is. PX_ERR_TOO_LARGE when the queue
 * is full, PX_ERR_CLOSED after failure or close. */
px_err proxy_mllp_client_sendv(proxy_mllp_client_t *c, const px_str *parts, size_t n,
                               px_error *err);
px_err proxy_mllp_client_send(proxy_mllp_client_t *c, px_str message, px_error *err);

/* Bytes queued and not yet written. */
size_t proxy_mllp_client_pending(const proxy_mllp_client_t *c);

/* True between connected and failed/close. */
bool proxy_mllp_client_is_connected(const proxy_mllp_client_t *c);

/* Closes the connection and frees the client once libuv has released its handles and
 * requests, then calls closed(ud) (closed may be NULL). No callback of cbs runs after
 * this call. Call exactly once. */
void proxy_mllp_client_close(proxy_mllp_client_t *c, void (*closed)(void *ud));

#endif
