#!/usr/bin/env python3
"""Generates hl7/dict_data.c, the HL7 v2 name dictionary compiled into parallax.

Source: the hl7-dictionary npm package 1.0.1 (github.com/fernandojsg/hl7-dictionary, MIT,
Copyright 2015 Fernando Serrano) as kept in the shared corpus: <corpus>/hl7-dictionary/<version>/
{segments,fields}.json. The generated file is committed, so building parallax never needs
python; run this only to refresh the tables:

    tools/gen_hl7_dict.py [--corpus DIR] [--output FILE]

DIR defaults to $PX_CORPUS, else ../shared/corpus next to the repository. The output is
deterministic (same input, same bytes).

What is kept: segment names and descriptions; per segment and version the fields with their
description, data type, optionality, repeatability and table number; per data type and version
its components the same way. What is normalised: descriptions are stripped of surrounding
blanks, and a mis-encoded en dash (UTF-8 read as cp1251) in a few "Set ID - XXX" names becomes
an ASCII hyphen, so the tables are plain ASCII. What is dropped: names that cannot be segment
names (the 2.6 data lists the ED data type as a segment), field lengths and message structures.

Layout (see hl7/dict_data.h): one string pool addressed by 16-bit string ids; unique element
records (a field or a component: description, data type, table, repetitions, optionality);
element lists as arrays of element ids, shared between versions and between lists that are
prefixes of one another; group records (a segment or a data type: name, description, list);
and per version the ids of its segments and of its data types, sorted by name for binary search.
"""

import argparse
import json
import os
import sys
import textwrap

VERSIONS = [
    ("2.1", 210),
    ("2.2", 220),
    ("2.3", 230),
    ("2.3.1", 231),
    ("2.4", 240),
    ("2.5", 250),
    ("2.5.1", 251),
    ("2.6", 260),
    ("2.7", 270),
]

