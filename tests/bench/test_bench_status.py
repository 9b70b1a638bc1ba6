#!/usr/bin/env python3
"""uwdf-bench --status-interval: fio's interim reports.

The same job file through fio 3.33 and uwdf-bench: as many interim reports
for the runtime (2.5 intervals: two, then the final one), in each output
format the structure of the final report (fio's json: one object per
interval), the jobs' cumulative values never going back; and each interim
report a consistent snapshot (the counts, sums and histograms of one moment)
taken while the I/O threads run at full speed.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

DIRS = ("read", "write", "trim")
# Under UWDF_BENCH_WRAP (valgrind: one thread at a time, 50x slower) the
# monitor is not scheduled on time: the counts of reports are not checked
# exactly there, what every report holds is.
SLOW = bool(bl.WRAP)


def job_file(d, engine="libaio"):
    """Two jobs, a reader and a writer, rated so a loaded machine keeps up;
    2.5 s: the interim reports at 1 s and 2 s, then the final one."""
    bl.make_data_file(os.path.join(d, "data"), 8 << 20)
    return bl.write_file(os.path.join(d, "job.fio"), f"""[global]
filename={d}/data
size=8m
bs=4k
ioengine={engine}
iodepth=4
time_based=1
runtime=2500ms
rate_iops=2000
[reader]
rw=randread
[writer]
rw=randwrite
""")


def json_objects(text):
    """The JSON objects printed one after the other (fio's json with
    --status-interval: not one document)."""
    dec, objs, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return objs
        try:
            o, i = dec.raw_decode(text, i)
        except ValueError as e:
            raise bl.Failed(f"invalid JSON at {i}: {e}\n{text[i:i + 400]}")
        objs.append(o)


def run_fio(args, cwd):
    p = subprocess.run(["fio"] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_both(fmt, d, jf):
    rc, ours, err = bl.run([f"--output-format={fmt}", "--status-interval=1", jf], cwd=d)
    check(rc == 0, f"uwdf-bench: exit {rc}: {err.strip()[-800:]}")
    rc, theirs, err = run_fio([f"--output-format={fmt}", "--status-interval=1", jf], d)
    check(rc == 0, f"fio: exit {rc}: {err.strip()[-800:]}")
    return ours, theirs


def check_monotone(objs, who):
    """Each job's cumulative values never go back from one report to the next."""
    prev = {}
    for n, o in enumerate(objs):
        for j in o["jobs"]:
            vals = [j["job_runtime"]] + [j[dd][k] for dd in DIRS for k in ("io_bytes", "total_ios")] + \
                   [j[dd][lat]["N"] for dd in DIRS for lat in ("clat_ns", "lat_ns")]
            old = prev.get(j["jobname"])
            check(old is None or all(a <= b for a, b in zip(old, vals)),
                  f"{who}: {j['jobname']} went back in report {n}: {old} -> {vals}")
            prev[j["jobname"]] = vals


def status_interval_json_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        ours, theirs = run_both("json", d, job_file(d))
        mine, fios = json_objects(ours), json_objects(theirs)
        check(len(fios) == 3, f"fio printed {len(fios)} JSON objects for 2.5 intervals (this check expects 3)")
        check(len(mine) == len(fios), f"{len(mine)} JSON objects, fio {len(fios)}")
        final_keys = set(mine[-1].keys())
        final_job_keys = [set(j.keys()) for j in mine[-1]["jobs"]]
        for n, (o, f) in enumerate(zip(mine, fios)):
            check(set(o.keys()) == final_keys, f"object {n}: keys {sorted(o.keys())}, final {sorted(final_keys)}")
            check([j["jobname"] for j in o["jobs"]] == [j["jobname"] for j in f["jobs"]],
                  f"object {n}: jobs {[j['jobname'] for j in o['jobs']]}, fio's {[j['jobname'] for j in f['jobs']]}")
            check([set(j.keys()) for j in o["jobs"]] == final_job_keys, f"object {n}: a job's keys differ from the final's")
            # fio's own keys that ours has in the final report are in each interim one
            for jo, jf in zip(o["jobs"], f["jobs"]):
                common = set(jf.keys()) & final_job_keys[0]
                check(common <= set(jo.keys()), f"object {n}: missing {sorted(common - set(jo.keys()))}")
        for objs, who in ((mine, "uwdf-bench"), (fios, "fio")):
            check_monotone(objs, who)
        # the interim ones are of the running jobs: time and I/O so far
        for n, o in enumerate(mine[:-1]):
            for j in o["jobs"]:
                dd = "read" if j["jobname"] == "reader" else "write"
                check(500 <= j["job_runtime"] <= 2400 and j[dd]["total_ios"] > 0,
                      f"object {n}: {j['jobname']} runtime {j['job_runtime']} ms, {j[dd]['total_ios']} I/Os")
        check(mine[0]["jobs"][0]["job_runtime"] < mine[1]["jobs"][0]["job_runtime"] < mine[2]["jobs"][0]["job_runtime"],
              "the reports' runtimes do not grow")


