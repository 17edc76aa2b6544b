#include "proxy/mllp_client.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

/* How much room each read gets. */
#define READ_CHUNK (64u * 1024u)

/* ---- outbound queue ---- */

void proxy_mllp_out_init(proxy_mllp_out *o, uv_stream_t *stream, size_t max)
{
    memset(o, 0, sizeof(*o));
    o->stream = stream;
    /* uv_buf_t lengths are unsigned int. */
    if (max > UINT_MAX - 1)
        max = UINT_MAX - 1;
    px_buf_init(&o->bufs[0], max);
    px_buf_init(&o->bufs[1], max);
}

void proxy_mllp_out_free(proxy_mllp_out *o)
{
    px_buf_free(&o->bufs[0]);
    px_buf_free(&o->bufs[1]);
}

px_buf *proxy_mllp_out_buf(proxy_mllp_out *o)
{
    return &o->bufs[o->fill];
}

px_err proxy_mllp_out_framev(proxy_mllp_out *o, const px_str *parts, size_t n, px_error *err)
{
    px_buf *b = &o->bufs[o->fill];
    size_t total = 3;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > SIZE_MAX - total)
            return px_error_set(err, PX_ERR_TOO_LARGE, "frame too large");
        total += parts[i].len;
    }
    px_err rc = px_buf_reserve(b, total);
    if (rc != PX_OK)
        return px_error_set(err, rc, "outbound queue full (%zu bytes queued)", b->len);
    char *p = b->data + b->len;
    *p++ = HL7_MLLP_SB;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > 0)
            memcpy(p, parts[i].ptr, parts[i].len);
        p += parts[i].len;
    }
    *p++ = HL7_MLLP_EB;
    *p++ = HL7_MLLP_CR;
    b->len += total;
    b->data[b->len] = '\0';
    return PX_OK;
}

static void out_write_cb(uv_write_t *req, int status)
{
    proxy_mllp_out *o = req->data;
    o->writing = false;
    px_buf_reset(&o->bufs[o->fill ^ 1]);
    /* A cancelled or failed write means the stream is going away: queue nothing more. */
    if (status == 0)
        status = proxy_mllp_out_flush(o);
    if (o->written != NULL)
        o->written(o, status);
}

int proxy_mllp_out_flush(proxy_mllp_out *o)
{
    if (o->writing)
        return 0;
    px_buf *b = &o->bufs[o->fill];
    if (b->len == 0)
        return 0;
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
    int n = uv_try_write(o->stream, &ub, 1);
    if (n >= 0 && (size_t)n == b->len) {
        px_buf_reset(b);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (n > 0)
        px_buf_consume(b, (size_t)n);
    ub = uv_buf_init(b->data, (unsigned)b->len);
    o->req.data = o;
    int rc = uv_write(&o->req, o->stream, &ub, 1, out_write_cb);
    if (rc < 0)
        return rc;
    o->writing = true;
    o->fill ^= 1;
    return 0;
}

size_t proxy_mllp_out_pending(const proxy_mllp_out *o)
{
    return o->bufs[0].len + o->bufs[1].len;
}

/* ---- inbound frames ---- */

void proxy_mllp_in_init(proxy_mllp_in *in, size_t max_frame)
{
    if (max_frame == 0)
        max_frame = HL7_MLLP_DEFAULT_MAX;
    px_buf_init(&in->buf, max_frame + 3 + READ_CHUNK);
    hl7_mllp_decoder_init(&in->dec, max_frame);
    in->off = 0;
}

void proxy_mllp_in_free(proxy_mllp_in *in)
{
    px_buf_free(&in->buf);
}

void proxy_mllp_in_alloc(proxy_mllp_in *in, uv_buf_t *out)
{
    px_buf *b = &in->buf;
    size_t want = READ_CHUNK;
    if (want > b->max - b->len)
        want = b->max - b->len;
    if (want == 0 || px_buf_reserve(b, want) != PX_OK) {
        *out = uv_buf_init(NULL, 0);
        return;
    }
    /* px_buf keeps one byte past len for its NUL; hand out the rest. */
    *out = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len - 1));
}

void proxy_mllp_in_commit(proxy_mllp_in *in, size_t nread)
{
    in->buf.len += nread;
    in->buf.data[in->buf.len] = '\0';
}

