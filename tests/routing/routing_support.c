#include "routing_support.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

route_config_t *rt_config(const char *json)
{
    route_config_t *cfg = NULL;
    px_error err;
    px_error_clear(&err);
    px_err rc = route_config_parse(json, strlen(json), &cfg, &err);
    ck_assert_msg(rc == PX_OK, "config refused: %s", err.msg);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* Walks to the parent of the last path component; returns it and the last component. */
static json_t *walk(json_t *root, char *path, char **last)
{
    json_t *cur = root;
    char *part = path;
    for (;;) {
        char *slash = strchr(part, '/');
        if (slash == NULL) {
            *last = part;
            return cur;
        }
        *slash = '\0';
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(part, NULL, 10))
                                 : json_object_get(cur, part);
        ck_assert_msg(cur != NULL, "test path component '%s' not in the base config", part);
        part = slash + 1;
    }
}

px_err rt_parse_changed(const char *base, const char *path, const char *value_json, px_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(base, 0, &jerr);
    ck_assert_msg(root != NULL, "base config: %s", jerr.text);
    json_t *doc = root;
    if (path[0] == '\0') {
        ck_assert_ptr_nonnull(value_json);
        doc = json_loads(value_json, JSON_DECODE_ANY, &jerr);
        ck_assert_msg(doc != NULL, "test value: %s", jerr.text);
        json_decref(root);
    } else {
        char copy[256];
        ck_assert_uint_lt(strlen(path), sizeof(copy));
        memcpy(copy, path, strlen(path) + 1);
        char *last = NULL;
        json_t *parent = walk(root, copy, &last);
        json_t *value = NULL;
        if (value_json != NULL) {
            value = json_loads(value_json, JSON_DECODE_ANY, &jerr);
            ck_assert_msg(value != NULL, "test value '%s': %s", value_json, jerr.text);
        }
        if (json_is_array(parent)) {
            size_t i = strtoul(last, NULL, 10);
            if (value == NULL)
                ck_assert_int_eq(json_array_remove(parent, i), 0);
            else if (i == json_array_size(parent))
                ck_assert_int_eq(json_array_append_new(parent, value), 0);
            else
                ck_assert_int_eq(json_array_set_new(parent, i, value), 0);
        } else if (value == NULL) {
            ck_assert_int_eq(json_object_del(parent, last), 0);
        } else {
            ck_assert_int_eq(json_object_set_new(parent, last, value), 0);
        }
    }
    char *text = json_dumps(doc, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(doc);
    ck_assert_ptr_nonnull(text);
    route_config_t *cfg = NULL;
    px_err rc = route_config_parse(text, strlen(text), &cfg, err);
    free(text);
    route_config_destroy(cfg);
    return rc;
}

void rt_msg_parse(rt_msg *msg, const char *text)
{
    size_t n = strlen(text);
    msg->bytes = malloc(n + 1);
    ck_assert_ptr_nonnull(msg->bytes);
    for (size_t i = 0; i <= n; i++)
        msg->bytes[i] = text[i] == '\n' ? '\r' : text[i];
    msg->m = NULL;
    px_error err;
    px_error_clear(&err);
    ck_assert_int_eq(hl7_msg_create(&msg->m, &err), PX_OK);
    ck_assert_msg(hl7_parse(msg->m, msg->bytes, n, 0, &err) == PX_OK, "parse: %s", err.msg);
    ck_assert_msg(hl7_msh_read(msg->m, &msg->msh, &err) == PX_OK, "MSH: %s", err.msg);
}

void rt_msg_free(rt_msg *msg)
{
    hl7_msg_destroy(msg->m);
    free(msg->bytes);
    msg->m = NULL;
    msg->bytes = NULL;
}

void rt_resolve(const route_config_t *cfg, const char *feed, const char *text, route_decision *out)
{
    const route_feed *f = route_config_feed_find(cfg, feed);
    ck_assert_msg(f != NULL, "no feed %s", feed);
    rt_msg msg;
    rt_msg_parse(&msg, text);
    memset(out, 0xa5, sizeof(*out));
    route_resolve(cfg, f, msg.m, &msg.msh, out);
    rt_msg_free(&msg);
}
