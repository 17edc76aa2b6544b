/* parallax hl7 show | validate: look inside files of HL7 v2 messages.
 *
 * Both commands read a whole file (or standard input), walk its messages with the batch
 * iterator (single messages, messages back to back, FHS/BHS batches; CR, LF or CRLF
 * segment endings; a leading byte-order mark) and parse each one. show prints every
 * non-empty value with its position and its name from the dictionary of the message's
 * version; validate prints the problems the parser and validator record. */
#include "cli/commands.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/str.h"
#include "hl7/batch.h"
#include "hl7/dict.h"
#include "hl7/escape.h"
#include "hl7/hl7.h"

#include <jansson.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs are read whole; beyond this a file is refused rather than exhausting memory. */
#define MAX_INPUT_BYTES ((size_t)1 << 30)
/* Occurrence counters for segment names of three upper-case letters or digits. */
#define NAME_SLOTS (36 * 36 * 36)

static const char show_usage[] =
    "usage: parallax hl7 show [--json] FILE|-\n"
    "\n"
    "Prints every non-empty value of every segment with its position and its name in the\n"
    "message's HL7 version (MSH-12), one per line:\n"
    "  PID-5.1  Patient Name / Family Name  DOE\n"
    "Escape sequences are decoded (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\); control characters are\n"
    "printed as \\xHH. Repetitions are numbered PID-3[2].1 and repeated segments OBX[2]-5.\n"
    "Names come from the HL7 dictionary of versions 2.1 to 2.7; later versions use the 2.7\n"
    "names, and local segments (Z..) and unknown positions are shown as '-'.\n"
    "A file may hold one message, several back to back, or an FHS/BHS batch; segments may end\n"
    "in CR, LF or CRLF. FILE - reads standard input.\n"
    "\n"
    "  --json      print one JSON document instead (non-UTF-8 text is read as Latin-1)\n"
    "  -h, --help  this text\n"
    "\n"
    "exit codes: 0 shown, 1 some input was not an HL7 message, 2 usage, 3 FILE unreadable,\n"
    "            5 out of memory or output failed\n";

static const char validate_usage[] =
    "usage: parallax hl7 validate FILE...\n"
    "\n"
    "Parses and checks every message in each FILE (- reads standard input) and prints one\n"
    "line per problem, messages and segments numbered from 1:\n"
    "  FILE: message 1 (control id C), segment 2 (PID), field PID-5: what is wrong [name]\n"
    "then one summary line per file. Checks: MSH present and readable, message type, control\n"
    "id and version present, version 2.1 to 2.8.x, processing id, segment names, empty\n"
    "segments, segments ended by CR, escape sequences, bytes outside any message.\n"
    "\n"
    "  -h, --help  this text\n"
    "\n"
    "exit codes: 0 all valid, 1 problems found, 2 usage, 3 a FILE could not be read (the\n"
    "            others are still checked), 5 out of memory or output failed\n";

static const char hl7_usage[] = "usage: parallax hl7 show [--json] FILE|-\n"
                                "       parallax hl7 validate FILE...\n"
                                "\n"
                                "'parallax hl7 show --help' and 'parallax hl7 validate --help'\n"
                                "describe each command.\n";

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static const char *input_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "<stdin>" : path;
}

/* Reads all of path ("-" for standard input) into out. PX_ERR_IO with the system's reason,
 * PX_ERR_TOO_LARGE beyond MAX_INPUT_BYTES, PX_ERR_NOMEM. */
static px_err read_input(const char *path, px_buf *out, px_error *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL)
        return px_error_setd(err, PX_ERR_IO, errno, "%s", strerror(errno));
    px_err rc = PX_OK;
    char chunk[65536];
    for (;;) {
        size_t got = fread(chunk, 1, sizeof(chunk), f);
        if (got > 0) {
            rc = px_buf_append(out, chunk, got);
            if (rc == PX_ERR_TOO_LARGE) {
                px_error_set(err, rc, "larger than %zu MiB", MAX_INPUT_BYTES >> 20);
                goto out_close;
            }
            if (rc != PX_OK) {
                px_error_set(err, rc, "out of memory");
                goto out_close;
            }
        }
        if (got < sizeof(chunk)) {
            if (ferror(f)) {
                rc = px_error_setd(err, PX_ERR_IO, errno, "%s", strerror(errno));
                goto out_close;
            }
            break;
        }
    }