px_err proxy_mllp_in_next(proxy_mllp_in *in, px_str *frame, px_error *err)
{
    px_buf *b = &in->buf;
    if (in->off < b->len) {
        size_t consumed = 0;
        px_err rc =
            hl7_mllp_decode(&in->dec, b->data + in->off, b->len - in->off, frame, &consumed, err);
        if (rc == PX_OK) {
            in->off += consumed;
            return PX_OK;
        }
        if (rc != PX_ERR_AGAIN)
            return rc;
        in->off += consumed;
    }
    /* Nothing whole is left: move the partial frame (if any) to the front. */
    px_buf_consume(b, in->off);
    in->off = 0;
    return PX_ERR_AGAIN;
}

px_err proxy_mllp_in_finish(const proxy_mllp_in *in, px_error *err)
{
    return hl7_mllp_finish(&in->dec, in->buf.len - in->off, err);
}

/* ---- client connection ---- */

/* Invariants: the client is freed when open_handles is 0 and no resolve is pending;
 * failed and closing are sticky; callbacks of cbs run only while neither is set. */
struct proxy_mllp_client {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_check_t check; /* flushes frames queued during the loop iteration */
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai;
    proxy_mllp_out out;
    proxy_mllp_in in;
    proxy_mllp_client_cbs cbs;
    void *ud;
    void (*closed)(void *ud);
    unsigned port;
    int open_handles;
    bool started, resolving, connected, reading, failed, closing;
};

static void client_fail_err(proxy_mllp_client_t *c, const px_error *e)
{
    if (c->failed || c->closing)
        return;
    c->failed = true;
    c->connected = false;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    uv_check_stop(&c->check);
    if (c->cbs.failed != NULL)
        c->cbs.failed(c, e, c->ud);
}

/* Fails with a code, a uv error (0 for none) and what was being done. */
static void client_fail(proxy_mllp_client_t *c, px_err code, int uv_rc, const char *what)
{
    px_error e;
    if (uv_rc != 0)
        px_error_setd(&e, code, uv_rc, "%s: %s", what, uv_strerror(uv_rc));
    else
        px_error_set(&e, code, "%s", what);
    client_fail_err(c, &e);
}

static void client_maybe_free(proxy_mllp_client_t *c)
{
    if (c->open_handles > 0 || c->resolving)
        return;
    void (*closed)(void *) = c->closed;
    void *ud = c->ud;
    proxy_mllp_out_free(&c->out);
    proxy_mllp_in_free(&c->in);
    px_free(c);
    if (closed != NULL)
        closed(ud);
}

static void client_close_cb(uv_handle_t *h)
{
    proxy_mllp_client_t *c = h->data;
    c->open_handles--;
    client_maybe_free(c);
}

static void client_check_cb(uv_check_t *h)
{
    proxy_mllp_client_t *c = h->data;
    uv_check_stop(h);
    if (!c->connected)
        return;
    int rc = proxy_mllp_out_flush(&c->out);
    if (rc < 0)
        client_fail(c, PX_ERR_IO, rc, "write failed");
}

static void client_written(proxy_mllp_out *o, int status)
{
    proxy_mllp_client_t *c = o->data;
    if (status < 0 && status != UV_ECANCELED)
        client_fail(c, PX_ERR_IO, status, "write failed");
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    proxy_mllp_client_t *c = h->data;
    (void)suggested;
    proxy_mllp_in_alloc(&c->in, buf);
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    proxy_mllp_client_t *c = s->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        px_error e;
        if (nread == UV_EOF) {
            if (proxy_mllp_in_finish(&c->in, &e) != PX_OK)
                client_fail(c, PX_ERR_PARSE, 0, "peer closed inside a frame");
            else
                client_fail(c, PX_ERR_CLOSED, 0, "peer closed the connection");
        } else if (nread == UV_ENOBUFS) {
            client_fail(c, PX_ERR_TOO_LARGE, 0, "inbound frame too large");
        } else {
            client_fail(c, PX_ERR_IO, (int)nread, "read failed");
        }
        return;
    }
    proxy_mllp_in_commit(&c->in, (size_t)nread);
    for (;;) {
        px_str frame;
        px_error e;
        px_err rc = proxy_mllp_in_next(&c->in, &frame, &e);
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc != PX_OK) {
            client_fail_err(c, &e);
            return;
        }
        if (c->cbs.frame != NULL)
            c->cbs.frame(c, frame, c->ud);
        if (c->failed || c->closing)
            return;
    }
}

