/* Building write operations: each record is copied into one allocation (the node and the
 * bytes of its strings), so the caller's views may die as soon as the add returns. */
#include <string.h>

#include "common/alloc.h"
#include "ledger/internal.h"

/* The string fields of one record copy (pointers into the copy) and their total length. */
typedef struct strs {
    px_str *fields[12];
    size_t n;
    size_t total;
} strs;

static void strs_add(strs *s, px_str *field)
{
    s->fields[s->n++] = field;
    s->total += field->len;
}

/* Allocates a node holding a copy of the record at src (size bytes, with the string fields
 * listed in s) followed by the bytes of those strings, and points the copied fields there. */
static ledger__rec *rec_alloc(rec_kind kind, const void *src, size_t size, const strs *s,
                              px_error *err)
{
    ledger__rec *r = px_malloc(sizeof(*r) + s->total);
    if (r == NULL) {
        px_error_set(err, PX_ERR_NOMEM, "no memory for a ledger record");
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    char *base = (char *)&r->u;
    memcpy(base, src, size);
    char *p = (char *)(r + 1);
    for (size_t i = 0; i < s->n; i++) {
        /* The field sits at the same offset in the node's copy as in the source. */
        px_str *dst = (px_str *)(base + ((const char *)s->fields[i] - (const char *)src));
        if (dst->len == 0 || dst->ptr == NULL) {
            *dst = PX_STR_NULL;
            continue;
        }
        memcpy(p, dst->ptr, dst->len);
        dst->ptr = p;
        p += dst->len;
    }
    return r;
}

static void op_append(ledger_op_t *op, ledger__rec *r)
{
    if (op->tail == NULL)
        op->head = r;
    else
        op->tail->next = r;
    op->tail = r;
}

static px_err check_ref(const ledger_op_t *op, int64_t ref, px_error *err)
{
    if (ref > 0)
        return PX_OK;
    if (ref < 0 && (uint64_t)(-(ref + 1)) < op->n_messages)
        return PX_OK;
    return px_error_set(err, PX_ERR_INVAL,
                        "ledger record refers to message %lld, which is not "
                        "an id or a message of this op",
                        (long long)ref);
}

static px_err add(ledger_op_t *op, rec_kind kind, const void *src, size_t size, strs *s,
                  ledger__rec **out, px_error *err)
{
    ledger__rec *r = rec_alloc(kind, src, size, s, err);
    if (r == NULL)
        return PX_ERR_NOMEM;
    op_append(op, r);
    if (out != NULL)
        *out = r;
    return PX_OK;
}

px_err ledger_op_create(void *user, ledger_op_t **out, px_error *err)
{
    ledger_op_t *op = px_calloc(1, sizeof(*op));
    *out = NULL;
    if (op == NULL)
        return px_error_set(err, PX_ERR_NOMEM, "no memory for a ledger op");
    op->user = user;
    *out = op;
    return PX_OK;
}

void ledger__op_release_bodies(ledger_op_t *op)
{
    for (ledger__rec *r = op->head; r != NULL; r = r->next) {
        if (r->kind == REC_MESSAGE && r->u.msg.r.body != NULL) {
            px_msg_unref(r->u.msg.r.body);
            r->u.msg.r.body = NULL;
            r->u.msg.body = PX_STR_NULL;
        }
    }
}

void ledger_op_destroy(ledger_op_t *op)
{
    if (op == NULL)
        return;
    ledger__op_release_bodies(op);
    ledger__rec *r = op->head;
    while (r != NULL) {
        ledger__rec *next = r->next;
        px_free(r);
        r = next;
    }
    px_free(op);
}

px_err ledger_op_add_message(ledger_op_t *op, const ledger_message_rec *rec, int64_t *ref,
                             px_error *err)
{
    if ((unsigned)rec->state > LEDGER_MSG_FILTERED)
        return px_error_set(err, PX_ERR_INVAL, "ledger message state %d out of range",
                            (int)rec->state);
    px_str body = PX_STR_NULL;
    if (rec->body != NULL) {
        px_str all = px_msg_bytes(rec->body);
        body = all;
        if (rec->body_part.ptr != NULL) {
            if (rec->body_part.ptr < all.ptr || rec->body_part.len > all.len ||
                (size_t)(rec->body_part.ptr - all.ptr) > all.len - rec->body_part.len)
                return px_error_set(err, PX_ERR_INVAL,
                                    "ledger message body part lies outside the message");
            body = rec->body_part;
        }
    }
    ledger_message_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.feed);
    strs_add(&s, &copy.peer);
    strs_add(&s, &copy.sending_app);
    strs_add(&s, &copy.sending_facility);
    strs_add(&s, &copy.receiving_app);
    strs_add(&s, &copy.receiving_facility);
    strs_add(&s, &copy.type);
    strs_add(&s, &copy.trigger);
    strs_add(&s, &copy.control_id);
    strs_add(&s, &copy.version);
    strs_add(&s, &copy.reason);
    ledger__rec *r = rec_alloc(REC_MESSAGE, &copy, sizeof(copy), &s, err);
    if (r == NULL)
        return PX_ERR_NOMEM;
    r->u.msg.has_hash = rec->hash != NULL;
    if (rec->hash != NULL)
        memcpy(r->u.msg.hash, rec->hash, LEDGER_HASH_LEN);
    r->u.msg.r.hash = NULL;
    r->u.msg.r.body_part = PX_STR_NULL;
    r->u.msg.r.body = rec->body != NULL ? px_msg_ref(rec->body) : NULL;
    r->u.msg.body = body;
    op_append(op, r);
    if (ref != NULL)
        *ref = LEDGER_OP_MESSAGE(op->n_messages);
    op->n_messages++;
    return PX_OK;
}