out_close:
    if (!is_stdin)
        fclose(f);
    return rc;
}

/* Writes s for a terminal: control bytes become \xHH, everything else is copied. */
static void put_text(FILE *out, px_str s)
{
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        fwrite(s.ptr + start, 1, i - start, out);
        fprintf(out, "\\x%02X", c);
        start = i + 1;
    }
    if (s.len > start)
        fwrite(s.ptr + start, 1, s.len - start, out);
}

/* A JSON string from message bytes: kept when valid UTF-8, else read as Latin-1 (the usual
 * 8-bit HL7 character set) and converted. NULL when out of memory. */
static json_t *json_text(px_str s)
{
    if (s.len == 0)
        return json_string("");
    json_t *j = json_stringn(s.ptr, s.len);
    if (j != NULL)
        return j;
    px_buf b;
    px_buf_init(&b, 2 * s.len + 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        char two[2] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F))};
        px_err rc = c < 0x80 ? px_buf_append_byte(&b, (char)c) : px_buf_append(&b, two, 2);
        if (rc != PX_OK) {
            px_buf_free(&b);
            return NULL;
        }
    }
    j = json_stringn(b.data, b.len);
    px_buf_free(&b);
    return j;
}

/* Sets key on obj to value (stolen); false when value is NULL or the set fails. */
static bool jset(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static json_t *json_cstr_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *json_str_or_null(px_str s)
{
    return s.len > 0 ? json_text(s) : json_null();
}

/* A view of a dictionary string, empty for NULL. */
static px_str dict_str(const char *s)
{
    return px_str_from_cstr(s);
}

/* The slot of a segment name of three upper-case letters or digits, or -1. */
static long name_slot(px_str name)
{
    if (name.len != 3)
        return -1;
    long slot = 0;
    for (size_t i = 0; i < 3; i++) {
        char c = name.ptr[i];
        long d;
        if (c >= 'A' && c <= 'Z')
            d = c - 'A';
        else if (c >= '0' && c <= '9')
            d = 26 + (c - '0');
        else
            return -1;
        slot = slot * 36 + d;
    }
    return slot;
}

/* One value to print: its position and the dictionary's names for each level. */
struct item {
    size_t field, rep, comp, sub; /* rep is always set; comp and sub 0 when whole */
    bool show_rep;                /* the field repeats in this message */
    const char *names[3];         /* field, component, sub-component; NULL when unknown */
    px_str datatype;              /* of the deepest level shown; empty when unknown */
};

struct show {
    bool json;
    FILE *out;
    const hl7_msg_t *m;
    const hl7_dict_version *v;
    px_buf value;    /* decoded value */
    px_buf path;     /* "OBX[2]-5.1" */
    px_buf label;    /* "OBX[2]" */
    uint32_t *occ;   /* occurrence counters, NAME_SLOTS */
    json_t *jvalues; /* borrowed: the current segment's values (json mode) */
    px_error err;
};

static px_err emit(struct show *sh, const struct item *it, px_str raw, bool decode)
{
    px_buf_reset(&sh->value);
    px_str value = raw;
    if (decode && hl7_has_escape(raw, hl7_msg_delims(sh->m))) {
        px_err rc = hl7_unescape(raw, hl7_msg_delims(sh->m), 0, &sh->value, &sh->err);
        if (rc != PX_OK)
            return rc;
        value = px_buf_view(&sh->value);
    }

    px_buf_reset(&sh->path);
    px_err rc = px_buf_append(&sh->path, sh->label.data, sh->label.len);
    if (rc == PX_OK)
        rc = px_buf_appendf(&sh->path, "-%zu", it->field);
    if (rc == PX_OK && it->show_rep)
        rc = px_buf_appendf(&sh->path, "[%zu]", it->rep);
    if (rc == PX_OK && it->comp > 0)
        rc = px_buf_appendf(&sh->path, ".%zu", it->comp);
    if (rc == PX_OK && it->sub > 0)
        rc = px_buf_appendf(&sh->path, ".%zu", it->sub);
    if (rc != PX_OK)
        return px_error_set(&sh->err, rc, "out of memory");

    size_t depth = it->sub > 0 ? 3 : it->comp > 0 ? 2 : 1;
    if (!sh->json) {
        fputs("  ", sh->out);
        put_text(sh->out, px_buf_view(&sh->path));
        fputs("  ", sh->out);
        for (size_t i = 0; i < depth; i++) {
            if (i > 0)
                fputs(" / ", sh->out);
            fputs(it->names[i] != NULL ? it->names[i] : "-", sh->out);
        }
        fputs("  ", sh->out);
        put_text(sh->out, value);
        fputc('\n', sh->out);
        return PX_OK;
    }

    static const char *const name_keys[3] = {"field_name", "component_name", "subcomponent_name"};
    json_t *j = json_object();
    if (j == NULL || json_array_append_new(sh->jvalues, j) != 0)
        return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
    /* From here j belongs to the values array. */
    bool ok = jset(j, "path", json_text(px_buf_view(&sh->path))) &&
              jset(j, "field", json_integer((json_int_t)it->field)) &&
              jset(j, "repetition", json_integer((json_int_t)it->rep)) &&
              jset(j, "component", json_integer((json_int_t)it->comp)) &&
              jset(j, "subcomponent", json_integer((json_int_t)it->sub));
    for (size_t i = 0; ok && i < depth; i++)
        ok = jset(j, name_keys[i], json_cstr_or_null(it->names[i]));
    ok = ok && jset(j, "datatype", json_str_or_null(it->datatype)) &&
         jset(j, "value", json_text(value));
    return ok ? PX_OK : px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
}

/* The data type whose components name the field's parts. OBX-5's type is VARIES (ST in
 * the 2.7 tables): the real one is in OBX-2. */
static px_str field_type(struct show *sh, size_t seg, size_t field, const hl7_dict_entry *fe)
{
    px_str type = px_str_from_cstr(fe->datatype);
    if (field == 5 && px_str_eq(hl7_segment_name(sh->m, seg), PX_LIT("OBX"))) {
        px_str obx2 = px_str_trim(hl7_field(sh->m, seg, 2, 1, 1, 0));
        if (hl7_dict_datatype(sh->v, obx2) != NULL)
            type = obx2;
    }
    return type;
}

static px_err show_field(struct show *sh, size_t seg, size_t field)
{
    const hl7_msg_t *m = sh->m;
    struct item it = {.field = field, .rep = 1};
    hl7_dict_entry fe = {0};
    bool known = hl7_dict_field(sh->v, hl7_segment_name(m, seg), field, &fe);
    it.names[0] = known ? fe.name : NULL;
    px_str type = known ? field_type(sh, seg, field, &fe) : PX_STR_NULL;

    /* MSH-1 and MSH-2 hold the separators themselves: shown as they are. */
    if (seg == 0 && field <= 2) {
        char fs = hl7_msg_delims(m)->field;
        px_str raw = field == 1 ? px_str_make(&fs, 1) : hl7_field(m, 0, 2, 0, 0, 0);
        it.datatype = type;
        return raw.len > 0 ? emit(sh, &it, raw, false) : PX_OK;
    }
    if (hl7_field(m, seg, field, 0, 0, 0).len == 0)
        return PX_OK;

    size_t reps = hl7_rep_count(m, seg, field);
    it.show_rep = reps > 1;
    for (size_t r = 1; r <= reps; r++) {
        px_str rep = hl7_field(m, seg, field, r, 0, 0);
        if (rep.len == 0)
            continue;
        it.rep = r;
        size_t comps = hl7_comp_count(m, seg, field, r);
        if (comps == 1 && hl7_sub_count(m, seg, field, r, 1) == 1) {
            /* A value without separators is shown whole at the field's own position,
             * whatever its type: PID-8 F, or PID-3 12345 when only CX.1 is sent. */
            it.comp = it.sub = 0;
            it.datatype = type;
            px_err rc = emit(sh, &it, rep, true);
            if (rc != PX_OK)
                return rc;
            continue;
        }
        for (size_t c = 1; c <= comps; c++) {
            px_str comp = hl7_field(m, seg, field, r, c, 0);
            if (comp.len == 0)
                continue;
            hl7_dict_entry ce = {0};
            bool ck = hl7_dict_component(sh->v, type, c, &ce);
            it.comp = c;
            it.names[1] = ck ? ce.name : NULL;
            size_t subs = hl7_sub_count(m, seg, field, r, c);
            if (subs == 1) {
                it.sub = 0;
                it.names[2] = NULL;
                it.datatype = ck ? dict_str(ce.datatype) : PX_STR_NULL;
                px_err rc = emit(sh, &it, comp, true);
                if (rc != PX_OK)
                    return rc;
                continue;
            }
            for (size_t s = 1; s <= subs; s++) {
                px_str sub = hl7_field(m, seg, field, r, c, s);
                if (sub.len == 0)
                    continue;
                hl7_dict_entry se = {0};
                bool sk = hl7_dict_subcomponent(sh->v, type, c, s, &se);
                it.sub = s;
                it.names[2] = sk ? se.name : NULL;
                it.datatype = sk ? dict_str(se.datatype) : PX_STR_NULL;
                px_err rc = emit(sh, &it, sub, true);
                if (rc != PX_OK)
                    return rc;
            }
        }
    }
    return PX_OK;
}

static px_err show_segment(struct show *sh, size_t seg, json_t *jsegments)
{
    px_str name = hl7_segment_name(sh->m, seg);
    long slot = name_slot(name);
    uint32_t occurrence = 0;
    if (slot >= 0)
        occurrence = ++sh->occ[slot];

    px_buf_reset(&sh->label);
    px_err rc = px_buf_append_str(&sh->label, name);
    if (rc == PX_OK && occurrence > 1)
        rc = px_buf_appendf(&sh->label, "[%u]", (unsigned)occurrence);
    if (rc != PX_OK)
        return px_error_set(&sh->err, rc, "out of memory");

    const char *desc = hl7_dict_segment(sh->v, name);
    if (!sh->json) {
        put_text(sh->out, px_buf_view(&sh->label));
        fprintf(sh->out, "  %s\n", desc != NULL ? desc : "-");
    } else {
        json_t *j = json_object();
        if (j == NULL || json_array_append_new(jsegments, j) != 0)
            return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
        /* j belongs to the segments array, and values (borrowed below) to j. */
        json_t *values = json_array();
        bool ok = jset(j, "index", json_integer((json_int_t)seg + 1)) &&
                  jset(j, "name", json_text(name)) &&
                  jset(j, "occurrence", json_integer(occurrence)) &&
                  jset(j, "description", json_cstr_or_null(desc)) && jset(j, "values", values);
        if (!ok)
            return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
        sh->jvalues = values;
    }
    size_t fields = hl7_field_count(sh->m, seg);
    for (size_t f = 1; f <= fields; f++) {
        rc = show_field(sh, seg, f);
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}

/* The message's header line (text) or its descriptive members (json). */
static px_err show_header(struct show *sh, size_t index, const hl7_msh *msh, json_t *jm)
{
    const char *used = hl7_dict_version_name(sh->v);
    if (!sh->json) {
        fprintf(sh->out, "message %zu: ", index);
        put_text(sh->out, msh->type);
        if (msh->trigger.len > 0) {
            fputc('^', sh->out);
            put_text(sh->out, msh->trigger);
        }
        fputs(", control id ", sh->out);
        put_text(sh->out, msh->control_id);
        fputs(", version ", sh->out);
        put_text(sh->out, msh->version.len > 0 ? msh->version : PX_LIT("(none)"));
        if (sh->v == NULL)
            fputs(" (no dictionary: names not shown)\n", sh->out);
        else if (!px_str_eq_cstr(msh->version, used))
            fprintf(sh->out, " (names from %s)\n", used);
        else
            fputc('\n', sh->out);
        return PX_OK;
    }
    bool ok = jset(jm, "index", json_integer((json_int_t)index)) &&
              jset(jm, "type", json_text(msh->type)) &&
              jset(jm, "trigger", json_text(msh->trigger)) &&
              jset(jm, "control_id", json_text(msh->control_id)) &&
              jset(jm, "version", json_text(msh->version)) &&
              jset(jm, "dictionary", sh->v != NULL ? json_string(used) : json_null());
    return ok ? PX_OK : px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
}

static px_err show_problems(struct show *sh, json_t *jm)
{
    size_t n = 0;
    const hl7_problem *p = hl7_problems(sh->m, &n);
    json_t *arr = json_array();
    if (!jset(jm, "problems", arr))
        return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_object();
        bool ok = j != NULL && json_array_append_new(arr, j) == 0 &&
                  jset(j, "problem", json_string(hl7_problem_name(p[i].code))) &&
                  jset(j, "text", json_string(hl7_problem_text(p[i].code))) &&
                  jset(j, "segment", json_integer((json_int_t)p[i].segment + 1)) &&
                  jset(j, "field", json_integer((json_int_t)p[i].field));
        if (!ok)
            return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
    }
    return PX_OK;
}

/* Shows one message. Returns PX_OK, PX_ERR_PARSE when it cannot be read (reported on
 * stderr), or a failure in sh->err. */
static px_err show_message(struct show *sh, hl7_msg_t *m, size_t index, px_str bytes,
                           const char *name, json_t *jmessages)
{
    px_error perr;
    px_error_clear(&perr);
    px_err rc = hl7_parse(m, bytes.ptr, bytes.len, 0, &perr);
    if (rc == PX_ERR_NOMEM)
        return px_error_set(&sh->err, rc, "out of memory");
    if (rc != PX_OK) {
        fprintf(stderr, "parallax hl7 show: %s: message %zu cannot be read: %s\n", name, index,
                perr.msg);
        return PX_ERR_PARSE;
    }
    sh->m = m;
    hl7_msh msh;
    memset(&msh, 0, sizeof(msh));
    if (hl7_msh_read(m, &msh, NULL) != PX_OK)
        memset(&msh, 0, sizeof(msh));
    sh->v = hl7_dict_version_find(msh.version);

    json_t *jm = NULL, *jsegments = NULL;
    if (sh->json) {
        jm = json_object();
        if (jm == NULL || json_array_append_new(jmessages, jm) != 0)
            return px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
    } else if (index > 1) {
        fputc('\n', sh->out);
    }
    rc = show_header(sh, index, &msh, jm);
    if (rc == PX_OK && sh->json)
        rc = show_problems(sh, jm);
    if (rc == PX_OK && sh->json) {
        /* jsegments is borrowed: jm owns it once set. */
        jsegments = json_array();
        if (!jset(jm, "segments", jsegments))
            rc = px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
    }
    HL7_FOREACH_SEGMENT(m, s) {
        if (rc != PX_OK)
            break;
        rc = show_segment(sh, s, jsegments);
    }
    /* Forget this message's occurrence counts. */
    HL7_FOREACH_SEGMENT(m, s) {
        long slot = name_slot(hl7_segment_name(m, s));
        if (slot >= 0)
            sh->occ[slot] = 0;
    }
    sh->m = NULL;
    return rc;
}

static px_err show_envelope(struct show *sh, const char *key, px_str seg, json_t *jenv)
{
    if (seg.len == 0)
        return PX_OK;
    if (!sh->json) {
        /* Envelope segments are named from the newest dictionary: they are the same in all. */
        const char *desc =
            hl7_dict_segment(hl7_dict_version_find(PX_LIT("2.7")), px_str_from_cstr(key));
        fprintf(sh->out, "%s  %s  ", key, desc != NULL ? desc : "-");
        put_text(sh->out, seg);
        fputc('\n', sh->out);
        return PX_OK;
    }
    return jset(jenv, key, json_text(seg)) ? PX_OK
                                           : px_error_set(&sh->err, PX_ERR_NOMEM, "out of memory");
}

static int run_show(const char *path, bool json)
{
    int status = PX_EXIT_OK;
    const char *name = input_name(path);
    struct show sh = {.json = json, .out = stdout};
    px_error_clear(&sh.err);
    px_buf input;
    px_buf_init(&input, MAX_INPUT_BYTES);
    px_buf_init(&sh.value, MAX_INPUT_BYTES);
    /* A malformed segment name can be a whole line, so labels may be as long as the input. */
    px_buf_init(&sh.path, MAX_INPUT_BYTES);
    px_buf_init(&sh.label, MAX_INPUT_BYTES);
    hl7_msg_t *m = NULL;
    json_t *root = NULL, *jmessages = NULL, *jenv = NULL;

    px_error rerr;
    px_error_clear(&rerr);
    px_err rc = read_input(path, &input, &rerr);
    if (rc != PX_OK) {
        fprintf(stderr, "parallax hl7 show: cannot read %s: %s\n", name, rerr.msg);
        status = rc == PX_ERR_NOMEM ? PX_EXIT_RUNTIME : PX_EXIT_INPUT;
        goto out;
    }
    sh.occ = px_calloc(NAME_SLOTS, sizeof(*sh.occ));
    if (sh.occ == NULL || hl7_msg_create(&m, NULL) != PX_OK)
        goto out_nomem;
    if (json) {
        root = json_object();
        jmessages = json_array();
        jenv = json_object();
        if (root == NULL || !jset(root, "file", json_text(px_str_from_cstr(name))) ||
            !jset(root, "messages", jmessages))
            goto out_nomem;
    }

    hl7_batch_iter it;
    hl7_batch_iter_init(&it, px_buf_view(&input));
    size_t index = 0;
    const char *last_fhs = NULL, *last_bhs = NULL;
    for (;;) {
        px_str msg;
        px_error berr;
        px_error_clear(&berr);
        size_t before = it.pos;
        rc = hl7_batch_next(&it, &msg, &berr);
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc != PX_OK) {
            /* Stray bytes: reported, and the iterator resumes at the next message. */
            fprintf(stderr, "parallax hl7 show: %s: %s\n", name, berr.msg);
            status = PX_EXIT_FAILURE;
            if (rc != PX_ERR_PARSE || it.pos <= before)
                break;
            continue;
        }
        if (it.fhs.len > 0 && it.fhs.ptr != last_fhs) {
            last_fhs = it.fhs.ptr;
            if (show_envelope(&sh, "FHS", it.fhs, jenv) != PX_OK)
                goto out_fail;
        }
        if (it.bhs.len > 0 && it.bhs.ptr != last_bhs) {
            last_bhs = it.bhs.ptr;
            if (show_envelope(&sh, "BHS", it.bhs, jenv) != PX_OK)
                goto out_fail;
        }
        rc = show_message(&sh, m, ++index, msg, name, jmessages);
        if (rc == PX_ERR_PARSE)
            status = PX_EXIT_FAILURE;
        else if (rc != PX_OK)
            goto out_fail;
        if (it.pos <= before)
            break; /* the iterator must move on; never loop on the same bytes */
    }
    if (show_envelope(&sh, "BTS", it.bts, jenv) != PX_OK ||
        show_envelope(&sh, "FTS", it.fts, jenv) != PX_OK)
        goto out_fail;
    if (index == 0 && status == PX_EXIT_OK) {
        fprintf(stderr, "parallax hl7 show: %s: no HL7 message found\n", name);
        status = PX_EXIT_FAILURE;
    }
    if (json) {
        if (json_object_size(jenv) > 0) {
            if (json_object_set(root, "envelope", jenv) != 0)
                goto out_nomem;
        }
        if (json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            goto out_write;
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        goto out_write;
    goto out;

out_write:
    fprintf(stderr, "parallax hl7 show: cannot write the output\n");
    status = PX_EXIT_RUNTIME;
    goto out;
out_nomem:
    px_error_set(&sh.err, PX_ERR_NOMEM, "out of memory");
out_fail:
    fprintf(stderr, "parallax hl7 show: %s: %s\n", name, sh.err.msg);
    status = PX_EXIT_RUNTIME;
out:
    json_decref(jenv);
    json_decref(root);
    hl7_msg_destroy(m);
    px_free(sh.occ);
    px_buf_free(&sh.label);
    px_buf_free(&sh.path);
    px_buf_free(&sh.value);
    px_buf_free(&input);
    return status;
}

static int cmd_show(int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    bool options = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && is_help(a)) {
            fputs(show_usage, stdout);
            return PX_EXIT_OK;
        }
        if (options && strcmp(a, "--json") == 0) {
            json = true;
        } else if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "parallax hl7 show: unknown option '%s'\n%s", a, show_usage);
            return PX_EXIT_USAGE;
        } else if (path == NULL) {
            path = a;
        } else {
            fprintf(stderr, "parallax hl7 show: one FILE only ('%s' is extra)\n%s", a, show_usage);
            return PX_EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "parallax hl7 show: FILE missing (use - for standard input)\n%s",
                show_usage);
        return PX_EXIT_USAGE;
    }
    return run_show(path, json);
}