static void client_connect_cb(uv_connect_t *req, int status)
{
    proxy_mllp_client_t *c = req->data;
    if (c->closing || c->failed)
        return;
    if (status < 0) {
        client_fail(c, PX_ERR_IO, status, "connect failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb, client_read_cb);
    if (rc < 0) {
        client_fail(c, PX_ERR_IO, rc, "read start failed");
        return;
    }
    c->reading = true;
    c->connected = true;
    if (proxy_mllp_out_pending(&c->out) > 0)
        uv_check_start(&c->check, client_check_cb);
    if (c->cbs.connected != NULL)
        c->cbs.connected(c, c->ud);
}

static int client_start_connect(proxy_mllp_client_t *c, const struct sockaddr *addr)
{
    c->connect_req.data = c;
    return uv_tcp_connect(&c->connect_req, &c->tcp, addr, client_connect_cb);
}

static void client_gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    proxy_mllp_client_t *c = req->data;
    c->resolving = false;
    if (c->closing) {
        uv_freeaddrinfo(res);
        client_maybe_free(c);
        return;
    }
    if (status < 0) {
        client_fail(c, PX_ERR_IO, status, "cannot resolve host");
        return;
    }
    /* Our servers listen on IPv4 loopback by default, and "localhost" often lists ::1
     * first: take the first IPv4 address when there is one. */
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    int rc = client_start_connect(c, pick->ai_addr);
    uv_freeaddrinfo(res);
    if (rc < 0)
        client_fail(c, PX_ERR_IO, rc, "connect failed");
}

px_err proxy_mllp_client_create(uv_loop_t *loop, const proxy_mllp_client_cbs *cbs, void *ud,
                                size_t max_frame, proxy_mllp_client_t **out, px_error *err)
{
    *out = NULL;
    proxy_mllp_client_t *c = px_malloc(sizeof(*c));
    if (c == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->cbs = *cbs;
    c->ud = ud;
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0) {
        px_free(c);
        return px_error_setd(err, PX_ERR_IO, rc, "tcp init: %s", uv_strerror(rc));
    }
    c->tcp.data = c;
    c->open_handles++;
    uv_check_init(loop, &c->check);
    c->check.data = c;
    c->open_handles++;
    proxy_mllp_out_init(&c->out, (uv_stream_t *)&c->tcp, 256u * 1024u * 1024u);
    c->out.written = client_written;
    c->out.data = c;
    proxy_mllp_in_init(&c->in, max_frame);
    *out = c;
    return PX_OK;
}

px_err proxy_mllp_client_connect(proxy_mllp_client_t *c, const char *host, unsigned port,
                                 px_error *err)
{
    if (c->started || c->closing)
        return px_error_set(err, PX_ERR_INVAL, "client already started");
    if (port == 0 || port > 65535)
        return px_error_set(err, PX_ERR_INVAL, "port %u out of range", port);
    c->started = true;
    c->port = port;
    struct sockaddr_storage ss;
    int rc;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) == 0) {
        rc = client_start_connect(c, (const struct sockaddr *)&ss);
        if (rc < 0)
            return px_error_setd(err, PX_ERR_IO, rc, "connect: %s", uv_strerror(rc));
        return PX_OK;
    }
    char service[16];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    rc = uv_getaddrinfo(c->loop, &c->gai, client_gai_cb, host, service, &hints);
    if (rc < 0)
        return px_error_setd(err, PX_ERR_IO, rc, "resolve: %s", uv_strerror(rc));
    c->resolving = true;
    return PX_OK;
}

px_err proxy_mllp_client_sendv(proxy_mllp_client_t *c, const px_str *parts, size_t n, px_error *err)
{
    if (c->failed || c->closing)
        return px_error_set(err, PX_ERR_CLOSED, "connection closed");
    px_err rc = proxy_mllp_out_framev(&c->out, parts, n, err);
    if (rc != PX_OK)
        return rc;
    if (c->connected)
        uv_check_start(&c->check, client_check_cb);
    return PX_OK;
}

px_err proxy_mllp_client_send(proxy_mllp_client_t *c, px_str message, px_error *err)
{
    return proxy_mllp_client_sendv(c, &message, 1, err);
}

size_t proxy_mllp_client_pending(const proxy_mllp_client_t *c)
{
    return proxy_mllp_out_pending(&c->out);
}

bool proxy_mllp_client_is_connected(const proxy_mllp_client_t *c)
{
    return c->connected && !c->closing;
}

void proxy_mllp_client_close(proxy_mllp_client_t *c, void (*closed)(void *ud))
{
    if (c->closing)
        return;
    c->closing = true;
    c->connected = false;
    c->closed = closed;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->check, client_close_cb);
    uv_close((uv_handle_t *)&c->tcp, client_close_cb);
}