MIT_NOTICE = """\
Copyright 2015 Fernando Serrano

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""

# UTF-8 for an en dash, decoded as cp1251 and encoded again as UTF-8 somewhere upstream.
MOJIBAKE_EN_DASH = "\u0432\u0402\u201c"


class Fail(Exception):
    pass


def clean(text, where):
    if not isinstance(text, str):
        raise Fail(f"{where}: description is not a string")
    text = text.replace(MOJIBAKE_EN_DASH, "-").replace("\u2013", "-").strip()
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in text):
        raise Fail(f"{where}: non-ASCII or control character in {text!r}")
    return text


def small_int(value, where, limit):
    if value is None:
        return 0
    if not isinstance(value, int) or value < 0 or value > limit:
        raise Fail(f"{where}: value {value!r} out of range 0..{limit}")
    return value


def is_segment_name(name):
    return len(name) == 3 and all(c.isupper() or c.isdigit() for c in name) and name[0].isupper()


class Builder:
    def __init__(self):
        self.strings = {"": 0}
        self.elems = {}
        self.groups = {}
        self.versions = []
        self.notes = []

    def string(self, text):
        # Ids are assigned after sorting; here we only collect.
        self.strings.setdefault(text, None)
        return text

    def elem(self, item, where):
        key = (
            self.string(clean(item.get("desc", ""), where)),
            self.string(clean(item.get("datatype", ""), where)),
            small_int(item.get("table"), where + " table", 0xFFFF),
            small_int(item.get("rep"), where + " rep", 0xFF),
            small_int(item.get("opt"), where + " opt", 4),
        )
        self.elems.setdefault(key, None)
        return key

    def group(self, name, desc, items, where):
        elems = tuple(self.elem(it, f"{where}.{i + 1}") for i, it in enumerate(items))
        key = (self.string(name), self.string(clean(desc, where)), elems)
        self.groups.setdefault(key, None)
        return key

    def load(self, corpus):
        root = os.path.join(corpus, "hl7-dictionary")
        for version, code in VERSIONS:
            with open(os.path.join(root, version, "segments.json"), encoding="utf-8") as f:
                segments = json.load(f)
            with open(os.path.join(root, version, "fields.json"), encoding="utf-8") as f:
                types = json.load(f)
            segs = []
            for name in sorted(segments):
                if not is_segment_name(name):
                    self.notes.append(f"{version}: dropped {name!r} (not a segment name)")
                    continue
                seg = segments[name]
                segs.append(self.group(name, seg["desc"], seg["fields"], f"{version} {name}"))
            dts = []
            for name in sorted(types):
                dt = types[name]
                dts.append(self.group(clean(name, version), dt["desc"], dt["subfields"],
                                      f"{version} {name}"))
            self.versions.append((version, code, segs, dts))

    def layout(self):
        string_ids = {}
        offsets = []
        pool_len = 0
        for i, text in enumerate(sorted(self.strings)):
            string_ids[text] = i
            offsets.append(pool_len)
            pool_len += len(text) + 1
        if len(string_ids) > 0xFFFF:
            raise Fail("too many strings for 16-bit ids")

        elem_keys = sorted(self.elems, key=lambda k: (string_ids[k[0]], string_ids[k[1]], k[2:]))
        elem_ids = {k: i for i, k in enumerate(elem_keys)}
        if len(elem_ids) > 0xFFFF:
            raise Fail("too many elements for 16-bit ids")

        # Lists, longest first, each placed at the start of an already placed list it prefixes.
        lists = sorted({tuple(elem_ids[e] for e in g[2]) for g in self.groups},
                       key=lambda l: (-len(l), l))
        flat = []
        where = {}
        placed = []
        for lst in lists:
            if not lst:
                where[lst] = 0
                continue
            for start, length in placed:
                if length >= len(lst) and tuple(flat[start:start + len(lst)]) == lst:
                    where[lst] = start
                    break
            else:
                where[lst] = len(flat)
                placed.append((len(flat), len(lst)))
                flat.extend(lst)

        group_keys = sorted(self.groups, key=lambda g: (g[0], g[1], tuple(elem_ids[e] for e in g[2])))
        group_ids = {g: i for i, g in enumerate(group_keys)}
        groups = []
        for g in group_keys:
            lst = tuple(elem_ids[e] for e in g[2])
            groups.append((string_ids[g[0]], string_ids[g[1]], where[lst], len(lst)))

        vgroups = []
        versions = []
        for version, code, segs, dts in self.versions:
            seg_first = len(vgroups)
            vgroups.extend(group_ids[g] for g in sorted(segs, key=lambda g: g[0]))
            dt_first = len(vgroups)
            vgroups.extend(group_ids[g] for g in sorted(dts, key=lambda g: g[0]))
            versions.append((version, code, seg_first, len(segs), dt_first, len(dts)))
        for name, seq in (("list", flat), ("version group", vgroups)):
            if len(seq) > 0xFFFFFFFF:
                raise Fail(f"too many {name} entries")
        if len(group_ids) > 0xFFFF:
            raise Fail("too many groups for 16-bit ids")

        return {
            "strings": sorted(self.strings),
            "offsets": offsets,
            "pool_len": pool_len,
            "elems": [(string_ids[k[0]], string_ids[k[1]], k[2], k[3], k[4]) for k in elem_keys],
            "lists": flat,
            "groups": groups,
            "vgroups": vgroups,
            "versions": versions,
        }


def c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '\\0"'


def numbers(values, per_line, indent="    "):
    out = []
    for i in range(0, len(values), per_line):
        out.append(indent + ", ".join(str(v) for v in values[i:i + per_line]) + ",")
    return "\n".join(out)


def render(t, notes):
    sizes = {
        "string pool": t["pool_len"] + 1,
        "string offsets": 4 * len(t["offsets"]),
        "elements": 8 * len(t["elems"]),
        "element lists": 2 * len(t["lists"]),
        "groups": 12 * len(t["groups"]),
        "version groups": 2 * len(t["vgroups"]),
    }
    total = sum(sizes.values())
    lines = []
    w = lines.append
    w("/* HL7 v2 segment, field and data type names for versions")
    w(" * " + ", ".join(v for v, _ in VERSIONS) + ".")
    w(" *")
    w(" * GENERATED by tools/gen_hl7_dict.py: do not edit; change the generator and run it again.")
    w(" *")
    w(" * Source: the hl7-dictionary npm package 1.0.1")
    w(" * (https://github.com/fernandojsg/hl7-dictionary), lib/<version>/{segments,fields}.js as")
    w(" * converted to JSON in the parallax test corpus (hl7-dictionary/, see its SOURCES.md).")
    w(" * License: MIT, notice below.")
    w(" *")
    summary = ("Contents: %d strings, %d unique fields/components, %d segment and data type "
               "variants, %d list entries, %d version entries. Size of the tables: %d bytes (%s)."
               % (len(t["strings"]), len(t["elems"]), len(t["groups"]), len(t["lists"]),
                  len(t["vgroups"]), total, ", ".join(f"{k} {v}" for k, v in sizes.items())))
    for para in [summary] + ["Note: " + n + "." for n in notes]:
        for line in textwrap.wrap(para, 94):
            w(" * " + line)
    w(" *")
    for line in MIT_NOTICE.splitlines():
        w((" * " + line).rstrip())
    w(" */")
    w('#include "hl7/dict_data.h"')
    w("")
    w("/* clang-format off */")
    w("")
    w("/* Every string NUL-terminated, in string id order (id 0 is the empty string). */")
    w("const char hl7__dict_strings[%d] =" % (t["pool_len"] + 1))
    for i, s in enumerate(t["strings"]):
        w("    " + c_string(s) + (";" if i == len(t["strings"]) - 1 else ""))
    w("")
    w("const uint32_t hl7__dict_string_offsets[%d] = {" % len(t["offsets"]))
    w(numbers(t["offsets"], 12))
    w("};")
    w("")
    w("/* {description, data type, table, max repetitions, optionality} */")
    w("const hl7__dict_elem hl7__dict_elems[%d] = {" % len(t["elems"]))
    for i in range(0, len(t["elems"]), 3):
        w("    " + " ".join("{%d, %d, %d, %d, %d}," % e for e in t["elems"][i:i + 3]))
    w("};")
    w("")
    w("const uint16_t hl7__dict_lists[%d] = {" % max(1, len(t["lists"])))
    w(numbers(t["lists"] or [0], 14))
    w("};")
    w("")
    w("/* {name, description, first list entry, count} */")
    w("const hl7__dict_group hl7__dict_groups[%d] = {" % len(t["groups"]))
    for i in range(0, len(t["groups"]), 3):
        w("    " + " ".join("{%d, %d, %d, %d}," % g for g in t["groups"][i:i + 3]))
    w("};")
    w("")
    w("/* Per version: its segments, then its data types, each run sorted by name. */")
    w("const uint16_t hl7__dict_version_groups[%d] = {" % len(t["vgroups"]))
    w(numbers(t["vgroups"], 14))
    w("};")
    w("")
    w("/* {name, code, first segment, segment count, first data type, data type count} */")
    w("const struct hl7_dict_version hl7__dict_versions[%d] = {" % len(t["versions"]))
    for v in t["versions"]:
        w('    {"%s", %d, %d, %d, %d, %d},' % v)
    w("};")
    w("")
    w("const size_t hl7__dict_version_count = %d;" % len(t["versions"]))
    w("")
    w("/* clang-format on */")
    w("")
    return "\n".join(lines), total


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    default_corpus = os.environ.get("PX_CORPUS") or os.path.join(repo, "..", "shared", "corpus")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=default_corpus, help="corpus root (default: %(default)s)")
    ap.add_argument("--output", default=os.path.join(repo, "hl7", "dict_data.c"),
                    help="file to write (default: %(default)s)")
    args = ap.parse_args()
    try:
        b = Builder()
        b.load(args.corpus)
        tables = b.layout()
        if len(tables["versions"]) != len(VERSIONS):
            raise Fail("version count mismatch")
        text, total = render(tables, b.notes)
    except (OSError, ValueError, KeyError, Fail) as e:
        print(f"gen_hl7_dict: {e}", file=sys.stderr)
        return 1
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print(f"gen_hl7_dict: wrote {args.output}: {total} bytes of tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
