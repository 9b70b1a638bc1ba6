#!/usr/bin/env python3
"""The README's porting example is examples/porting/porting_example.c, and it runs.

The code block under README.md's "## Porting example" must be the file
byte for byte (so the two cannot drift); the program built from the file
(`make check` builds it with -Wall -Wextra -Werror) must read a real file
through a WDFIOTARGET and report a missing one with its NTSTATUS; and every
relative link in README.md and docs/*.md must name a file that exists
(and a heading of it, when the link has a #fragment).
Run from the build directory (Automake's test harness).
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
README = os.path.join(TOP, "README.md")
EXAMPLE = os.path.join(TOP, "examples", "porting", "porting_example.c")
PROGRAM = os.path.join(os.getcwd(), "examples", "porting", "porting_example")

failures = 0


def report(name, problem):
    global failures
    if problem:
        failures += 1
        print(f"FAIL: {name}: {problem}")
    else:
        print(f"PASS: {name}")


def readme_example():
    with open(README) as f:
        text = f.read()
    m = re.search(r"^## Porting example\n.*?^```c\n(.*?)^```$", text, re.S | re.M)
    return m.group(1) if m else None


def the_readme_shows_the_example_file():
    code = readme_example()
    if code is None:
        return "README.md has no ```c block under \"## Porting example\""
    with open(EXAMPLE) as f:
        source = f.read()
    if code == source:
        return None
    a, b = code.splitlines(), source.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1} differs:\n  README: {x}\n  file:   {y}"
    return f"README has {len(a)} lines, {EXAMPLE} has {len(b)}"


def run(*args):
    return subprocess.run([PROGRAM, *args], capture_output=True, text=True, timeout=60)


def the_example_reads_a_file():
    with tempfile.NamedTemporaryFile(dir=os.getcwd(), prefix="porting-example-") as f:
        f.write(os.urandom(16384))
        f.flush()
        r = run(f.name)
    if r.returncode != 0 or "8 reads, last status 0x00000000" not in r.stdout:
        return f"exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}"
    return None


def the_example_reports_a_missing_file():
    with tempfile.TemporaryDirectory(dir=os.getcwd(), prefix="porting-example-") as d:
        r = run(os.path.join(d, "missing"))
    # STATUS_OBJECT_NAME_NOT_FOUND
    if r.returncode != 1 or "0 reads, last status 0xc0000034" not in r.stdout:
        return f"exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}"
    return None


def anchors(path):
    """The #fragments GitHub gives the headings of a Markdown file."""
    with open(path) as f:
        text = re.sub(r"^```.*?^```$", "", f.read(), flags=re.S | re.M)
    slugs = set()
    for heading in re.findall(r"^#+ (.*)$", text, re.M):
        slugs.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return slugs


def every_relative_link_resolves():
    bad = []
    pages = [README] + sorted(glob.glob(os.path.join(TOP, "docs", "*.md")))
    for page in pages:
        with open(page) as f:
            text = f.read()
        text = re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            path = os.path.join(os.path.dirname(page), path) if path else page
            if not os.path.exists(path):
                bad.append(f"{os.path.relpath(page, TOP)} -> {target}")
            elif fragment and path.endswith(".md") and fragment not in anchors(path):
                bad.append(f"{os.path.relpath(page, TOP)} -> {target} (no such heading)")
    if len(pages) < 2:
        bad.append("no docs/*.md found")
    return "; ".join(bad) or None


for check in (the_readme_shows_the_example_file, every_relative_link_resolves):
    report(check.__name__, check())
if os.access(PROGRAM, os.X_OK):
    for check in (the_example_reads_a_file, the_example_reports_a_missing_file):
        report(check.__name__, check())
else:
    report("the_example_is_built", f"{PROGRAM} is missing (make check builds it)")
sys.exit(1 if failures else 0)
