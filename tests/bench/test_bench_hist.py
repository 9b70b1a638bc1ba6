#!/usr/bin/env python3
"""uwdf-bench: fio's clat histogram log (write_hist_log, log_hist_msec,
log_hist_coarseness).

The same job file run through fio and uwdf-bench gives the same file names
and lines of the same shape ("time, direction, block size" and fio's 1856
buckets, summed by 2^coarseness); the windows add up to (nearly all of) the
report's I/Os; fio's own fiologparser_hist.py reads our log and finds the
percentiles of our report, within a bucket.
"""

import glob
import gzip
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

FIO_PLAT_NR = 1856  # fio 3.x: FIO_IO_U_PLAT_GROUP_NR 29 << FIO_IO_U_PLAT_BITS 6

JOB_FILE = """[global]
ioengine=null
size=1m
filename=data.dat
time_based
runtime=1100ms
log_hist_msec=200

[a]
rw=randrw
bs=4k
write_hist_log=a

[b]
rw=read
bs=8k
write_hist_log
log_hist_coarseness=2
"""


# what the report lists, so that the percentiles a log missing up to a
# fifth of the I/Os can hold are bracketed for p50, p90 and p99 (fio takes 20)
REPORT_PCTS = (40, 45, 50, 55, 60, 72, 76, 80, 84, 86, 88, 90, 91, 92, 96, 98, 99, 99.2, 99.5, 100)


def read_hist(path, nbins):
    rows = []
    with open(path) as f:
        for ln in f:
            cols = ln.rstrip("\n").split(", ")
            check(len(cols) == 3 + nbins, f"{os.path.basename(path)}: {len(cols)} columns, expected {3 + nbins}")
            check(all(c.isdigit() for c in cols), f"{os.path.basename(path)}: not fio's numbers: {ln[:80]!r}")
            rows.append([int(c) for c in cols])
    return rows


