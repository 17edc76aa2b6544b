#include "proxy/send.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/ack.h"
#include "hl7/batch.h"
#include "hl7/hl7.h"
#include "proxy/mllp_client.h"

#define FILE_MAX        (64u * 1024u * 1024u)
#define DEFAULT_TIMEOUT 10000u

typedef struct send_item {
    char *bytes; /* owned, \r-separated */
    size_t len;
    size_t id_off, id_len; /* MSH-10 inside bytes */
    bool has_id;           /* MSH-10 was located */
    char *source;          /* "path#n", owned */
} send_item;

struct proxy_send_list {
    send_item *items;
    size_t count, cap;
    hl7_msg_t *parser;
};

px_err proxy_send_list_create(proxy_send_list_t **out, px_error *err)
{
    *out = NULL;
    proxy_send_list_t *l = px_malloc(sizeof(*l));
    if (l == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    memset(l, 0, sizeof(*l));
    if (hl7_msg_create(&l->parser, err) != PX_OK) {
        px_free(l);
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    }
    *out = l;
    return PX_OK;
}

void proxy_send_list_destroy(proxy_send_list_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->count; i++) {
        px_free(l->items[i].bytes);
        px_free(l->items[i].source);
    }
    px_free(l->items);
    hl7_msg_destroy(l->parser);
    px_free(l);
}

size_t proxy_send_list_count(const proxy_send_list_t *l)
{
    return l->count;
}

px_str proxy_send_list_message(const proxy_send_list_t *l, size_t i)
{
    return px_str_make(l->items[i].bytes, l->items[i].len);
}

px_str proxy_send_list_control_id(const proxy_send_list_t *l, size_t i)
{
    return px_str_make(l->items[i].bytes + l->items[i].id_off, l->items[i].id_len);
}

bool proxy_send_list_control_id_span(const proxy_send_list_t *l, size_t i, size_t *off, size_t *len)
{
    *off = l->items[i].id_off;
    *len = l->items[i].id_len;
    return l->items[i].has_id;
}

const char *proxy_send_list_source(const proxy_send_list_t *l, size_t i)
{
    return l->items[i].source;
}

/* Rewrites \n and \r\n separators to \r, drops blank lines, terminates the last segment. */
static px_err normalise(px_str in, px_buf *out)
{
    size_t i = 0;
    while (i < in.len) {
        size_t start = i;
        while (i < in.len && in.ptr[i] != '\r' && in.ptr[i] != '\n')
            i++;
        if (i > start) {
            px_err rc = px_buf_append(out, in.ptr + start, i - start);
            if (rc == PX_OK)
                rc = px_buf_append_byte(out, '\r');
            if (rc != PX_OK)
                return rc;
        }
        while (i < in.len && (in.ptr[i] == '\r' || in.ptr[i] == '\n'))
            i++;
    }
    return PX_OK;
}

static px_err list_add(proxy_send_list_t *l, px_str text, const char *path, size_t index,
                       px_error *err)
{
    if (l->count == l->cap) {
        size_t cap = l->cap == 0 ? 16 : l->cap * 2;
        send_item *items = px_realloc(l->items, cap * sizeof(*items));
        if (items == NULL)
            return px_error_set(err, PX_ERR_NOMEM, "out of memory");
        l->items = items;
        l->cap = cap;
    }
    px_buf b;
    px_buf_init(&b, FILE_MAX);
    px_err rc = normalise(text, &b);
    if (rc != PX_OK) {
        px_buf_free(&b);
        return px_error_set(err, rc, "%s: message too large", path);
    }
    size_t srclen = strlen(path) + 24;
    char *source = px_malloc(srclen);
    if (source == NULL) {
        px_buf_free(&b);
        return px_error_set(err, PX_ERR_NOMEM, "out of memory");
    }
    snprintf(source, srclen, "%s#%zu", path, index);
    send_item *it = &l->items[l->count];
    memset(it, 0, sizeof(*it));
    it->len = b.len;
    it->bytes = px_buf_steal(&b, NULL);
    it->source = source;
    if (it->bytes == NULL) {
        /* An empty message cannot reach here (normalise keeps a segment), but keep the
         * invariant that bytes is allocated. */
        px_free(source);
        return px_error_set(err, PX_ERR_PARSE, "%s: empty message", path);
    }
    /* MSH-10, to check MSA-2 against; a file that cannot be parsed still gets sent. */
    hl7_msh msh;
    if (hl7_parse(l->parser, it->bytes, it->len, 0, NULL) == PX_OK &&
        hl7_msh_read(l->parser, &msh, NULL) == PX_OK && msh.control_id.ptr != NULL) {
        it->id_off = (size_t)(msh.control_id.ptr - it->bytes);
        it->id_len = msh.control_id.len;
        it->has_id = true;
    }
    l->count++;
    return PX_OK;
}