def status_interval_normal_and_terse_as_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        jf = job_file(d)
        ours, theirs = run_both("normal", d, jf)
        for what in ("(groupid=0, jobs=1)", "Run status group 0 (all jobs):", "   READ: bw=", "  WRITE: bw=",
                     "clat percentiles", "  cpu          :", "  IO depths    :"):
            check(ours.count(what) == theirs.count(what) and theirs.count(what) >= 3,
                  f"{what!r}: {ours.count(what)} times, fio {theirs.count(what)}")
        runs = [ln.split("run=")[1] for ln in ours.splitlines() if ln.startswith("   READ: bw=")]
        ms = [int(r.split("-")[0]) for r in runs]
        check(ms == sorted(ms) and len(set(ms)) == len(ms), f"the READ lines' runtimes {runs}")
        ours, theirs = run_both("terse", d, jf)
        mine = [ln.split(";") for ln in ours.splitlines() if ln.startswith("3;")]
        fios = [ln.split(";") for ln in theirs.splitlines() if ln.startswith("3;")]
        check(len(fios) == 6, f"fio printed {len(fios)} terse lines (this check expects 2 jobs x 3)")
        check([x[2] for x in mine] == [x[2] for x in fios], f"jobs {[x[2] for x in mine]}, fio {[x[2] for x in fios]}")
        check(all(len(x) == len(mine[-1]) for x in mine), "an interim terse line has another field count")
        reads = [int(x[5]) for x in mine if x[2] == "reader"]  # field 6: read KiB
        check(reads == sorted(reads) and reads[0] > 0, f"the reader's KiB {reads}")


def interim_reports_are_consistent():
    """At millions of I/Os a second on the null engine, 10 ms apart: every
    snapshot's counts, sums and histograms are of one moment (a torn copy
    shows as an I/O count that is not its latencies' count, or a mean
    outside min..max)."""
    with bl.TempDir() as d:
        rc, out, err = bl.run(["--name=c", "--ioengine=null", f"--filename={d}/x", "--size=1m", "--rw=randrw",
                               "--iodepth=8", "--time_based", "--runtime=1", "--status-interval=10ms",
                               "--output-format=json"], cwd=d)
        check(rc == 0, f"exit {rc}: {err.strip()[-800:]}")
        objs = json_objects(out)
        check(len(objs) >= (3 if SLOW else 20), f"{len(objs)} reports in 1 s at 10 ms")
        check_monotone(objs, "uwdf-bench")
        for n, o in enumerate(objs):
            j = o["jobs"][0]
            for dd in ("read", "write"):
                a = j[dd]
                ios, clat, lat = a["total_ios"], a["clat_ns"], a["lat_ns"]
                check(ios == clat["N"] == lat["N"] and a["io_bytes"] == ios * 4096,
                      f"report {n} {dd}: {ios} I/Os, {a['io_bytes']} bytes, clat N {clat['N']}, lat N {lat['N']}")
                for name, s in (("clat", clat), ("lat", lat)):
                    if s["N"]:
                        check(s["min"] <= s["mean"] <= s["max"] and s["stddev"] >= 0,
                              f"report {n} {dd} {name}: min {s['min']} mean {s['mean']} max {s['max']}")
            depths = sum(j["iodepth_level"].values())
            check(depths == 0 or 99.0 <= depths <= 101.0 + 0.1 * len(j["iodepth_level"]),
                  f"report {n}: IO depths add up to {depths}")


def status_interval_values_as_fio():
    """Its value: seconds without a unit, a unit taken, below 1 ms refused (fio: 'too small')."""
    with bl.TempDir() as d:
        base = ["--name=v", "--ioengine=null", f"--filename={d}/x", "--size=1m", "--time_based"]
        rc, _, err = bl.run(base + ["--runtime=1", "--status-interval=0"], cwd=d)
        check(rc == 1 and "too small" in err, f"0: exit {rc}: {err.strip()}")
        rc, _, err = bl.run(base + ["--runtime=1", "--status-interval=500us"], cwd=d)
        check(rc == 1 and "too small" in err, f"500us: exit {rc}: {err.strip()}")
        rc, _, err = bl.run(base + ["--runtime=1", "--status-interval=soon"], cwd=d)
        check(rc == 1 and "status-interval" in err, f"soon: exit {rc}: {err.strip()}")
        rc, out, err = bl.run(base + ["--runtime=1250ms", "--status-interval=500ms"], cwd=d)
        n = out.count("(groupid=0, jobs=1)")
        check(rc == 0 and (n == 3 or SLOW and 2 <= n <= 3), f"500ms over 1.25 s: exit {rc}, "
              f"{out.count('(groupid=0, jobs=1)')} reports (2 interim + the final expected)")
        if bl.tool("fio"):
            rc, _, err = run_fio(base + ["--runtime=1", "--status-interval=0"], d)
            check(rc == 1 and "too small" in err, f"fio with 0: exit {rc}: {err.strip()}")


if __name__ == "__main__":
    bl.main([
        ("status_interval_json_as_fio", status_interval_json_as_fio),
        ("status_interval_normal_and_terse_as_fio", status_interval_normal_and_terse_as_fio),
        ("interim_reports_are_consistent", interim_reports_are_consistent),
        ("status_interval_values_as_fio", status_interval_values_as_fio),
    ])
