/* Private to hl7/dict.c: the layout of the generated tables in hl7/dict_data.c
 * (written by tools/gen_hl7_dict.py, which must agree with this file).
 *
 * Strings live in one pool and are named by a 16-bit id (id 0 is ""). An element is a field
 * of a segment or a component of a data type; identical elements are stored once. A group is
 * one variant of a segment or data type: its name, description and a run of element ids in
 * hl7__dict_lists (runs are shared between versions and between runs that prefix others).
 * Each version lists its segment groups and then its data type groups in
 * hl7__dict_version_groups, each run sorted by name (strcmp order) for binary search. */
#ifndef PX_HL7_DICT_DATA_H
#define PX_HL7_DICT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "hl7/dict.h"

typedef struct hl7__dict_elem {
    uint16_t desc;     /* string id */
    uint16_t datatype; /* string id, 0 when none */
    uint16_t table;    /* HL7 table number, 0 when none */
    uint8_t max_reps;  /* 0 = unbounded */
    uint8_t opt;       /* hl7_dict_opt */
} hl7__dict_elem;

typedef struct hl7__dict_group {
    uint16_t name;  /* string id */
    uint16_t desc;  /* string id */
    uint32_t first; /* index of the first element id in hl7__dict_lists */
    uint32_t count; /* number of elements */
} hl7__dict_group;

struct hl7_dict_version {
    const char *name; /* "2.5.1" */
    unsigned code;    /* as hl7_version_code: 251 */
    uint32_t seg_first, seg_count;
    uint32_t type_first, type_count;
};

extern const char hl7__dict_strings[];
extern const uint32_t hl7__dict_string_offsets[];
extern const hl7__dict_elem hl7__dict_elems[];
extern const uint16_t hl7__dict_lists[];
extern const hl7__dict_group hl7__dict_groups[];
extern const uint16_t hl7__dict_version_groups[];
/* Sorted by code, oldest first. */
extern const struct hl7_dict_version hl7__dict_versions[];
extern const size_t hl7__dict_version_count;

#endif