static px_err read_file(const char *path, px_buf *out, px_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return px_error_setd(err, PX_ERR_IO, errno, "%s: %s", path, strerror(errno));
    px_err rc = PX_OK;
    for (;;) {
        if (px_buf_reserve(out, 65536) != PX_OK) {
            rc = px_error_set(err, PX_ERR_TOO_LARGE, "%s: larger than %u bytes", path, FILE_MAX);
            break;
        }
        size_t n = fread(out->data + out->len, 1, out->cap - out->len - 1, f);
        out->len += n;
        out->data[out->len] = '\0';
        if (n == 0) {
            if (ferror(f))
                rc = px_error_setd(err, PX_ERR_IO, errno, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    return rc;
}

static px_err add_file(proxy_send_list_t *l, const char *path, bool batch_as_one, px_error *err)
{
    px_buf content;
    px_buf_init(&content, FILE_MAX);
    px_err rc = read_file(path, &content, err);
    if (rc != PX_OK)
        goto out_free;
    px_str text = px_buf_view(&content);
    if (batch_as_one && hl7_is_batch(text)) {
        rc = list_add(l, text, path, 1, err);
        goto out_free;
    }
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, text);
    size_t n = 0;
    for (;;) {
        px_str msg;
        px_error e;
        px_err r = hl7_batch_next(&it, &msg, &e);
        if (r == PX_ERR_AGAIN)
            break;
        if (r != PX_OK) {
            rc = px_error_setd(err, PX_ERR_PARSE, e.detail,
                               "%s: bytes at offset %d are not part of a message", path, e.detail);
            goto out_free;
        }
        rc = list_add(l, msg, path, ++n, err);
        if (rc != PX_OK)
            goto out_free;
    }
    if (n == 0)
        rc = px_error_set(err, PX_ERR_PARSE, "%s: no HL7 message found", path);
out_free:
    px_buf_free(&content);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static px_err add_dir(proxy_send_list_t *l, const char *path, bool batch_as_one, int depth,
                      px_error *err)
{
    if (depth > 32)
        return px_error_set(err, PX_ERR_IO, "%s: directories nested too deep", path);
    DIR *d = opendir(path);
    if (d == NULL)
        return px_error_setd(err, PX_ERR_IO, errno, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t count = 0, cap = 0;
    px_err rc = PX_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            size_t ncap = cap == 0 ? 32 : cap * 2;
            char **p = px_realloc(names, ncap * sizeof(*names));
            if (p == NULL) {
                rc = px_error_set(err, PX_ERR_NOMEM, "out of memory");
                goto out_free;
            }
            names = p;
            cap = ncap;
        }
        size_t need = strlen(path) + strlen(e->d_name) + 2;
        names[count] = px_malloc(need);
        if (names[count] == NULL) {
            rc = px_error_set(err, PX_ERR_NOMEM, "out of memory");
            goto out_free;
        }
        snprintf(names[count], need, "%s/%s", path, e->d_name);
        count++;
    }
    qsort(names, count, sizeof(*names), name_cmp);
    for (size_t i = 0; i < count && rc == PX_OK; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0)
            rc = px_error_setd(err, PX_ERR_IO, errno, "%s: %s", names[i], strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = add_dir(l, names[i], batch_as_one, depth + 1, err);
        else if (S_ISREG(st.st_mode))
            rc = add_file(l, names[i], batch_as_one, err);
    }
out_free:
    for (size_t i = 0; i < count; i++)
        px_free(names[i]);
    px_free(names);
    closedir(d);
    return rc;
}

px_err proxy_send_list_add_path(proxy_send_list_t *l, const char *path, bool batch_as_one,
                                px_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return px_error_setd(err, PX_ERR_IO, errno, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return add_dir(l, path, batch_as_one, 0, err);
    return add_file(l, path, batch_as_one, err);
}

/* ---- the conversation ---- */

typedef struct send_run {
    uv_loop_t loop;
    uv_timer_t timer;
    proxy_mllp_client_t *client;
    const proxy_send_opts *opts;
    const proxy_send_list_t *list;
    proxy_send_result *res;
    hl7_msg_t *ack;
    size_t next;    /* the message awaiting an answer (== count when done) */
    size_t *ca_ids; /* messages answered CA whose application ACK may still come */
    size_t ca_count;
    px_err failure;
    px_error failure_err;
    bool done;
} send_run;

static void run_finish(send_run *r, px_err code, const px_error *e)
{
    if (r->done)
        return;
    r->done = true;
    r->failure = code;
    if (e != NULL)
        r->failure_err = *e;
    uv_timer_stop(&r->timer);
    proxy_mllp_client_close(r->client, NULL);
    r->client = NULL;
    uv_close((uv_handle_t *)&r->timer, NULL);
}

static void run_send_next(send_run *r)
{
    if (r->next >= r->list->count) {
        run_finish(r, PX_OK, NULL);
        return;
    }
    px_error e;
    if (proxy_mllp_client_send(r->client, proxy_send_list_message(r->list, r->next), &e) != PX_OK) {
        run_finish(r, e.code, &e);
        return;
    }
    r->res->sent++;
    uv_timer_again(&r->timer);
}

static void print_value(FILE *out, px_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
}

/* The human text of an error ACK: MSA-3, else ERR-8 (v2.5+), else ERR-3.2, else ERR-1.4.2. */
static px_str ack_error_text(const hl7_msg_t *ack, const hl7_ack_info *info, px_str *code)
{
    *code = PX_STR_NULL;
    ptrdiff_t seg = hl7_segment_find(ack, PX_LIT("ERR"), 1);
    if (seg >= 0) {
        *code = hl7_field(ack, (size_t)seg, 3, 1, 1, 0);
        if (code->len == 0)
            *code = hl7_field(ack, (size_t)seg, 1, 1, 4, 1);
    }
    if (info->text.len > 0)
        return info->text;
    if (seg < 0)
        return PX_STR_NULL;
    px_str t = hl7_field(ack, (size_t)seg, 8, 0, 0, 0);
    if (t.len == 0)
        t = hl7_field(ack, (size_t)seg, 3, 1, 2, 0);
    if (t.len == 0)
        t = hl7_field(ack, (size_t)seg, 1, 1, 4, 2);
    return t;
}

static bool code_positive(hl7_ack_code c)
{
    return c == HL7_ACK_AA || c == HL7_ACK_CA;
}

/* An application ACK (enhanced mode) for an earlier message that got CA: true when frame
 * answers one of those, which is then forgotten. */
static bool run_take_app_ack(send_run *r, px_str msa2)
{
    for (size_t i = 0; i < r->ca_count; i++) {
        if (px_str_eq(msa2, proxy_send_list_control_id(r->list, r->ca_ids[i]))) {
            memmove(&r->ca_ids[i], &r->ca_ids[i + 1], (r->ca_count - i - 1) * sizeof(size_t));
            r->ca_count--;
            return true;
        }
    }
    return false;
}

static void run_on_frame(proxy_mllp_client_t *c, px_str frame, void *ud)
{
    send_run *r = ud;
    (void)c;
    if (r->done)
        return;
    FILE *out = r->opts->out;
    const send_item *it = &r->list->items[r->next];
    px_str expect = proxy_send_list_control_id(r->list, r->next);
    hl7_ack_info info;
    hl7_msh msh;
    px_error e;
    bool readable = hl7_parse(r->ack, frame.ptr, frame.len, 0, &e) == PX_OK &&
                    hl7_ack_read(r->ack, &info, &e) == PX_OK;
    /* In enhanced mode the application ACK of an earlier message (AA/AE/AR naming a control
     * id that got CA) may arrive while the next message waits for its commit ACK. */
    if (readable &&
        (info.code == HL7_ACK_AA || info.code == HL7_ACK_AE || info.code == HL7_ACK_AR) &&
        !px_str_eq(info.acked_control_id, expect) && run_take_app_ack(r, info.acked_control_id)) {
        r->res->app_acks++;
        if (info.code != HL7_ACK_AA)
            r->res->app_negative++;
        if (out != NULL) {
            fprintf(out, "app-ack msa1=%s msa2=", hl7_ack_code_name(info.code));
            print_value(out, info.acked_control_id);
            fputc('\n', out);
            fflush(out);
        }
        return;
    }
    r->res->answered++;
    if (out != NULL) {
        fprintf(out, "%s control_id=", it->source);
        print_value(out, expect);
    }
    if (!readable) {
        r->res->unreadable++;
        if (out != NULL)
            fprintf(out, " result=unreadable-ack reason=\"%s\"\n", e.msg);
    } else {
        bool match = px_str_eq(info.acked_control_id, expect);
        bool positive = code_positive(info.code);
        if (!positive)
            r->res->negative++;
        if (!match)
            r->res->mismatched++;
        if (positive && match)
            r->res->accepted++;
        if (info.code == HL7_ACK_CA && r->ca_ids != NULL)
            r->ca_ids[r->ca_count++] = r->next;
        if (out != NULL) {
            px_str ack_id = PX_STR_NULL, err_code;
            if (hl7_msh_read(r->ack, &msh, NULL) == PX_OK)
                ack_id = msh.control_id;
            px_str text = ack_error_text(r->ack, &info, &err_code);
            fprintf(out, " msa1=%s msa2=", hl7_ack_code_name(info.code));
            print_value(out, info.acked_control_id);
            fprintf(out, " ack_control_id=");
            print_value(out, ack_id);
            if (err_code.len > 0) {
                fprintf(out, " err_code=");
                print_value(out, err_code);
            }
            if (text.len > 0) {
                fprintf(out, " err=\"");
                print_value(out, text);
                fputc('"', out);
            }
            fprintf(out, " result=%s\n",
                    !match     ? "msa2-mismatch"
                    : positive ? "accepted"
                               : "negative");
        }
    }
    if (out != NULL)
        fflush(out);
    r->next++;
    run_send_next(r);
}

static void run_on_connected(proxy_mllp_client_t *c, void *ud)
{
    (void)c;
    run_send_next(ud);
}

static void run_on_failed(proxy_mllp_client_t *c, const px_error *e, void *ud)
{
    send_run *r = ud;
    (void)c;
    run_finish(r, e->code, e);
}

static void run_on_timeout(uv_timer_t *t)
{
    send_run *r = t->data;
    px_error e;
    if (r->res->sent == 0)
        px_error_set(&e, PX_ERR_TIMEOUT, "no connection within %u ms", r->opts->timeout_ms);
    else
        px_error_set(&e, PX_ERR_TIMEOUT, "no answer within %u ms", r->opts->timeout_ms);
    run_finish(r, PX_ERR_TIMEOUT, &e);
}

px_err proxy_send_run(const proxy_send_opts *opts, const proxy_send_list_t *l,
                      proxy_send_result *result, px_error *err)
{
    memset(result, 0, sizeof(*result));
    send_run r;
    memset(&r, 0, sizeof(r));
    r.opts = opts;
    r.list = l;
    r.res = result;
    unsigned timeout = opts->timeout_ms != 0 ? opts->timeout_ms : DEFAULT_TIMEOUT;
    px_err rc = hl7_msg_create(&r.ack, err);
    if (rc != PX_OK)
        return rc;
    if (l->count > 0) {
        r.ca_ids = px_malloc(l->count * sizeof(size_t));
        if (r.ca_ids == NULL) {
            hl7_msg_destroy(r.ack);
            return px_error_set(err, PX_ERR_NOMEM, "out of memory");
        }
    }
    int urc = uv_loop_init(&r.loop);
    if (urc < 0) {
        px_free(r.ca_ids);
        hl7_msg_destroy(r.ack);
        return px_error_setd(err, PX_ERR_IO, urc, "loop init: %s", uv_strerror(urc));
    }
    uv_timer_init(&r.loop, &r.timer);
    r.timer.data = &r;
    uv_timer_start(&r.timer, run_on_timeout, timeout, timeout);
    proxy_mllp_client_cbs cbs = {run_on_connected, run_on_frame, run_on_failed};
    px_error e;
    rc = proxy_mllp_client_create(&r.loop, &cbs, &r, 0, &r.client, &e);
    if (rc != PX_OK) {
        r.done = true;
        r.failure = rc;
        r.failure_err = e;
        uv_close((uv_handle_t *)&r.timer, NULL);
    } else if (proxy_mllp_client_connect(r.client, opts->host, opts->port, &e) != PX_OK) {
        run_finish(&r, e.code, &e);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    urc = uv_loop_close(&r.loop);
    px_free(r.ca_ids);
    hl7_msg_destroy(r.ack);
    if (r.failure != PX_OK) {
        if (err != NULL)
            *err = r.failure_err;
        return r.failure;
    }
    if (urc != 0)
        return px_error_setd(err, PX_ERR_IO, urc, "loop close: %s", uv_strerror(urc));
    return PX_OK;
}

bool proxy_send_result_ok(const proxy_send_result *r)
{
    return r->answered == r->sent && r->accepted == r->answered && r->app_negative == 0;
}
