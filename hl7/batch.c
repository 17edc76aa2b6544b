/* Splitting batch files (FHS/BHS … BTS/FTS) and back-to-back message files into messages.
 *
 * The iterator walks lines; a line ends at \r, \n or \r\n. A message starts at a line
 * beginning with MSH and runs to the next line that begins with MSH or an envelope segment
 * (or to the end), without its trailing separators and blank lines. Blank lines (empty or
 * spaces and tabs only) between messages are skipped. */
#include "hl7/batch.h"

#include <limits.h>
#include <string.h>

static bool is_eol(char c)
{
    return c == '\r' || c == '\n';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Offset of the end of the line starting at i (the first terminator, or len). */
static size_t line_end(px_str in, size_t i)
{
    while (i < in.len && !is_eol(in.ptr[i]))
        i++;
    return i;
}

/* Offset of the start of the next line after the one ending at e. */
static size_t next_line(px_str in, size_t e)
{
    if (e < in.len && in.ptr[e] == '\r' && e + 1 < in.len && in.ptr[e + 1] == '\n')
        return e + 2;
    return e < in.len ? e + 1 : e;
}

/* True when the line [i, e) begins with the segment name (three bytes followed by a
 * non-alphanumeric separator, or nothing). */
static bool line_is(px_str in, size_t i, size_t e, const char *name)
{
    return e - i >= 3 && memcmp(in.ptr + i, name, 3) == 0 &&
           (e - i == 3 || !is_alnum(in.ptr[i + 3]));
}

static bool line_blank(px_str in, size_t i, size_t e)
{
    for (; i < e; i++)
        if (!is_blank(in.ptr[i]))
            return false;
    return true;
}

/* Which envelope segment the line is, or NULL. */
static px_str *envelope_slot(hl7_batch_iter *it, size_t i, size_t e)
{
    if (line_is(it->input, i, e, "FHS"))
        return &it->fhs;
    if (line_is(it->input, i, e, "BHS"))
        return &it->bhs;
    if (line_is(it->input, i, e, "BTS"))
        return &it->bts;
    if (line_is(it->input, i, e, "FTS"))
        return &it->fts;
    return NULL;
}

static px_str skip_bom(px_str input)
{
    if (input.len >= 3 && memcmp(input.ptr, "\xEF\xBB\xBF", 3) == 0)
        return px_str_make(input.ptr + 3, input.len - 3);
    return input;
}

void hl7_batch_iter_init(hl7_batch_iter *it, px_str input)
{
    memset(it, 0, sizeof(*it));
    it->input = input.ptr == NULL ? PX_LIT("") : skip_bom(input);
}

px_err hl7_batch_next(hl7_batch_iter *it, px_str *msg, px_error *err)
{
    px_str in = it->input;
    size_t i = it->pos;
    *msg = PX_STR_NULL;
    /* Envelope segments and blank lines up to the next MSH. */
    while (i < in.len) {
        size_t e = line_end(in, i);
        px_str *slot = envelope_slot(it, i, e);
        if (slot != NULL) {
            *slot = px_str_make(in.ptr + i, e - i);
        } else if (line_is(in, i, e, "MSH")) {
            break;
        } else if (!line_blank(in, i, e)) {
            /* Skip to the next line a caller could resume at, then report the stray bytes. */
            size_t bad = i;
            do {
                i = next_line(in, line_end(in, i));
                e = line_end(in, i);
            } while (i < in.len && envelope_slot(it, i, e) == NULL && !line_is(in, i, e, "MSH"));
            it->pos = i;
            return px_error_setd(err, PX_ERR_PARSE, bad > INT_MAX ? -1 : (int)bad,
                                 "bytes at offset %zu are neither a message nor a batch envelope",
                                 bad);
        }
        i = next_line(in, e);
    }
    if (i >= in.len) {
        it->pos = in.len;
        return PX_ERR_AGAIN;
    }
    size_t start = i, last_end = line_end(in, i);
    i = next_line(in, last_end);
    while (i < in.len) {
        size_t e = line_end(in, i);
        if (line_is(in, i, e, "MSH") || envelope_slot(it, i, e) != NULL)
            break;
        if (!line_blank(in, i, e))
            last_end = e;
        i = next_line(in, e);
    }
    it->pos = i;
    it->messages++;
    *msg = px_str_make(in.ptr + start, last_end - start);
    return PX_OK;
}

bool hl7_is_batch(px_str input)
{
    px_str in = input.ptr == NULL ? PX_LIT("") : skip_bom(input);
    size_t i = 0;
    while (i < in.len && (is_eol(in.ptr[i]) || is_blank(in.ptr[i])))
        i++;
    size_t e = line_end(in, i);
    return line_is(in, i, e, "FHS") || line_is(in, i, e, "BHS");
}