/* Prints the problems of one parsed message; returns how many. */
static size_t report_problems(const char *name, size_t index, hl7_msg_t *m)
{
    hl7_msh msh;
    memset(&msh, 0, sizeof(msh));
    if (hl7_msh_read(m, &msh, NULL) != PX_OK)
        memset(&msh, 0, sizeof(msh));
    size_t n = 0;
    const hl7_problem *p = hl7_problems(m, &n);
    for (size_t i = 0; i < n; i++) {
        fprintf(stdout, "%s: message %zu", name, index);
        if (msh.control_id.len > 0) {
            fputs(" (control id ", stdout);
            put_text(stdout, msh.control_id);
            fputc(')', stdout);
        }
        px_str seg =
            p[i].segment < hl7_segment_count(m) ? hl7_segment_name(m, p[i].segment) : PX_STR_NULL;
        fprintf(stdout, ", segment %u", (unsigned)p[i].segment + 1);
        /* A bad segment name may be a whole line of content: only its start is shown. */
        bool long_name = seg.len > 3;
        if (long_name)
            seg.len = 3;
        if (seg.len > 0) {
            fputs(" (", stdout);
            put_text(stdout, seg);
            fputs(long_name ? "...)" : ")", stdout);
        }
        if (p[i].field > 0) {
            fputs(", field ", stdout);
            put_text(stdout, seg.len > 0 ? seg : PX_LIT("?"));
            fprintf(stdout, "-%u", (unsigned)p[i].field);
        }
        fprintf(stdout, ": %s [%s]\n", hl7_problem_text(p[i].code), hl7_problem_name(p[i].code));
    }
    return n;
}