def hist_log_has_fios_names_shape_and_counts():
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), JOB_FILE)
        rep = bl.run_json([jf], cwd=d)
        ours = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "*.log")))
        check(ours == ["a_clat_hist.1.log", "b_clat_hist.2.log"], f"log files {ours}")
        for name, job, nbins, bs, dirs in (("a_clat_hist.1.log", 0, FIO_PLAT_NR, 4096, {0: "read", 1: "write"}),
                                           ("b_clat_hist.2.log", 1, FIO_PLAT_NR // 4, 8192, {0: "read"})):
            rows = read_hist(os.path.join(d, name), nbins)
            check({r[1] for r in rows} == set(dirs), f"{name}: directions {sorted({r[1] for r in rows})}")
            check({r[2] for r in rows} == {bs}, f"{name}: block sizes {sorted({r[2] for r in rows})}")
            j = rep["jobs"][job]
            for dd, dname in dirs.items():
                times = [r[0] for r in rows if r[1] == dd]
                # windows of 200 ms; like fio, none for the partial last one
                # none closed early; a loaded machine may delay the monitor (and merge two)
                check(3 <= len(times) <= max(5, j["job_runtime"] // 200) and all(200 * (k + 1) <= t for k, t in enumerate(times))
                      and times == sorted(set(times)) and times[-1] <= j["job_runtime"] + 200,
                      f"{name} {dname}: windows at {times} in {j['job_runtime']} ms")
                logged = sum(sum(r[3:]) for r in rows if r[1] == dd)
                ios = j[dname]["total_ios"]
                check(0.6 * ios <= logged <= ios, f"{name} {dname}: the windows hold {logged} I/Os of {ios}")
        if bl.tool("fio"):
            fd, theirs = bl.fio_log_names(jf, d)
            check(theirs == ours, f"fio writes {theirs}, uwdf-bench {ours}")
            for name, nbins in (("a_clat_hist.1.log", FIO_PLAT_NR), ("b_clat_hist.2.log", FIO_PLAT_NR // 4)):
                f_rows = read_hist(os.path.join(fd, name), nbins)  # fio's lines have the same shape
                u_rows = read_hist(os.path.join(d, name), nbins)
                check({(r[1], r[2]) for r in f_rows} == {(r[1], r[2]) for r in u_rows},
                      f"{name}: (direction, bs) {sorted({(r[1], r[2]) for r in f_rows})} in fio's, "
                      f"{sorted({(r[1], r[2]) for r in u_rows})} in ours")


def fiologparser_hist():
    """fio's parser, from the fio package's documentation, run by Debian's
    python3 (it needs pandas)."""
    src = "/usr/share/doc/fio/fiologparser_hist.py.gz"
    if not os.path.exists(src):
        bl.tool("fiologparser_hist.py")  # skips (fails in CI) with the package to install
    py = "/usr/bin/python3"
    if subprocess.run([py, "-c", "import pandas, numpy"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode:
        bl.tool("fiologparser_hist.py-needs-pandas", "python3-pandas")
    return py, src


def fiologparser_hist_finds_the_reports_percentiles():
    py, src = fiologparser_hist()
    with bl.TempDir() as d:
        with gzip.open(src) as f, open(os.path.join(d, "fph.py"), "wb") as out:
            shutil.copyfileobj(f, out)
        bl.make_data_file(os.path.join(d, "data"), 1 << 20)
        # buffered reads of a cached file, clat from the send (the kernel
        # copies inside the submitting call, after which the hand-over clat
        # is a few hundred ns at most): microseconds, so fio's buckets of
        # several nanoseconds (above 128 ns) are the ones used
        rep = bl.run_json(["--name=h", "--filename=data", "--size=1m", "--rw=randread", "--bs=4k", "--direct=0",
                           "--clat_start=send",
                           "--time_based", "--runtime=1s", "--log_hist_msec=100", "--write_hist_log=h",
                           "--percentile_list=" + ":".join(str(q) for q in REPORT_PCTS)], cwd=d)
        p = subprocess.run([py, "fph.py", "--noweight", "-i", "100000", "--percentiles", "50:90:99",
                            "h_clat_hist.1.log"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        check(p.returncode == 0, f"fiologparser_hist.py: exit {p.returncode}: {p.stderr.strip()[-500:]}")
        lines = p.stdout.strip().splitlines()
        check(len(lines) == 2, f"fiologparser_hist.py printed {lines}")
        head = [h.strip() for h in lines[0].split(",")]
        row = dict(zip(head, (float(v) for v in lines[1].split(","))))
        clat = rep["jobs"][0]["read"]["clat_ns"]
        ios = rep["jobs"][0]["read"]["total_ios"]
        check(0.8 * ios <= row["samples"] <= ios, f"the parser counts {row['samples']} samples, the report {ios} I/Os")
        check(clat["percentile"]["50.000000"] > 256, f"clat {clat['percentile']['50.000000']} ns: not above 256 ns")
        # The log lacks the partial last window: the parser's p-th percentile
        # of the logged n samples lies between the report's percentiles
        # p*n/N and (p*n + N - n)/N over all N I/Os, widened to the nearest
        # ones the report lists; a bucket is 1/64 of its power of two wide:
        # allow two of them on each side.
        n = row["samples"]
        for pct in (50, 90, 99):
            q_lo, q_hi = pct * n / ios, (pct * n + 100 * (ios - n)) / ios
            lo = max(q for q in REPORT_PCTS if q <= q_lo)
            hi = min(q for q in REPORT_PCTS if q >= q_hi)
            v_lo, v_hi = (clat["percentile"][f"{q:.6f}"] for q in (lo, hi))
            theirs = row[f"{pct}%"]
            check(v_lo - v_lo / 32 - 2 <= theirs <= v_hi + v_hi / 32 + 2,
                  f"p{pct}: fiologparser_hist.py {theirs} ns over {n:.0f} of {ios} I/Os; "
                  f"the report's p{lo}..p{hi}: {v_lo}..{v_hi} ns")


def refused_settings():
    for args, msg in ((["--write_hist_log=h"], "log_hist_msec"),
                      (["--write_hist_log=h", "--log_hist_msec=100", "--log_hist_coarseness=7"],
                       "log_hist_coarseness")):
        with bl.TempDir() as d:
            rc, _, err = bl.run(["--name=x", "--ioengine=null", "--size=1m", "--runtime=100ms"] + args, cwd=d)
            check(rc != 0 and msg in err, f"{args}: exit {rc}: {err.strip()}")
            check(not glob.glob(os.path.join(d, "*.log")), f"{args}: a log was left: {os.listdir(d)}")


if __name__ == "__main__":
    bl.main([
        ("hist_log_has_fios_names_shape_and_counts", hist_log_has_fios_names_shape_and_counts),
        ("fiologparser_hist_finds_the_reports_percentiles", fiologparser_hist_finds_the_reports_percentiles),
        ("refused_settings", refused_settings),
    ])
