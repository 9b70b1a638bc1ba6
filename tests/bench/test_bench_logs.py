#!/usr/bin/env python3
"""uwdf-bench: fio's windowed latency, bandwidth and IOPS logs.

write_lat_log / write_bw_log / write_iops_log with log_avg_msec: the same
job file run through fio and uwdf-bench gives the same log files (names),
lines in fio's format ("time, value, direction, 0, 0" in windowed mode),
and figures that agree with the report of the same run. fio's own tools
read them: fio_generate_plots draws SVGs with gnuplot, fio2gnuplot PNGs.
"""

import glob
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

JOB_FILE = """[global]
ioengine=null
size=1m
filename=data.dat
time_based
runtime=700ms
log_avg_msec=100

[a]
rw=randrw
bs=4k
iodepth=4
write_lat_log=a
write_bw_log=a
write_iops_log=a

[b]
rw=read
bs=8k
write_iops_log
"""

LINE = re.compile(r"^(\d+), (\d+), ([012]), 0, 0$")
KINDS = ("slat", "clat", "lat", "bw", "iops")


def read_log(path):
    rows = []
    with open(path) as f:
        for ln in f:
            m = LINE.match(ln.rstrip("\n"))
            check(m, f"{os.path.basename(path)}: not fio's windowed line: {ln!r}")
            rows.append(tuple(int(g) for g in m.groups()))
    return rows


def logs_have_fios_names_format_and_figures():
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), JOB_FILE)
        rep = bl.run_json([jf], cwd=d)
        ours = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "*.log")))
        want = sorted([f"a_{k}.1.log" for k in KINDS] + ["b_iops.2.log"])
        check(ours == want, f"log files {ours}, expected {want}")
        a = rep["jobs"][0]
        logs = {k: read_log(os.path.join(d, f"a_{k}.1.log")) for k in KINDS}
        for k, rows in logs.items():
            times = [r[0] for r in rows]
            check(rows and times == sorted(times), f"a_{k}: times not in order: {times}")
            check({r[2] for r in rows} == {0, 1}, f"a_{k}: directions {sorted({r[2] for r in rows})}")
            check(times[-1] <= a["job_runtime"] + 1, f"a_{k}: last entry at {times[-1]} ms of {a['job_runtime']}")
        # IOPS entries times their windows add up to the I/Os of the report. Like fio's, a
        # window with no I/O in a direction has no line, so a gap longer than a window and
        # its sampling tick (log_avg_msec/4) may hide an empty window (a loaded machine
        # stalls the job): there the entry's own window lies between one period and the gap.
        period = 100
        cap = period + period // 4 + 2
        for dd, name in ((0, "read"), (1, "write")):
            rows = [r for r in logs["iops"] if r[2] == dd]
            prev, lo, hi = 0, 0.0, 0.0
            for t, v, _ in rows:
                hi += v * (t - prev) / 1000
                lo += v * min(t - prev, cap) / 1000
                prev = t
            ios = a[name]["total_ios"]
            check(0.95 * lo - 50 <= ios <= 1.05 * hi + 50,
                  f"a {name}: the IOPS log adds up to {lo:.0f}..{hi:.0f}, the report has {ios}")
            # bandwidth entries are the same windows at 4 KiB per I/O
            bw = [r for r in logs["bw"] if r[2] == dd]
            check([r[0] for r in bw] == [r[0] for r in rows], f"a {name}: bw and iops windows differ")
            for (t, v, _), (_, i, _) in zip(bw, rows):
                check(abs(v - 4 * i) <= 0.01 * v + 4, f"a {name} at {t} ms: bw {v} KiB/s, iops {i}")
            # latency entries: averages within the run's min..max, lat = slat + clat
            st = a[name]["lat_ns"]
            for (t, lat, _), (_, sl, _), (_, cl, _) in zip(*[[r for r in logs[k] if r[2] == dd]
                                                             for k in ("lat", "slat", "clat")]):
                check(st["min"] <= lat <= st["max"], f"a {name} at {t} ms: lat {lat} outside the run's "
                                                     f"{st['min']}..{st['max']}")
                check(abs(lat - sl - cl) <= 2, f"a {name} at {t} ms: lat {lat} != slat {sl} + clat {cl}")
        b = read_log(os.path.join(d, "b_iops.2.log"))
        check(b and {r[2] for r in b} == {0}, f"b_iops: directions {sorted({r[2] for r in b})}")
        if bl.tool("fio"):
            fd, theirs = bl.fio_log_names(jf, d)
            check(theirs == ours, f"fio writes {theirs}, uwdf-bench {ours}")
            for name in theirs:
                rows = read_log(os.path.join(fd, name))  # fio's lines in the same format
                mine = read_log(os.path.join(d, name))
                check({r[2] for r in rows} == {r[2] for r in mine},
                      f"{name}: directions {sorted({r[2] for r in rows})} in fio's, {sorted({r[2] for r in mine})}")


def fios_plot_tools_read_the_logs():
    tool = bl.tool("fio_generate_plots")
    bl.tool("gnuplot", "gnuplot-nox")
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), JOB_FILE)
        rc, _, err = bl.run([jf, "--output-format=terse"], cwd=d)
        check(rc == 0, f"exit {rc}: {err.strip()}")
        os.unlink(os.path.join(d, "b_iops.2.log"))
        p = subprocess.run([tool, "uwdf"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        check(p.returncode == 0, f"fio_generate_plots: exit {p.returncode}: {p.stdout[-500:]}")
        for k in KINDS:
            svg = os.path.join(d, f"uwdf-{k}.svg")
            check(os.path.exists(svg), f"fio_generate_plots drew no {os.path.basename(svg)}")
            with open(svg) as f:
                text = f.read()
            # the curve of a_<k>.1.log, titled by the script "Queue depth a.1"
            check(text.count("<path") > 10 and "Queue depth a.1" in text,
                  f"{os.path.basename(svg)}: no curve of a_{k}.1.log")
        p = subprocess.run([bl.tool("fio2gnuplot"), "-i", "-g", "-d", "out"], cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        check(p.returncode == 0 and "a_iops.1.log" in p.stdout, f"fio2gnuplot: exit {p.returncode}: {p.stdout[-500:]}")
        pngs = glob.glob(os.path.join(d, "out", "*.png"))
        check(any("a_iops.1" in os.path.basename(x) for x in pngs) and all(os.path.getsize(x) > 1000 for x in pngs),
              f"fio2gnuplot drew {sorted(os.path.basename(x) for x in pngs)}")


def per_job_logs_0_shares_one_file():
    with bl.TempDir() as d:
        rep = bl.run_json(["--ioengine=null", "--size=1m", "--time_based", "--runtime=300ms", "--log_avg_msec=100",
                           "--per_job_logs=0", "--write_iops_log=s", "--name=x", "--name=y", "--rw=write"], cwd=d)
        check(sorted(os.listdir(d)) == ["s_iops.log"], f"files {sorted(os.listdir(d))}")
        rows = read_log(os.path.join(d, "s_iops.log"))
        check({r[2] for r in rows} == {0, 1}, f"s_iops.log holds directions {sorted({r[2] for r in rows})}")
        check(len(rep["jobs"]) == 2, "jobs")


if __name__ == "__main__":
    bl.main([
        ("logs_have_fios_names_format_and_figures", logs_have_fios_names_format_and_figures),
        ("fios_plot_tools_read_the_logs", fios_plot_tools_read_the_logs),
        ("per_job_logs_0_shares_one_file", per_job_logs_0_shares_one_file),
    ])