/* Validates one file. Returns an exit code: OK, FAILURE (problems), INPUT or RUNTIME. */
static int validate_file(const char *path, hl7_msg_t *m)
{
    const char *name = input_name(path);
    px_buf input;
    px_buf_init(&input, MAX_INPUT_BYTES);
    px_error err;
    px_error_clear(&err);
    px_err rc = read_input(path, &input, &err);
    if (rc != PX_OK) {
        fprintf(stderr, "parallax hl7 validate: cannot read %s: %s\n", name, err.msg);
        px_buf_free(&input);
        return rc == PX_ERR_NOMEM ? PX_EXIT_RUNTIME : PX_EXIT_INPUT;
    }
    int status = PX_EXIT_OK;
    size_t problems = 0, index = 0;
    hl7_batch_iter it;
    hl7_batch_iter_init(&it, px_buf_view(&input));
    for (;;) {
        px_str msg;
        px_error_clear(&err);
        size_t before = it.pos;
        rc = hl7_batch_next(&it, &msg, &err);
        if (rc == PX_ERR_AGAIN)
            break;
        if (rc != PX_OK) {
            /* Stray bytes: a problem, and the iterator resumes at the next message. */
            fprintf(stdout, "%s: %s\n", name, err.msg);
            problems++;
            if (rc != PX_ERR_PARSE || it.pos <= before)
                break;
            continue;
        }
        index++;
        px_error_clear(&err);
        rc = hl7_parse(m, msg.ptr, msg.len, 0, &err);
        if (rc == PX_ERR_NOMEM) {
            fprintf(stderr, "parallax hl7 validate: %s: out of memory\n", name);
            status = PX_EXIT_RUNTIME;
            break;
        }
        if (rc != PX_OK) {
            fprintf(stdout, "%s: message %zu: cannot be read: %s\n", name, index, err.msg);
            problems++;
        } else {
            hl7_validate(m);
            problems += report_problems(name, index, m);
        }
        if (it.pos <= before)
            break;
    }
    if (status == PX_EXIT_OK && index == 0 && problems == 0) {
        fprintf(stdout, "%s: no HL7 message found\n", name);
        problems++;
    }
    fprintf(stdout, "%s: %zu message%s, %zu problem%s\n", name, index, index == 1 ? "" : "s",
            problems, problems == 1 ? "" : "s");
    if (status == PX_EXIT_OK && problems > 0)
        status = PX_EXIT_FAILURE;
    px_buf_free(&input);
    return status;
}

