#!/usr/bin/env python3
"""uwdf-bench: the man page and --help document the option tables.

The rows of bench/options.c (the job options and the command-line-only
output options, each with its alias) must each be a line of --help and an
entry of bench/uwdf-bench.1; and every option the man page gives an entry
is one of those rows (or --help, --version), so neither the page nor the
tables can drift from the other.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPTIONS_C = os.path.join(TOP, "bench", "options.c")
MANPAGE = os.path.join(TOP, "bench", "uwdf-bench.1")
ALWAYS = {"help", "version"}


def table_rows():
    """{name: alias or None} of every row of the two option tables."""
    with open(OPTIONS_C) as f:
        text = f.read()
    rows = {}
    for m in re.finditer(r'\{\s*\.name = "([^"]+)"(?:,\s*\.alias = "([^"]+)")?', text):
        rows[m.group(1)] = m.group(2)
    # The tables have 31 job options and 4 output options: a parse that
    # finds far fewer is a broken parse, not a passing test.
    check(len(rows) >= 35, f"only {len(rows)} option rows found in {OPTIONS_C}")
    return rows


def help_rows():
    """{name: alias or None} of the option lines --help prints."""
    rc, out, err = bl.run(["--help"])
    check(rc == 0, f"--help: exit {rc}: {err}")
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  --([\w+-]+)(=\S+)? +\S.*?(?:; alias ([\w+-]+))?$", line)
        if m:
            rows[m.group(1)] = m.group(3)
    return rows


def manpage_entries():
    """The options with an entry (a .TP tag) in the OPTIONS sections."""
    with open(MANPAGE) as f:
        lines = f.read().splitlines()
    entries = set()
    section = None
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            section = line[4:].strip().strip('"')
        if section in ("JOB OPTIONS", "OUTPUT OPTIONS") and line == ".TP" and i + 1 < len(lines):
            entries.update(re.findall(r"\\-\\-([\w+\\-]+?)(?==|\\f|\s|\"|$)", lines[i + 1]))
    return {e.replace("\\-", "-") for e in entries}


def every_table_row_is_in_help():
    rows, shown = table_rows(), help_rows()
    for name, alias in rows.items():
        check(name in shown, f"--{name} is a table row but not a line of --help")
        check(shown[name] == alias, f"--{name}: --help gives alias {shown[name]}, the table {alias}")
    extra = set(shown) - set(rows)
    check(not extra, f"--help has lines for options that are not rows: {sorted(extra)}")


def every_table_row_has_a_manpage_entry():
    entries = manpage_entries()
    for name, alias in table_rows().items():
        check(name in entries, f"--{name} has no entry in {MANPAGE}")
        if alias:
            check(alias in entries, f"--{alias} (alias of --{name}) is not in the entry of {MANPAGE}")


def every_manpage_entry_is_a_table_row():
    rows = table_rows()
    known = set(rows) | {a for a in rows.values() if a} | ALWAYS
    unknown = manpage_entries() - known
    check(not unknown, f"{MANPAGE} documents options that are not rows: {sorted(unknown)}")
    check(ALWAYS <= manpage_entries(), f"{MANPAGE} has no entry for --help or --version")


if __name__ == "__main__":
    bl.main([
        ("every_table_row_is_in_help", every_table_row_is_in_help),
        ("every_table_row_has_a_manpage_entry", every_table_row_has_a_manpage_entry),
        ("every_manpage_entry_is_a_table_row", every_manpage_entry_is_a_table_row),
    ])
