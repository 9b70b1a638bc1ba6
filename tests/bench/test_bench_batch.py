#!/usr/bin/env python3
"""uwdf-bench: fio's iodepth_batch_submit (iodepth_batch),
iodepth_batch_complete_min (iodepth_batch_complete) and
iodepth_batch_complete_max.

fio and uwdf-bench run the same job file (O_DIRECT random reads, QD32) on
both engines; the reports have the same submit and complete histograms
(iodepth_submit / iodepth_complete in JSON, the submit and complete lines
in the normal report), and where the batching makes them deterministic the
same values: with submit 8 and complete 8..8 every submission and every
completion round holds 5-8 I/Os (fio's "8" bucket), with submit 4 and
complete 16..16 every submission 1-4 and every round 9-16. The counts are
the engine's (UwdfIoTargetGetBatchStatistics), not the options echoed.
Without the options uwdf-bench leaves the histograms out (nothing counts
them then).
"""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

ENGINES = ("io_uring", "libaio")
KEYS = ["0", "4", "8", "16", "32", "64", ">=64"]
# (options, the bucket every submission falls in, the bucket every completion round falls in)
CASES = [
    ("iodepth_batch_submit=8\niodepth_batch_complete_min=8\niodepth_batch_complete_max=8\n", "8", "8"),
    ("iodepth_batch=4\niodepth_batch_complete=16\niodepth_batch_complete_max=16\n", "4", "16"),
]


def job_file(d, engine, batch):
    return bl.write_file(os.path.join(d, f"{engine}.fio"),
                         "[global]\n"
                         f"ioengine={engine}\ndirect=1\nrw=randread\nbs=4k\niodepth=32\nsize=8m\n"
                         f"filename={d}/data\n"
                         "[b]\n" + batch)


def fio_json(job, d):
    p = subprocess.run(["fio", "--output-format=json", job], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio {job}: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def hist(rep, name):
    h = rep["jobs"][0].get(name)
    check(h is not None, f"{name} missing")
    check(list(h) == KEYS, f"{name} keys {list(h)}, want fio's {KEYS}")
    return h


def same_histograms_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        for engine in ENGINES:
            for batch, sub_bucket, comp_bucket in CASES:
                job = job_file(d, engine, batch)
                fio = fio_json(job, d)
                uwdf = bl.run_json([job], cwd=d)
                what = f"{engine}, {batch.strip().replace(chr(10), ' ')}"
                for name, bucket in (("iodepth_submit", sub_bucket), ("iodepth_complete", comp_bucket)):
                    fh, uh = hist(fio, name), hist(uwdf, name)
                    # fio's last rounds drain whatever is left: a bucket or two of 0.1%
                    check(fh[bucket] >= 95.0, f"{what}: fio's {name} {fh} (the job is not deterministic here)")
                    check(uh[bucket] >= 95.0, f"{what}: uwdf {name} {uh}, fio {fh}")
                    check(abs(uh[bucket] - fh[bucket]) <= 5.0, f"{what}: uwdf {name} {uh}, fio {fh}")


def normal_report_lines_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        job = job_file(d, "io_uring", CASES[0][0])
        p = subprocess.run(["fio", job], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        check(p.returncode == 0, f"fio: {p.stderr.strip()}")
        rc, out, err = bl.run([job], cwd=d)
        check(rc == 0, f"uwdf-bench: exit {rc}: {err.strip()}")
        for label in ("submit", "complete"):
            pat = re.compile(r"^ {5}" + label + r" +: 0=[\d.]+%, 4=[\d.]+%, 8=([\d.]+)%, 16=[\d.]+%, 32=[\d.]+%, "
                             r"64=[\d.]+%, >=64=[\d.]+%$", re.M)
            f, u = pat.search(p.stdout), pat.search(out)
            check(f is not None, f"fio's {label} line not as expected:\n{p.stdout}")
            check(u is not None, f"uwdf-bench's {label} line not as fio's:\n{out}")
            check(float(u.group(1)) >= 95.0, f"uwdf-bench's {label} line: {u.group(0)}")
        # the line order of fio's report: IO depths, submit, complete, issued rwts
        order = [ln.split(":")[0].strip() for ln in out.splitlines()
                 if re.match(r"^\s+(IO depths|submit|complete|issued rwts)\s*:", ln)]
        check(order == ["IO depths", "submit", "complete", "issued rwts"], f"uwdf-bench's order {order}")


def left_out_without_the_options():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 8 << 20)
        job = job_file(d, "io_uring", "")
        uwdf = bl.run_json([job], cwd=d)
        check("iodepth_submit" not in uwdf["jobs"][0] and "iodepth_complete" not in uwdf["jobs"][0],
              "histograms reported although nothing counted them")
        rc, out, err = bl.run([job], cwd=d)
        check(rc == 0 and not re.search(r"^\s+submit\s+:", out, re.M), f"a submit line without batching:\n{out}")


def values_as_fio():
    with bl.TempDir() as d:
        for opt, ok in (("--iodepth_batch_submit=0", True), ("--iodepth_batch_complete_min=0", True),
                        ("--iodepth_batch_complete_max=64", True), ("--iodepth_batch=x", False),
                        ("--iodepth_batch_complete=-1", False)):
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", opt], cwd=d)
            check((rc == 0) == ok, f"{opt}: exit {rc}: {err.strip()}")


if __name__ == "__main__":
    bl.main([
        ("same_histograms_as_fio", same_histograms_as_fio),
        ("normal_report_lines_as_fio", normal_report_lines_as_fio),
        ("left_out_without_the_options", left_out_without_the_options),
        ("values_as_fio", values_as_fio),
    ])
