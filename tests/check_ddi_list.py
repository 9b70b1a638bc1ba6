#!/usr/bin/env python3
"""docs/ddi.md lists exactly the DDIs libuwdf.so provides.

A name listed in docs/ddi.md is the backquoted identifiers of a "- " list
item before its first " — " (the rest of the item is the note). Names under
"## Not provided" are KMDF DDIs the port does not have; every other list
item names a DDI it does. The check fails when
  * the library exports a name that docs/ddi.md does not list,
  * docs/ddi.md lists as provided a name that is neither exported nor a
    static inline function or macro of a public header,
  * docs/ddi.md lists as not provided a name the headers or library have,
  * a name is listed twice.

    check_ddi_list.py [--so LIB] [--include DIR]... [--doc FILE] [--skeleton]

--skeleton prints, grouped by family, list items for the exported names the
document lacks (paste them, then write their notes). Defaults as
check_exports.py (run from the build directory). Exit 0 when they agree.
"""
import argparse
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_exports  # noqa: E402  (the header parsing lives there)

NOT_PROVIDED = "## Not provided"
ITEM = re.compile(r"^\s*- (.*)$")
NAME = re.compile(r"`([A-Za-z_]\w*)(?:\(\))?`")

# Family headings of docs/ddi.md, in order, for --skeleton: first match wins.
FAMILIES = [
    ("WdfRequest*", r"^WdfRequest"),
    ("WdfIoTarget*", r"^WdfIoTarget"),
    ("WdfMemory* and lookaside lists", r"^Wdf(Memory|LookasideList)"),
    ("WdfIoQueue*", r"^WdfIoQueue"),
    ("WdfDevice*, WdfFdo*, WdfControl*", r"^Wdf(Device|Fdo|Control)"),
    ("WdfDriver*", r"^(WdfDriver|WdfGetDriver)"),
    ("WdfObject*", r"^WdfObject"),
    ("Utility objects", r"^Wdf(Timer|WorkItem|SpinLock|WaitLock|Collection|String)"),
    ("WdfFileObject*", r"^WdfFileObject"),
    ("Verifier", r"^WdfVerifier"),
    ("Filter Manager (Flt*)", r"^Flt"),
    ("Io*, Mm*, Ob*, Ps*", r"^(Io|Mm|Ob|Ps)[A-Z]"),
    ("Ke*", r"^K[ef][A-Z]"),
    ("Ex*", r"^Ex[A-Z]"),
    ("Rtl* and ntstrsafe", r"^(Rtl|Wdmlib)"),
    ("Zw*", r"^Zw"),
    ("Debug output (Dbg*, Kd*)", r"^(v?Dbg|Kd)"),
    ("Port extensions (Uwdf*)", r"^Uwdf"),
    ("Constants", r"^(GUID_|SDDL_)"),
]


def listed(doc):
    """(provided, not_provided, duplicates) names in the document."""
    provided, absent, seen, dups = [], [], set(), []
    section = provided
    with open(doc) as f:
        for line in f:
            if line.startswith("## "):
                section = absent if line.startswith(NOT_PROVIDED) else provided
                continue
            m = ITEM.match(line)
            if not m:
                continue
            for n in NAME.findall(m.group(1).split(" — ")[0]):
                if n in seen:
                    dups.append(n)
                seen.add(n)
                section.append(n)
    return set(provided), set(absent), dups


def header_macros(cc, incflags, tu, dirs):
    """Macros #defined by the public headers themselves (not by libc)."""
    out = check_exports.run(cc + ["-std=gnu11"] + incflags + ["-E", "-dD", tu])
    names, ours = set(), False
    marker = re.compile(r'^# \d+ "(.*)"')
    define = re.compile(r"^#define ([A-Za-z_]\w*)")
    for line in out.splitlines():
        m = marker.match(line)
        if m:
            ours = check_exports.in_dirs(m.group(1), dirs)
            continue
        m = define.match(line)
        if ours and m:
            names.add(m.group(1))
    return names


def family(name):
    for title, pat in FAMILIES:
        if re.search(pat, name):
            return title
    return "Other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--so", default=os.path.join(".libs", "libuwdf.so"))
    ap.add_argument("--include", action="append")
    ap.add_argument("--doc", default=os.path.join(HERE, "..", "docs", "ddi.md"))
    ap.add_argument("--skeleton", action="store_true")
    a = ap.parse_args()
    incdirs = a.include or [os.path.join(HERE, "..", "include"), "include"]
    dirs, incflags, cc, hdrs = check_exports.header_setup(incdirs, a.so)
    with tempfile.TemporaryDirectory(prefix="uwdf-check-ddi-") as tmp:
        tu = check_exports.write_tu(tmp, hdrs)
        inline = set()
        declared = check_exports.declared_functions(cc, incflags, tu, tmp, dirs, inline)
        declared |= check_exports.declared_variables(cc, incflags, tu, dirs)
        macros = header_macros(cc, incflags, tu, dirs)
    have = check_exports.exported(a.so)
    provided, absent, dups = listed(a.doc)
    unlisted = sorted(have - provided)
    if a.skeleton:
        groups = {}
        for n in unlisted:
            groups.setdefault(family(n), []).append(n)
        for title, _ in FAMILIES + [("Other", "")]:
            if title in groups:
                print("### %s\n" % title)
                for n in groups[title]:
                    print("- `%s`" % n)
                print()
        return 0
    problems = [
        ("exported but not listed in %s" % a.doc, unlisted),
        ("listed as provided but neither exported nor a header's inline function or macro",
         sorted(provided - have - inline - macros)),
        ("listed as not provided but the library or its headers have it",
         sorted(absent & (have | declared | inline | macros))),
        ("listed twice", sorted(set(dups))),
    ]
    ok = True
    for what, names in problems:
        if names:
            ok = False
            print("%s (%d):" % (what, len(names)))
            for n in names:
                print("  " + n)
    print("%s: %d exported, %d listed as provided (%d exported, %d inline or macro), %d as not provided; %s" %
          (os.path.relpath(a.doc), len(have), len(provided), len(provided & have),
           len((provided - have) & (inline | macros)),
           len(absent), "agree" if ok else "DISAGREE"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