/* Orders exit codes by severity: runtime failure, unreadable input, problems, ok. */
static int worse(int a, int b)
{
    static const int rank[] = {[PX_EXIT_OK] = 0,    [PX_EXIT_FAILURE] = 1, [PX_EXIT_USAGE] = 1,
                               [PX_EXIT_INPUT] = 2, [PX_EXIT_CONFIG] = 1,  [PX_EXIT_RUNTIME] = 3};
    return rank[b] > rank[a] ? b : a;
}

static int cmd_validate(int argc, char **argv)
{
    const char **files = px_calloc((size_t)argc, sizeof(*files));
    if (files == NULL) {
        fprintf(stderr, "parallax hl7 validate: out of memory\n");
        return PX_EXIT_RUNTIME;
    }
    size_t nfiles = 0;
    bool options = true;
    int status = PX_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && is_help(a)) {
            fputs(validate_usage, stdout);
            goto out_free_files;
        }
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "parallax hl7 validate: unknown option '%s'\n%s", a, validate_usage);
            status = PX_EXIT_USAGE;
            goto out_free_files;
        } else {
            files[nfiles++] = a;
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "parallax hl7 validate: FILE missing\n%s", validate_usage);
        status = PX_EXIT_USAGE;
        goto out_free_files;
    }
    hl7_msg_t *m = NULL;
    if (hl7_msg_create(&m, NULL) != PX_OK) {
        fprintf(stderr, "parallax hl7 validate: out of memory\n");
        status = PX_EXIT_RUNTIME;
        goto out_free_files;
    }
    for (size_t i = 0; i < nfiles && status != PX_EXIT_RUNTIME; i++)
        status = worse(status, validate_file(files[i], m));
    hl7_msg_destroy(m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "parallax hl7 validate: cannot write the output\n");
        status = PX_EXIT_RUNTIME;
    }
out_free_files:
    px_free(files);
    return status;
}

int cmd_hl7(int argc, char **argv)
{
    if (argc < 2) {
        fputs(hl7_usage, stderr);
        return PX_EXIT_USAGE;
    }
    if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        fputs(hl7_usage, stdout);
        return PX_EXIT_OK;
    }
    if (strcmp(argv[1], "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (strcmp(argv[1], "validate") == 0)
        return cmd_validate(argc - 1, argv + 1);
    fprintf(stderr, "parallax hl7: unknown command '%s'\n%s", argv[1], hl7_usage);
    return PX_EXIT_USAGE;
}
