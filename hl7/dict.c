/* Lookups over the generated name tables (hl7/dict_data.c). Nothing here allocates. */
#include "hl7/dict.h"

#include "hl7/dict_data.h"
#include "hl7/hl7.h"

#include <string.h>

static const char *string_at(uint16_t id)
{
    return hl7__dict_strings + hl7__dict_string_offsets[id];
}

/* strcmp order between a view and a C string from the pool. */
static int name_cmp(px_str key, const char *name)
{
    size_t i = 0;
    for (; i < key.len && name[i] != '\0'; i++) {
        unsigned char a = (unsigned char)key.ptr[i], b = (unsigned char)name[i];
        if (a != b)
            return a < b ? -1 : 1;
    }
    if (i < key.len)
        return 1;
    return name[i] == '\0' ? 0 : -1;
}

/* Binary search in a run of version group ids sorted by name. */
static const hl7__dict_group *find_group(uint32_t first, uint32_t count, px_str name)
{
    if (name.len == 0 || name.ptr == NULL)
        return NULL;
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const hl7__dict_group *g = &hl7__dict_groups[hl7__dict_version_groups[first + mid]];
        int c = name_cmp(name, string_at(g->name));
        if (c == 0)
            return g;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static const hl7__dict_group *find_segment(const hl7_dict_version *v, px_str segment)
{
    if (v == NULL)
        return NULL;
    return find_group(v->seg_first, v->seg_count, segment);
}

static const hl7__dict_group *find_type(const hl7_dict_version *v, px_str datatype)
{
    if (v == NULL)
        return NULL;
    return find_group(v->type_first, v->type_count, datatype);
}

/* Element n (1-based) of a group, or NULL. */
static const hl7__dict_elem *group_elem(const hl7__dict_group *g, size_t n)
{
    if (g == NULL || n == 0 || n > g->count)
        return NULL;
    return &hl7__dict_elems[hl7__dict_lists[g->first + n - 1]];
}

static bool fill(const hl7__dict_elem *e, hl7_dict_entry *out)
{
    if (e == NULL)
        return false;
    out->name = string_at(e->desc);
    out->datatype = string_at(e->datatype);
    out->max_reps = e->max_reps;
    out->table = e->table;
    out->opt = e->opt <= HL7_DICT_OPT_BACKWARD ? (hl7_dict_opt)e->opt : HL7_DICT_OPT_UNKNOWN;
    return true;
}

const hl7_dict_version *hl7_dict_version_find(px_str version)
{
    unsigned code = hl7_version_code(version);
    /* Only 2.x versions have a dictionary; hl7_version_code gives 200 … 299 for them
     * (2.10 and later would not fit the scheme and are not versions HL7 published). */
    if (code < 200 || code > 299 || hl7__dict_version_count == 0)
        return NULL;
    const hl7_dict_version *best = &hl7__dict_versions[0];
    for (size_t i = 0; i < hl7__dict_version_count; i++)
        if (hl7__dict_versions[i].code <= code)
            best = &hl7__dict_versions[i];
    return best;
}

const char *hl7_dict_version_name(const hl7_dict_version *v)
{
    return v != NULL ? v->name : "";
}

const char *hl7_dict_segment(const hl7_dict_version *v, px_str segment)
{
    const hl7__dict_group *g = find_segment(v, segment);
    return g != NULL ? string_at(g->desc) : NULL;
}

size_t hl7_dict_field_count(const hl7_dict_version *v, px_str segment)
{
    const hl7__dict_group *g = find_segment(v, segment);
    return g != NULL ? g->count : 0;
}

bool hl7_dict_field(const hl7_dict_version *v, px_str segment, size_t field, hl7_dict_entry *out)
{
    return fill(group_elem(find_segment(v, segment), field), out);
}

const char *hl7_dict_datatype(const hl7_dict_version *v, px_str datatype)
{
    const hl7__dict_group *g = find_type(v, datatype);
    return g != NULL ? string_at(g->desc) : NULL;
}

size_t hl7_dict_component_count(const hl7_dict_version *v, px_str datatype)
{
    const hl7__dict_group *g = find_type(v, datatype);
    return g != NULL ? g->count : 0;
}

bool hl7_dict_component(const hl7_dict_version *v, px_str datatype, size_t comp,
                        hl7_dict_entry *out)
{
    return fill(group_elem(find_type(v, datatype), comp), out);
}

bool hl7_dict_subcomponent(const hl7_dict_version *v, px_str datatype, size_t comp, size_t sub,
                           hl7_dict_entry *out)
{
    const hl7__dict_elem *c = group_elem(find_type(v, datatype), comp);
    if (c == NULL || c->datatype == 0)
        return false;
    return fill(group_elem(find_type(v, px_str_from_cstr(string_at(c->datatype))), sub), out);
}
