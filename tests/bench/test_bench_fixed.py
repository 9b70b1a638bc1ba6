#!/usr/bin/env python3
"""uwdf-bench: --fixedbufs and --registerfiles as the engines counted them.

The report's counts (the uwdf object in JSON, the "uwdf fixed" line) are the
engines' own (UwdfIoTargetGetStatistics summed over the job's files), not
the options echoed: on io_uring with --fixedbufs every read and write went
down as READ_FIXED/WRITE_FIXED from the job's iodepth registered buffers,
with --registerfiles every operation on the registered file; without the
options no buffer is registered (the file gets its slot by itself after 8
operations); on libaio nothing is registered, whatever the options.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

IOS = 2000
DEPTH = 8
KEYS = ("operations", "fixed_buffer_operations", "fixed_file_operations", "registered_buffers",
        "registered_files")


def counts(d, engine, rw, extra):
    rep = bl.run_json([f"--name=f", f"--filename={d}/data", f"--ioengine={engine}", f"--rw={rw}", "--bs=4k",
                       "--direct=1", f"--iodepth={DEPTH}", f"--number_ios={IOS}", "--size=8m"] + extra, cwd=d)
    u = rep["jobs"][0]["uwdf"]
    return {k: u[k] for k in KEYS}


def fixed_ops_on_io_uring():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        for rw in ("randread", "randwrite"):
            c = counts(d, "io_uring", rw, [])
            check(c["operations"] == IOS and c["fixed_buffer_operations"] == 0 and c["registered_buffers"] == 0,
                  f"{rw}, no options: {c}")
            # the file's slot comes by itself after its 8th operation
            check(c["registered_files"] == 1 and IOS - 8 <= c["fixed_file_operations"] < IOS,
                  f"{rw}, no options: {c}")
            c = counts(d, "io_uring", rw, ["--fixedbufs"])
            check(c["operations"] == IOS and c["fixed_buffer_operations"] == IOS and
                  c["registered_buffers"] == DEPTH, f"{rw} --fixedbufs: {c}")
            c = counts(d, "io_uring", rw, ["--fixedbufs", "--registerfiles"])
            check(c == {"operations": IOS, "fixed_buffer_operations": IOS, "fixed_file_operations": IOS,
                        "registered_buffers": DEPTH, "registered_files": 1}, f"{rw} --fixedbufs --registerfiles: {c}")


def nothing_registered_on_libaio():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        c = counts(d, "libaio", "randread", ["--fixedbufs", "--registerfiles"])
        check(c == {"operations": IOS, "fixed_buffer_operations": 0, "fixed_file_operations": 0,
                    "registered_buffers": 0, "registered_files": 0}, f"libaio: {c}")


def normal_report_line():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        job = [f"--name=f", f"--filename={d}/data", "--ioengine=io_uring", "--rw=randread", "--bs=4k", "--direct=1",
               f"--iodepth={DEPTH}", f"--number_ios={IOS}", "--size=8m"]
        rc, out, err = bl.run(job + ["--fixedbufs", "--registerfiles"], cwd=d)
        check(rc == 0, f"uwdf-bench: exit {rc}: {err.strip()}")
        want = (f"  uwdf fixed   : operations={IOS}, fixed buffer={IOS}, fixed file={IOS}, "
                f"registered buffers={DEPTH}, registered files=1")
        check(want in out.splitlines(), f"no line '{want}' in:\n{out}")
        rc, out, err = bl.run(job, cwd=d)
        check(rc == 0 and not re.search(r"^\s+uwdf fixed\s+:", out, re.M), f"the line without the options:\n{out}")


if __name__ == "__main__":
    bl.main([
        ("fixed_ops_on_io_uring", fixed_ops_on_io_uring),
        ("nothing_registered_on_libaio", nothing_registered_on_libaio),
        ("normal_report_line", normal_report_line),
    ])
