#!/usr/bin/env python3
"""uwdf-bench: fio's rate_iops, rate and rate_process.

A rated job does the given I/Os (or bytes) per second, per direction, as
fio does on the same job: the IOPS of both are compared with the target
(and per direction with fio's); with iodepth > 1 on both local engines the
I/Os completed on the library's threads wait for their turn on the job
thread. rate_process=poisson spaces the I/Os irregularly with the same mean.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

RUN = ["--size=4m", "--time_based", "--runtime=1500ms", "--direct=0"]


def iops_of(job):
    return [job[d]["iops"] for d in ("read", "write")]


def fio_job(args, d):
    p = subprocess.run(["fio", "--output-format=json", "--name=r", f"--filename={d}/data", "--ioengine=libaio"]
                       + RUN + args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio {args}: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)["jobs"][0]


def rate_iops_holds_the_rate_as_fio():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 4 << 20)
        for engine in ("io_uring", "libaio", "null"):
            for extra in (["--iodepth=8"], ["--iodepth=1"], ["--api=sync"]):
                args = ["--rw=randread", "--rate_iops=200"] + extra
                rep = bl.run_json(["--name=r", f"--filename={d}/data", f"--ioengine={engine}"] + RUN + args, cwd=d)
                r, _ = iops_of(rep["jobs"][0])
                # never above the rate; below it only as far as the machine is slow: a loaded
                # one (make -j2 check beside other builds) stretches a local engine's
                # completions to tens of ms, not the null engine's
                low = 0.85 if engine == "null" else 0.6
                check(200 * low <= r <= 200 * 1.03, f"{engine} {args}: {r:.0f} IOPS, expected 200")
        if bl.tool("fio"):
            r, _ = iops_of(fio_job(["--rw=randread", "--rate_iops=200", "--iodepth=8"], d))
            # fio on the same loaded machine: the same bounds as a local engine
            check(200 * 0.6 <= r <= 200 * 1.03, f"fio: {r:.0f} IOPS")


def per_direction_rates_as_fio():
    """rate_iops=300,100 on randrw (rwmixread 50): reads and writes each on
    their own schedule, the mix giving way to the rates, as in fio; rate=
    the same in bytes per second."""
    bl.tool("fio")
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 4 << 20)
        for args, want in ((["--rw=randrw", "--rate_iops=300,100", "--iodepth=4"], (300, 100)),
                           (["--rw=randrw", "--rate=1m,512k", "--bs=8k", "--iodepth=4"], (128, 64))):
            rep = bl.run_json(["--name=r", f"--filename={d}/data", "--ioengine=libaio"] + RUN + args, cwd=d)
            ours, theirs = iops_of(rep["jobs"][0]), iops_of(fio_job(args, d))
            for dd, x, w in zip(("read", "write"), ours, want):
                check(w * 0.6 <= x <= w * 1.03, f"{args} {dd}: {x:.0f} IOPS, expected {w}")  # see above
            # fio (on a machine that may be loaded: the shape, not the figures): reads ahead of writes
            check(theirs[0] > 1.5 * theirs[1] and ours[0] > 1.5 * ours[1],
                  f"{args}: read/write IOPS {ours[0]:.0f}/{ours[1]:.0f}, fio {theirs[0]:.0f}/{theirs[1]:.0f}")


def ahead(d, process):
    """The I/Os of a QD1 job at 200 IOPS, and how far (ms) its I/Os ran
    ahead of and behind the evenly spaced schedule, k * 5 ms."""
    rc, _, err = bl.run(["--name=p", f"--filename={d}/data", "--ioengine=null", "--rw=randread", "--iodepth=1",
                         "--rate_iops=200", f"--rate_process={process}", "--write_iops_log=p", "--output=/dev/null"]
                        + RUN, cwd=d)
    check(rc == 0, f"rate_process={process}: exit {rc}: {err.strip()}")
    with open(os.path.join(d, "p_iops.1.log")) as f:
        times = [int(ln.split(",")[0]) for ln in f]
    return len(times), min(t - 5 * k for k, t in enumerate(times))


def rate_process_poisson_varies_the_gaps():
    """linear never runs ahead of its schedule (a loaded machine only makes
    it late); poisson's exponential gaps (the seed fixes them at QD1) run
    ahead of it at times."""
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "data"), 4 << 20)
        n, lead = ahead(d, "linear")
        check(abs(n - 300) <= 12 and lead >= -1, f"linear: {n} I/Os, {-lead} ms ahead of k * 5 ms at most")
        n, lead = ahead(d, "poisson")
        check(abs(n - 300) <= 45 and lead <= -10, f"poisson: {n} I/Os, {-lead} ms ahead of k * 5 ms at most")
        rc, _, err = bl.run(["--parse-only", "--name=x", "--rate_process=bursty"], cwd=d)
        check(rc == 1 and "rate_process" in err, f"rate_process=bursty: exit {rc}")


if __name__ == "__main__":
    bl.main([
        ("rate_iops_holds_the_rate_as_fio", rate_iops_holds_the_rate_as_fio),
        ("per_direction_rates_as_fio", per_direction_rates_as_fio),
        ("rate_process_poisson_varies_the_gaps", rate_process_poisson_varies_the_gaps),
    ])
