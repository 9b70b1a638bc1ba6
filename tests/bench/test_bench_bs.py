#!/usr/bin/env python3
"""uwdf-bench: fio's block size options.

bs=r,w[,t] (separate read, write and trim sizes), bsrange=min-max and
bssplit=size/pct:... run through uwdf-bench and fio on the same job: the
header line, the I/O counts and bytes where the workload fixes them, the
sizes and offsets of every I/O (per-I/O IOPS log with log_offset) where it
does not, and the weights of the size mix statistically.
"""

import collections
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

LINE = re.compile(r"^(\d+), (\d+), ([012]), (\d+), (\d+), 0$")
MIB = 1 << 20


def read_log(path):
    rows = []
    with open(path) as f:
        for ln in f:
            m = LINE.match(ln.rstrip("\n"))
            check(m, f"{os.path.basename(path)}: not fio's per-I/O line: {ln!r}")
            rows.append(tuple(int(g) for g in m.groups()))
    return rows


def both(d, args, name="b"):
    """Runs args (null engine, 1 MiB region, per-I/O IOPS log) in uwdf-bench
    and fio: [(report job, log rows)] for each."""
    common = ["--ioengine=null", "--size=1m", f"--write_iops_log={name}", "--log_offset=1"] + args
    out = []
    rep = bl.run_json([f"--name={name}", f"--filename={d}/data"] + common, cwd=d)
    out.append((rep["jobs"][0], read_log(os.path.join(d, f"{name}_iops.1.log"))))
    fd = os.path.join(d, "fio")
    os.makedirs(fd, exist_ok=True)
    p = subprocess.run(["fio", "--output-format=json", f"--name={name}"] + common, cwd=fd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio {args}: exit {p.returncode}: {p.stderr.strip()}")
    out.append((json.loads(p.stdout)["jobs"][0], read_log(os.path.join(fd, f"{name}_iops.1.log"))))
    return out


def totals(job):
    return [(job[dd]["total_ios"], job[dd]["io_bytes"]) for dd in ("read", "write")]


def header_lines_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        for args in (["--rw=write", "--bs=4k,64k"], ["--rw=read", "--bsrange=512-1000k"],
                     ["--rw=rw", "--bssplit=1536/50:4k/50,3000"], ["--rw=randrw", "--bs=,8k,"],
                     ["--rw=trim", "--bs=8k,16k,"]):
            full = ["--name=h", "--ioengine=null", "--size=1m", "--number_ios=1"] + args
            rc, out, err = bl.run(full + [f"--filename={d}/data"], cwd=d)
            check(rc == 0, f"{args}: exit {rc}: {err.strip()}")
            p = subprocess.run(["fio"] + full, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            mine = re.search(r"bs=\(R\).*?, ioengine", out)
            theirs = re.search(r"bs=\(R\).*?, ioengine", p.stdout)
            check(mine and theirs and mine.group(0) == theirs.group(0),
                  f"{args}: header {mine and mine.group(0)!r}, fio {theirs and theirs.group(0)!r}")


def per_direction_sizes_count_as_fio():
    """bs=4k,64k: 4 KiB reads, 64 KiB writes; a job of one direction does
    its region once in that direction's size."""
    bl.tool("fio")
    with bl.TempDir() as d:
        for args, want in ((["--rw=write", "--bs=4k,64k"], [(0, 0), (16, MIB)]),
                           (["--rw=read", "--bs=4k,64k"], [(256, MIB), (0, 0)]),
                           (["--rw=write", "--bs=,32k"], [(0, 0), (32, MIB)]),
                           (["--rw=read", "--bs=8k,"], [(128, MIB), (0, 0)]),
                           # (fio's random map counts the unused directions' sizes too: randread with
                           # bs=8k, stops early there, so random jobs compare with one size for all)
                           (["--rw=randread", "--bs=8k,8k,8k"], [(128, MIB), (0, 0)])):
            for who, (job, rows) in zip(("uwdf-bench", "fio"), both(d, args)):
                check(totals(job) == want, f"{who} {args}: (I/Os, bytes) {totals(job)}, expected {want}")
                size = want[1][1] and MIB // want[1][0] or MIB // want[0][0]
                check(sorted(r[4] for r in rows) == list(range(0, MIB, size)),
                      f"{who} {args}: offsets are not each {size}-byte block once")
        # both directions: each I/O has its direction's size
        for who, (job, rows) in zip(("uwdf-bench", "fio"), both(d, ["--rw=randrw", "--bs=4k,64k", "--norandommap"])):
            sizes = {(r[2], r[3]) for r in rows}
            check(sizes <= {(0, 4096), (1, 65536)} and len(sizes) == 2, f"{who}: (direction, size) {sorted(sizes)}")
            # random offsets are multiples of the direction's size (fio's blockalign default)
            check(all(r[4] % r[3] == 0 for r in rows), f"{who}: unaligned {[(r[4], r[3]) for r in rows if r[4] % r[3]]}")


def mixed_sizes_cover_the_region_once_as_fio():
    """bsrange and bssplit without time_based: the bytes of the region
    (1 MiB) in sizes from the option, sequential I/Os back to back, random
    ones never overlapping (fio's random map)."""
    bl.tool("fio")
    with bl.TempDir() as d:
        for args, allowed in ((["--rw=write", "--bsrange=4k-64k"], set(range(4096, 65537, 4096))),
                              (["--rw=randwrite", "--bsrange=4k-64k"], set(range(4096, 65537, 4096))),
                              (["--rw=write", "--bssplit=4k/50:64k/50"], {4096, 65536}),
                              (["--rw=randread", "--bssplit=8k/30:16k/70"], {8192, 16384})):
            seq = args[0] == "--rw=write"
            for who, (job, rows) in zip(("uwdf-bench", "fio"), both(d, args)):
                n, b = totals(job)[0 if "read" in args[0] else 1]
                check(b == MIB and n == len(rows), f"{who} {args}: {n} I/Os of {b} bytes, {len(rows)} logged")
                # the region's last I/O may be cut to what is left: a multiple of the smallest size
                small = min(allowed)
                check(all(r[3] in allowed or r[3] % small == 0 for r in rows),
                      f"{who} {args}: sizes {sorted({r[3] for r in rows})}")
                spans = sorted((r[4], r[4] + r[3]) for r in rows)
                check(spans[0][0] == 0 and spans[-1][1] == MIB and all(a[1] == b2[0] for a, b2 in zip(spans, spans[1:])),
                      f"{who} {args}: the I/Os do not tile the region: {spans[:8]}...")
                if seq:
                    check([r[4] for r in rows] == [s[0] for s in spans], f"{who} {args}: not in order")


def size_weights_as_fio():
    """bssplit's weights and bsrange's sizes: the shares of I/Os by size
    over many I/Os agree with fio's (binomial noise of 6000 I/Os < 0.02)."""
    bl.tool("fio")
    with bl.TempDir() as d:
        for args in (["--bssplit=4k/10:64k/50:32k/40"], ["--bssplit=4k/50:1k/:32k/"], ["--bsrange=4k-32k"]):
            job = ["--rw=randread", "--norandommap"] + args
            rc, _, err = bl.run(["--name=w", f"--filename={d}/data", "--ioengine=null", "--size=1m",
                                 "--write_iops_log=w", "--log_offset=1", "--time_based", "--runtime=60",
                                 "--number_ios=6000", "--output=/dev/null"] + job, cwd=d)
            check(rc == 0, f"{job}: exit {rc}: {err.strip()}")
            rows = read_log(os.path.join(d, "w_iops.1.log"))
            # fio stops after io_size bytes (number_ios does not stop a time_based fio): at least as many I/Os
            fd = os.path.join(d, "fio")
            os.makedirs(fd, exist_ok=True)
            p = subprocess.run(["fio", "--output=/dev/null", "--name=w", "--ioengine=null", "--size=1m",
                                "--write_iops_log=w", "--log_offset=1", "--io_size=200m"] + job, cwd=fd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
            check(p.returncode == 0, f"fio {job}: {p.stderr.strip()}")
            theirs = read_log(os.path.join(fd, "w_iops.1.log"))
            check(len(rows) == 6000, f"{args}: {len(rows)} I/Os logged")
            a = collections.Counter(r[3] for r in rows)
            b = collections.Counter(r[3] for r in theirs)
            for size in sorted(set(a) | set(b)):
                x, y = a[size] / len(rows), b[size] / len(theirs)
                check(abs(x - y) <= 0.02, f"{args}: {size}-byte I/Os are {x:.3f} of uwdf-bench's, {y:.3f} of fio's "
                                          f"({sorted(a.items())} vs {sorted(b.items())})")


if __name__ == "__main__":
    bl.main([
        ("header_lines_as_fio", header_lines_as_fio),
        ("per_direction_sizes_count_as_fio", per_direction_sizes_count_as_fio),
        ("mixed_sizes_cover_the_region_once_as_fio", mixed_sizes_cover_the_region_once_as_fio),
        ("size_weights_as_fio", size_weights_as_fio),
    ])
