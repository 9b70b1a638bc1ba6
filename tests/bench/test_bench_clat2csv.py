#!/usr/bin/env python3
"""uwdf-bench's json+ report read by fio's own fio_jsonplus_clat2csv.

The tool (Debian's fio package: /usr/bin/fio_jsonplus_clat2csv) must convert
the report without error, its --validate must find the CSV equal to the
report's bins, and the CSV must hold every completion-latency sample. Skips
(77) only when the tool is not installed; FIO_JSONPLUS_CLAT2CSV names it
elsewhere.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import Skip, check  # noqa: E402


def find_tool():
    tool = os.environ.get("FIO_JSONPLUS_CLAT2CSV") or shutil.which("fio_jsonplus_clat2csv")
    if not tool and os.access("/usr/bin/fio_jsonplus_clat2csv", os.X_OK):
        tool = "/usr/bin/fio_jsonplus_clat2csv"
    if not tool:
        raise Skip("fio_jsonplus_clat2csv is not installed (Debian: apt-get install fio)")
    return tool


def run_tool(tool, args, cwd):
    # A python script: run it with this interpreter rather than its #! line.
    with open(tool, "rb") as f:
        is_python = b"python" in f.readline()
    cmd = ([sys.executable, tool] if is_python else [tool]) + args
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def convert_and_validate(tool, report_args, d, njobs):
    src = os.path.join(d, "report.json")
    rc, out, err = bl.run(report_args + ["--output-format=json+", f"--output={src}"], cwd=d)
    check(rc == 0, f"uwdf-bench exit {rc}: {err}")
    with open(src) as f:
        rep = json.load(f)
    check(len(rep["jobs"]) == njobs, f"{len(rep['jobs'])} jobs")
    dest = os.path.join(d, "clat.csv")
    rc, out, err = run_tool(tool, [src, dest], d)
    check(rc == 0, f"fio_jsonplus_clat2csv exit {rc}: {err.strip()}")
    rc, out, err = run_tool(tool, ["--validate", src, dest], d)
    check(rc == 0 and out.count("validated") == njobs,
          f"fio_jsonplus_clat2csv --validate exit {rc}: {out.strip()} {err.strip()}")
    for n, job in enumerate(rep["jobs"]):
        path = os.path.join(d, f"clat_job{n}.csv")
        check(os.path.exists(path), f"{path} not written")
        with open(path, newline="") as f:
            rows = list(csv.reader(f, skipinitialspace=True))
        head = [c.strip() for c in rows[0]]
        body = [r for r in rows[1:] if r and r[0].strip()]
        for dd in ("read", "write"):
            lat = job[dd]["clat_ns"]
            if not lat["N"]:
                continue
            col = head.index(f"{dd}_clat_ns_count")
            counts = [int(r[col]) for r in body if r[col].strip()]
            check(sum(counts) == lat["N"], f"job {n} {dd}: CSV holds {sum(counts)} of {lat['N']} samples")
            cum = [int(r[col + 1]) for r in body if r[col + 1].strip()]
            check(cum and cum[-1] == lat["N"], f"job {n} {dd}: cumulative ends at {cum[-1:]}")
        nsec = [int(r[0]) for r in body]
        check(nsec == sorted(nsec), f"job {n}: latency column not sorted")


def null_engine_two_jobs():
    tool = find_tool()
    with bl.TempDir() as d:
        convert_and_validate(tool, [f"--filename={d}/data.dat", "--size=1m", "--ioengine=null", "--number_ios=3000",
                                    "--iodepth=8", "--time_based", "--runtime=10",
                                    "--name=a", "--rw=randrw", "--name=b", "--rw=read"], d, 2)


def real_file_io_uring():
    tool = find_tool()
    with bl.TempDir() as d:
        convert_and_validate(tool, ["--name=f", f"--filename={d}/data.dat", "--size=1m", "--ioengine=io_uring",
                                    "--rw=randwrite", "--iodepth=4"], d, 1)


if __name__ == "__main__":
    bl.main([
        ("null_engine_two_jobs", null_engine_two_jobs),
        ("real_file_io_uring", real_file_io_uring),
    ])