px_err ledger_op_add_leg(ledger_op_t *op, const ledger_leg_rec *rec, px_error *err)
{
    px_err e = check_ref(op, rec->message, err);
    if (e != PX_OK)
        return e;
    if ((unsigned)rec->leg > LEDGER_LEG_FHIR || (unsigned)rec->state > LEDGER_LEG_HELD)
        return px_error_set(err, PX_ERR_INVAL, "ledger leg or leg state out of range");
    ledger_leg_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.ack_code);
    strs_add(&s, &copy.ack);
    strs_add(&s, &copy.error);
    return add(op, REC_LEG, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_sender_ack(ledger_op_t *op, const ledger_sender_ack_rec *rec, px_error *err)
{
    px_err e = check_ref(op, rec->message, err);
    if (e != PX_OK)
        return e;
    ledger_sender_ack_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.code);
    strs_add(&s, &copy.bytes);
    return add(op, REC_SENDER_ACK, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_outbox(ledger_op_t *op, const ledger_outbox_rec *rec, px_error *err)
{
    px_err e = check_ref(op, rec->message, err);
    if (e != PX_OK)
        return e;
    if ((unsigned)rec->action > LEDGER_OUTBOX_DELETE || (unsigned)rec->leg > LEDGER_LEG_FHIR)
        return px_error_set(err, PX_ERR_INVAL, "ledger outbox action or leg out of range");
    if (rec->seq < 0)
        return px_error_set(err, PX_ERR_INVAL, "ledger outbox sequence is negative");
    ledger_outbox_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.key);
    return add(op, REC_OUTBOX, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_divergence(ledger_op_t *op, const ledger_divergence_rec *rec, px_error *err)
{
    px_err e = check_ref(op, rec->message, err);
    if (e != PX_OK)
        return e;
    if ((unsigned)rec->kind >= LEDGER_DIV_KIND_COUNT)
        return px_error_set(err, PX_ERR_INVAL, "ledger divergence kind %d out of range",
                            (int)rec->kind);
    ledger_divergence_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.detail);
    return add(op, REC_DIVERGENCE, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_resolution(ledger_op_t *op, const ledger_resolution_rec *rec, px_error *err)
{
    if (rec->divergence <= 0)
        return px_error_set(err, PX_ERR_INVAL, "ledger resolution needs a divergence id");
    ledger_resolution_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.who);
    strs_add(&s, &copy.reason);
    strs_add(&s, &copy.note);
    return add(op, REC_RESOLUTION, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_config_reload(ledger_op_t *op, const ledger_config_reload_rec *rec,
                                   px_error *err)
{
    ledger_config_reload_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.hash);
    strs_add(&s, &copy.who);
    strs_add(&s, &copy.reason);
    return add(op, REC_CONFIG_RELOAD, &copy, sizeof(copy), &s, NULL, err);
}

px_err ledger_op_add_audit(ledger_op_t *op, const ledger_audit_rec *rec, px_error *err)
{
    ledger_audit_rec copy = *rec;
    strs s = {0};
    strs_add(&s, &copy.actor);
    strs_add(&s, &copy.action);
    strs_add(&s, &copy.target);
    strs_add(&s, &copy.detail);
    return add(op, REC_AUDIT, &copy, sizeof(copy), &s, NULL, err);
}

int64_t ledger__op_resolve(const ledger_op_t *op, int64_t ref)
{
    if (ref > 0)
        return ref;
    return op->first_id + (-(ref + 1));
}

ledger_op_t *ledger_op_next(const ledger_op_t *op)
{
    return op->next;
}

void *ledger_op_user(const ledger_op_t *op)
{
    return op->user;
}

int64_t ledger_op_message_id(const ledger_op_t *op, size_t k)
{
    if (op->first_id == 0 || k >= op->n_messages)
        return 0;
    return op->first_id + (int64_t)k;
}

px_err ledger_op_result(const ledger_op_t *op, px_error *out)
{
    if (out != NULL)
        *out = op->result;
    return op->result.code;
}
