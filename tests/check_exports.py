#!/usr/bin/env python3
"""libuwdf.so exports exactly what its public headers declare.

Compares `nm -D --defined-only` of the library with the public headers:
every exported name must be declared in a public header (an internal name
leaking fails), and every function or variable a public header declares
(static inline functions aside) must be exported (a public name hidden
fails). Then every header is compiled as C++ (-Wall -Wextra -Werror), and a
C++ program that takes the address of every declared name is linked against
the library: a declaration outside extern "C" leaves a mangled name
unresolved and fails the link.

    check_exports.py [--so LIB] [--include DIR]...

Defaults, for `make check` (run from the build directory): .libs/libuwdf.so
and the source and build trees' include/. `make installcheck` passes the
installed library and header directory. CC and CXX name the compilers (gcc
and g++ unless set). Exit 0 when the two sides agree, 1 otherwise.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# initguid.h turns the GUID declarations that follow into definitions.
SKIP_HEADERS = {"initguid.h"}


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kw)
    if r.returncode != 0:
        sys.stderr.write("check_exports: %s failed:\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
        sys.exit(1)
    return r.stdout


def exported(so):
    names = set()
    for line in run(["nm", "-D", "--defined-only", so]).splitlines():
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[2].split("@")[0])
    return names


def headers(dirs):
    found = {}
    for d in dirs:
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f.endswith(".h") and f not in SKIP_HEADERS and f not in found:
                    found[f] = os.path.join(d, f)
    return found


def in_dirs(path, dirs):
    return os.path.dirname(os.path.realpath(path)) in dirs


def declared_functions(cc, incflags, tu, tmp, dirs, inline=None):
    """Functions declared (not defined) in the headers: GCC's -aux-info.
    The static inline functions the headers define go to `inline` if given."""
    aux = os.path.join(tmp, "aux.txt")
    run(cc + ["-std=gnu11"] + incflags + ["-aux-info", aux, "-c", tu, "-o", os.path.join(tmp, "tu.o")])
    names = set()
    pat = re.compile(r"^/\* (.*):(\d+):([NO])([CF]) \*/ (.*)$")
    for line in open(aux):
        m = pat.match(line)
        if not m or not in_dirs(m.group(1), dirs):
            continue
        decl = m.group(5)
        if m.group(4) == "F" or re.search(r"\b(static|inline)\b", decl):
            n = re.search(r"([A-Za-z_]\w*) \(", decl)
            if inline is not None and n and m.group(4) == "F":
                inline.add(n.group(1))
            continue
        n = re.search(r"([A-Za-z_]\w*) \(", decl)
        if not n or n.group(1) in ("void", "int", "char", "long", "short", "unsigned", "signed", "const"):
            sys.stderr.write("check_exports: cannot read the declaration: %s" % line)
            sys.exit(1)
        names.add(n.group(1))
    return names


def declared_variables(cc, incflags, tu, dirs):
    """extern variables declared in the headers, from the preprocessed text
    (statements of the headers' own lines, split at ';')."""
    out = run(cc + ["-std=gnu11"] + incflags + ["-E", tu])
    names = set()
    chunks, cur, ours = [], [], False
    marker = re.compile(r'^# \d+ "(.*)"')
    for line in out.splitlines():
        m = marker.match(line)
        if m:
            if cur:
                chunks.append(" ".join(cur))
                cur = []
            ours = in_dirs(m.group(1), dirs)
            continue
        if ours and not line.startswith("#"):
            cur.append(line)
    if cur:
        chunks.append(" ".join(cur))
    var = re.compile(r"^extern\s+[\w\s\*]*?\b([A-Za-z_]\w*)\s*(\[[^\]]*\])?$")
    for chunk in chunks:
        chunk = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", chunk)
        for stmt in chunk.split(";"):
            stmt = " ".join(stmt.split())
            m = var.match(stmt)
            if m and "(" not in stmt:
                names.add(m.group(1))
    return names


def compile_as_cxx(cxx, incflags, tmp, hdrs):
    """Every header, as C++, with a driver project's warnings as errors."""
    src = os.path.join(tmp, "headers.cc")
    with open(src, "w") as f:
        for h in sorted(hdrs):
            f.write("#include <%s>\n" % h)
    r = subprocess.run(cxx + ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"] + incflags + [src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if r.returncode != 0:
        sys.stderr.write("check_exports: the headers do not compile as C++:\n%s" % r.stdout[-4000:])
        return False
    return True


def link_from_cxx(cxx, incflags, tmp, hdrs, names, so):
    src = os.path.join(tmp, "refs.cc")
    with open(src, "w") as f:
        for h in sorted(hdrs):
            f.write("#include <%s>\n" % h)
        f.write("static const void *const refs[] = {\n")
        for n in sorted(names):
            f.write("    reinterpret_cast<const void *>(&%s),\n" % n)
        f.write("};\nint main() { return refs[0] == nullptr; }\n")
    r = subprocess.run(cxx + ["-std=c++17", "-w"] + incflags + ["-o", os.path.join(tmp, "refs"), src, so],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if r.returncode != 0:
        sys.stderr.write("check_exports: a C++ program using every declared name does not link "
                         "(a declaration outside extern \"C\"?):\n%s" % r.stdout[-4000:])
        return False
    return True


def header_setup(incdirs, so):
    """The include directories (real paths), their -I flags, CC and the
    public headers; exits when there are no headers or no library."""
    dirs = {os.path.realpath(d) for d in incdirs if os.path.isdir(d)}
    incflags = ["-I" + d for d in sorted(dirs)]
    cc = shlex.split(os.environ.get("CC") or "gcc")
    hdrs = headers(sorted(dirs))
    if not hdrs or not os.path.exists(so):
        sys.stderr.write("%s: no headers in %s or no %s\n" % (os.path.basename(sys.argv[0]), incdirs, so))
        sys.exit(1)
    return dirs, incflags, cc, hdrs


def write_tu(tmp, hdrs):
    """A C file that includes every public header."""
    tu = os.path.join(tmp, "tu.c")
    with open(tu, "w") as f:
        for h in sorted(hdrs):
            f.write("#include <%s>\n" % h)
    return tu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--so", default=os.path.join(".libs", "libuwdf.so"))
    ap.add_argument("--include", action="append")
    a = ap.parse_args()
    incdirs = a.include or [os.path.join(HERE, "..", "include"), "include"]
    dirs, incflags, cc, hdrs = header_setup(incdirs, a.so)
    cxx = shlex.split(os.environ.get("CXX") or "g++")
    with tempfile.TemporaryDirectory(prefix="uwdf-check-exports-") as tmp:
        tu = write_tu(tmp, hdrs)
        funcs = declared_functions(cc, incflags, tu, tmp, dirs)
        variables = declared_variables(cc, incflags, tu, dirs)
        declared = funcs | variables
        have = exported(a.so)
        leaked = sorted(have - declared)
        hidden = sorted(declared - have)
        ok = True
        if leaked:
            ok = False
            print("exported but declared in no public header (%d):" % len(leaked))
            for n in leaked:
                print("  " + n)
        if hidden:
            ok = False
            print("declared in a public header but not exported (%d):" % len(hidden))
            for n in hidden:
                print("  " + n)
        if not compile_as_cxx(cxx, incflags, tmp, hdrs):
            ok = False
        if not link_from_cxx(cxx, incflags, tmp, hdrs, declared & have, a.so):
            ok = False
        print("%s: %d exported; %d functions and %d variables declared in %d headers; %s" %
              (a.so, len(have), len(funcs), len(variables), len(hdrs), "agree" if ok else "DISAGREE"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
