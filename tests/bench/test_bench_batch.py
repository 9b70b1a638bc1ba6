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

The engines' submit policy (--engine_submit_batch, UwdfSetEngineSubmitBatch)
counted in the system calls themselves, under strace: with 1 every
io_uring_enter / io_submit carries at most one I/O and there is one per
I/O; with 4 none carries more than 4; without it the engine hands several
over in one call.
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


# Many files on the shared engines, as the policy is for (docs/engines.md).
POLICY_JOB = ["--name=p", "--nrfiles=16", "--size=16m", "--bs=4k", "--rw=randread", "--direct=1",
              "--iodepth=8", "--number_ios=2000"]
SUBMIT_CALLS = re.compile(r"\bio_uring_enter\(\d+, (\d+),|\bio_submit\(0x[0-9a-f]+, (\d+),")


def submit_sizes(engine, extra, d):
    """The I/Os each io_uring_enter / io_submit of a run handed to the kernel
    (the calls that handed none left out)."""
    tr = os.path.join(d, "trace")
    rc, _, err = bl.run(POLICY_JOB + [f"--ioengine={engine}"] + extra, cwd=d,
                        wrapper=["strace", "-f", "-qq", "-o", tr, "-e", "trace=io_uring_enter,io_submit"])
    check(rc == 0, f"{engine} {extra}: exit {rc}: {err.strip()}")
    with open(tr) as f:
        sizes = [int(a or b) for a, b in SUBMIT_CALLS.findall(f.read())]
    return [n for n in sizes if n]


def engine_submit_batch_sets_the_ios_per_system_call():
    if not bl.strace_usable():
        raise bl.Skip("strace is not usable here (or the runs are wrapped)")
    ios = int(POLICY_JOB[-1].split("=")[1])
    with bl.TempDir() as d:
        for engine in ENGINES:
            one = submit_sizes(engine, ["--engine_submit_batch=1"], d)
            check(max(one) == 1, f"{engine} engine_submit_batch=1: a call handed over {max(one)} I/Os")
            check(len(one) >= ios, f"{engine} engine_submit_batch=1: {len(one)} calls for {ios} I/Os")
            four = submit_sizes(engine, ["--engine_submit_batch=4"], d)
            check(max(four) <= 4, f"{engine} engine_submit_batch=4: a call handed over {max(four)} I/Os")
            dflt = submit_sizes(engine, [], d)
            check(max(dflt) > 1, f"{engine} without the option: never more than one I/O per call "
                  f"({len(dflt)} calls)")


def engine_submit_batch_values():
    with bl.TempDir() as d:
        for opt, ok in (("--engine_submit_batch=0", True), ("--engine_submit_batch=65536", True),
                        ("--engine_submit_batch=65537", False), ("--engine_submit_batch=x", False)):
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", opt], cwd=d)
            check((rc == 0) == ok, f"{opt}: exit {rc}: {err.strip()}")
        # One policy per run: jobs that give it must agree.
        jobs = ["--ioengine=null", "--size=1m", "--number_ios=10", f"--filename={d}/f"]
        rc, _, err = bl.run(["--name=a", "--engine_submit_batch=1"] + jobs + ["--name=b", "--engine_submit_batch=2"] +
                            jobs, cwd=d)
        check(rc == 1 and "engine_submit_batch" in err, f"disagreeing jobs: exit {rc}: {err.strip()}")
        rc, _, err = bl.run(["--name=a", "--engine_submit_batch=2"] + jobs + ["--name=b"] + jobs, cwd=d)
        check(rc == 0, f"one job giving it: exit {rc}: {err.strip()}")


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
        ("engine_submit_batch_sets_the_ios_per_system_call", engine_submit_batch_sets_the_ios_per_system_call),
        ("engine_submit_batch_values", engine_submit_batch_values),
    ])
