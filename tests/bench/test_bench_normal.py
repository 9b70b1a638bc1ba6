#!/usr/bin/env python3
"""uwdf-bench: the normal report follows fio 3.x's rules and layout.

The same job file is run through fio (Debian's fio 3.33) and uwdf-bench
(null engines, deterministic sizes and counts): the lines must have fio's
formats, and the deterministic figures (jobs, groups, issued counts, the
group lines' io=) must be the same. Units and percentile rounding are
checked against the JSON of the same run, by fio's rules: a latency line
switches to usec/msec only when min, max and the deviation all pass that
unit's thresholds; percentiles take the unit of their smallest and largest
value and are rounded up into it. IO depths and CPU are measured per job.
"""

import json
import math
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

JOB_FILE = """[global]
ioengine=null
size=1m
filename=data.dat

[r]
rw=read
bs=8k
number_ios=64

[w]
rw=randwrite
bs=4k
iodepth=4
number_ios=32
"""

# fio 3.x line formats (stat.c's show_* functions)
LINE_FORMATS = {
    "header": r"^(\S+): \(groupid=(\d+), jobs=(\d+)\): err= *(\d+): pid=\d+: .+$",
    "status": r"^  (read|write|trim): IOPS=[\d.]+[kMG]?, BW=[\d.]+[KMG]?i?B/s \([\d.]+[kMG]?B/s\)"
              r"\(([\d.]+[KMGT]?i?B)/\d+msec\)(; \d+ zone resets)?$",  # fio: zoned devices' resets
    "lat": r"^    (slat|clat| lat) \((nsec|usec|msec)\): min=[\d.]+[kMG]?, max=[\d.]+[kMG]?, avg= *[\d.]+, "
           r"stdev= *[\d.]+$",
    "pct_head": r"^    (clat|lat) percentiles \((nsec|usec|msec)\):$",
    "pct_row": r"^     \|( +\d+\.\d+th=\[ *\d+\][,]?)+$",
    "bw": r"^   bw \( *(KiB|MiB)/s\): min= *\d+, max= *\d+, per=\d+\.\d+%, avg= *[\d.]+, stdev= *[\d.]+, "
          r"samples=\d+$",
    "iops": r"^   iops        : min= *\d+, max= *\d+, avg= *[\d.]+, stdev= *[\d.]+, samples=\d+$",
    "cpu": r"^  cpu          : usr=\d+\.\d+%, sys=\d+\.\d+%, ctx=\d+, majf=\d+, minf=\d+$",
    "depths": r"^  IO depths    : 1=[\d.]+%, 2=[\d.]+%, 4=[\d.]+%, 8=[\d.]+%, 16=[\d.]+%, 32=[\d.]+%, "
              r">=64=[\d.]+%$",
    "issued": r"^     issued rwts: total=(\d+),(\d+),(\d+),(\d+) short=\d+,\d+,\d+,\d+ dropped=\d+,\d+,\d+,\d+$",
    "group_head": r"^Run status group (\d+) \(all jobs\):$",
    "group": r"^ +(READ|WRITE|TRIM): bw=\S+ \(\S+\), \S+-\S+ \(\S+-\S+\), io=(\S+) \((\S+)\), "
             r"run=\d+-\d+msec$",
}


def classify(text):
    """[(kind, match)] of the lines with one of fio's formats, in order."""
    out = []
    for line in text.splitlines():
        for kind, rx in LINE_FORMATS.items():
            m = re.match(rx, line)
            if m:
                out.append((kind, m))
                break
    return out


def summary(lines):
    """The deterministic content: headers, issued counts, group lines."""
    jobs = [(m.group(1), m.group(2), m.group(3), m.group(4)) for k, m in lines if k == "header"]
    issued = [m.groups() for k, m in lines if k == "issued"]
    status = [(m.group(1), m.group(2)) for k, m in lines if k == "status"]
    groups = [m.group(1) for k, m in lines if k == "group_head"]
    glines = [m.groups() for k, m in lines if k == "group"]
    return {"jobs": jobs, "issued": issued, "status": status, "groups": groups, "group lines": glines}


def normal_report_has_fios_lines_and_values():
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), JOB_FILE)
        rc, out, err = bl.run([jf], cwd=d)
        check(rc == 0, f"uwdf-bench: exit {rc}: {err.strip()}")
        ours = classify(out)
        kinds = {k for k, _ in ours}
        for k in ("header", "status", "lat", "pct_head", "pct_row", "cpu", "depths", "issued", "group_head",
                  "group"):
            check(k in kinds, f"no line in fio's {k} format:\n{out}")
        s = summary(ours)
        check(s["jobs"] == [("r", "0", "1", "0"), ("w", "0", "1", "0")], f"jobs {s['jobs']}")
        check(s["issued"] == [("64", "0", "0", "0"), ("0", "32", "0", "0")], f"issued {s['issued']}")
        check(s["status"] == [("read", "512KiB"), ("write", "128KiB")], f"status lines {s['status']}")
        check(s["group lines"] == [("READ", "512KiB", "524kB"), ("WRITE", "128KiB", "131kB")],
              f"group lines {s['group lines']}")
        if bl.tool("fio"):
            p = subprocess.run(["fio", jf], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=120)
            check(p.returncode == 0, f"fio: exit {p.returncode}: {p.stderr.strip()}")
            theirs = classify(p.stdout)
            f = summary(theirs)
            check(f == s, f"fio's report says {f},\nuwdf-bench's {s}")
            # every kind of line fio printed, uwdf-bench printed too
            # (bandwidth samples need a run of 500 ms; neither has one here)
            missing = {k for k, _ in theirs} - kinds
            check(not missing, f"fio has lines uwdf-bench lacks: {sorted(missing)}\nfio:\n{p.stdout}\nours:\n{out}")


def ns_unit(mn, mx, dev):
    """fio's display_lat unit for min, max, stddev in ns."""
    if mn > 2000000 and mx > 99999999 and dev > 1000000.0:
        return "msec", 1000000
    if mn > 2000 and mx > 99999 and dev > 1000.0:
        return "usec", 1000
    return "nsec", 1


def pct_unit(vals):
    if min(vals) > 2000000 and max(vals) > 99999999:
        return "msec", 2
    if min(vals) > 2000 and max(vals) > 99999:
        return "usec", 1
    return "nsec", 0


def normal_and_json(args, env=None):
    with bl.TempDir() as d:
        rc, out, err = bl.run(args + ["--output-format=normal,json"], cwd=d, env=env)
        check(rc == 0, f"exit {rc}: {err.strip()}")
        i = out.index("\n{") + 1
        return out[:i], json.loads(out[i:])


def latency_units_and_percentiles_follow_fios_rules():
    # A plain null-engine run (small minimum: nsec whatever the maximum),
    # and one whose completions are held 3 ms (usec by every threshold).
    runs = [(["--name=n", "--ioengine=null", "--size=1m", "--time_based", "--runtime=100ms"], None),
            (["--name=s", "--ioengine=null", "--size=1m", "--number_ios=24", "--iodepth=2"],
             {"UWDF_FAULT_STALL": "3"})]
    for args, env in runs:
        text, rep = normal_and_json(args, env)
        rd = rep["jobs"][0]["read"]
        lines = text.splitlines()
        for label, key in (("clat", "clat_ns"), (" lat", "lat_ns"), ("slat", "slat_ns")):
            st = rd[key]
            m = next((re.match(rf"^    {label} \((\w+)\): min=(\S+), max=(\S+),", ln) for ln in lines
                      if ln.startswith(f"    {label} (")), None)
            check(m, f"{args}: no {label} line:\n{text}")
            unit, div = ns_unit(st["min"], st["max"], st["stddev"])
            check(m.group(1) == unit, f"{args}: {label} in {m.group(1)}, fio's rule gives {unit} for "
                                      f"min={st['min']} max={st['max']} stdev={st['stddev']:.0f}")
            if st["min"] // div < 1000000:
                check(m.group(2) == str(st["min"] // div), f"{args}: {label} min={m.group(2)}, "
                                                           f"{st['min']} ns")
        pct = rd["clat_ns"]["percentile"]
        vals = [pct[k] for k in sorted(pct, key=float)]
        unit, scale = pct_unit(vals)
        i = next(i for i, ln in enumerate(lines) if ln.startswith("    clat percentiles ("))
        check(lines[i] == f"    clat percentiles ({unit}):", f"{args}: {lines[i]!r}, fio's rule: {unit}")
        shown = []
        for ln in lines[i + 1:]:
            if not ln.startswith("     |"):
                break
            shown += [int(v) for v in re.findall(r"\[ *(\d+)\]", ln)]
        want = []
        for v in vals:
            for _ in range(scale):
                v = math.ceil(v / 1000)  # rounded up, as fio
            want.append(v)
        check(shown == want, f"{args}: percentiles {shown}, rounded up from {vals}: {want}")
        if env:
            # 3 ms stalls leave nsec behind; a loaded machine's >10 ms tail may make it msec
            check(unit in ("usec", "msec"), f"3 ms completions: percentiles in {unit}")


def io_depths_and_cpu_are_measured_per_job():
    with bl.TempDir() as d:
        # 3 I/Os at iodepth 4: no I/O is ever sent with 4 in flight
        rep = bl.run_json(["--name=a", "--ioengine=null", "--size=1m", "--iodepth=4", "--number_ios=3"], cwd=d)
        lvl = rep["jobs"][0]["iodepth_level"]
        check(lvl["4"] == 0 and lvl["1"] > 0 and abs(sum(lvl.values()) - 100) < 0.5,
              f"3 I/Os at iodepth=4: {lvl}")
        # a long QD4 run sends nearly all at 4 in flight, a sync one all at 1
        rep = bl.run_json(["--name=a", "--ioengine=null", "--size=1m", "--iodepth=4", "--time_based",
                           "--runtime=200ms", "--name=b", "--api=sync", "--number_ios=50"], cwd=d)
        a, b = rep["jobs"]
        check(a["iodepth_level"]["4"] >= 90 and a["iodepth_level"]["8"] == 0, f"a: {a['iodepth_level']}")
        check(b["iodepth_level"]["1"] == 100, f"b (sync): {b['iodepth_level']}")
        # CPU: each job its own threads' time; together at most the process's
        ca = a["uwdf"]["job_cpu_usr_s"] + a["uwdf"]["job_cpu_sys_s"]
        cb = b["uwdf"]["job_cpu_usr_s"] + b["uwdf"]["job_cpu_sys_s"]
        proc = a["uwdf"]["cpu_usr_s"] + a["uwdf"]["cpu_sys_s"]
        check(ca > 0 and cb < ca, f"job CPU a={ca} s (200 ms of I/O), b={cb} s (50 sync I/Os)")
        check(ca + cb <= proc * 1.05 + 0.02, f"jobs' CPU {ca + cb} s, the whole process {proc} s")
        wall = a["uwdf"]["job_cpu_wall_ms"] / 1000
        check(wall > 0 and abs(a["usr_cpu"] - 100 * a["uwdf"]["job_cpu_usr_s"] / wall) < 0.5 + a["usr_cpu"] * 0.01,
              f"a: usr_cpu {a['usr_cpu']}% vs {a['uwdf']['job_cpu_usr_s']} s over {wall} s")


def io_depths_count_sent_ios_not_idle_slots():
    with bl.TempDir() as d:
        # A slot keeps its place in the job's depth from one of its I/Os to
        # the next and gives it up when it retires or parks. Each pass (the
        # writes, then the verify reads) starts at depth 1: of 2 writes and 2
        # reads by 4 slots, at least half are sent at depth 1.
        rep = bl.run_json(["--name=a", "--rw=write", "--size=8k", "--bs=4k", "--iodepth=4",
                           "--verify=crc32c", "--filename=" + os.path.join(d, "f")], cwd=d)
        j = rep["jobs"][0]
        lvl = j["iodepth_level"]
        check(j["write"]["total_ios"] == 2 and j["read"]["total_ios"] == 2,
              f"2 writes and 2 verify reads: {j['write']['total_ios']}, {j['read']['total_ios']}")
        check(lvl["1"] >= 50 and lvl["4"] == 0, f"2 writes and their verify reads at QD4: {lvl}")
        # --rate_iops=50 on the null engine: each I/O completes at once and
        # its slot parks until its turn 20 ms later, so most are sent alone
        # (a loaded machine bunches some; a parked slot that kept its place
        # would put nearly all at 4)
        rep = bl.run_json(["--name=a", "--ioengine=null", "--size=1m", "--iodepth=4", "--rate_iops=50",
                           "--time_based", "--runtime=400ms"], cwd=d)
        lvl = rep["jobs"][0]["iodepth_level"]
        check(lvl["4"] <= 50, f"QD4 at 50 IOPS: {lvl}")


def pct_shape(rep):
    r = rep["jobs"][0]["read"]
    return {k: (sorted(r[k].get("percentile", {}), key=float), "bins" in r[k]) for k in ("slat_ns", "clat_ns", "lat_ns")}


def pct_labels(text):
    """{block: [labels]} of the normal report's percentile blocks."""
    out, cur = {}, None
    for ln in text.splitlines():
        m = re.match(r"^    (\w+) percentiles \(", ln)
        if m:
            cur = out.setdefault(m.group(1), [])
        elif cur is not None and ln.startswith("     |"):
            cur += re.findall(r"([\d.]+)th=", ln)
        else:
            cur = None
    return out


def percentile_options_as_fio():
    """percentile_list (sorted, with fio's precision), clat_percentiles and
    lat_percentiles: the same percentile blocks and JSON keys as fio."""
    cases = [["--percentile_list=99.9:50:99", "--lat_percentiles=1"],
             ["--percentile_list=50:99", "--clat_percentiles=0", "--lat_percentiles=1"],
             ["--percentile_list=25.125:90"]]
    with bl.TempDir() as d:
        for extra in cases:
            args = ["--name=p", "--ioengine=null", "--size=1m", "--number_ios=200"] + extra
            rep = bl.run_json(args, cwd=d, fmt="json+")
            rc, out, err = bl.run(args, cwd=d)
            check(rc == 0, f"{extra}: exit {rc}: {err.strip()}")
            ours = (pct_shape(rep), pct_labels(out))
            want_keys = sorted(("%f" % float(x) for x in extra[0].split("=")[1].split(":")), key=float)
            lat_on = "--lat_percentiles=1" in extra
            clat_on = "--clat_percentiles=0" not in extra
            check(ours[0]["clat_ns"][0] == (want_keys if clat_on else []) and
                  ours[0]["lat_ns"][0] == (want_keys if lat_on else []), f"{extra}: JSON percentiles {ours[0]}")
            if bl.tool("fio"):
                p = subprocess.run(["fio", "--output-format=json+"] + args, cwd=d, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, timeout=120)
                check(p.returncode == 0, f"fio {extra}: exit {p.returncode}: {p.stderr.strip()}")
                fj = json.loads(p.stdout[p.stdout.index("{"):])
                p = subprocess.run(["fio"] + args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=120)
                theirs = (pct_shape(fj), pct_labels(p.stdout))
                check(theirs == ours, f"{extra}: fio {theirs},\nuwdf-bench {ours}")
        rc, _, err = bl.run(["--name=p", "--percentile_list=50:101"], cwd=d)
        check(rc == 1 and "percentile_list" in err, f"percentile 101: exit {rc}: {err.strip()}")


GROUPS_FILE = """[global]
ioengine=null
size=1m
filename=data.dat
number_ios=20

[a]
rw=read
numjobs=2

[b]
rw=write
new_group

[c]
rw=randread
stonewall
group_reporting
numjobs=2

[d]
rw=read
"""
SECOND_FILE = "[e]\nioengine=null\nsize=1m\nfilename=data.dat\nnumber_ios=10\nrw=write\n"


def entries(rep):
    return [(j["jobname"], j["groupid"], j["read"]["total_ios"], j["write"]["total_ios"]) for j in rep["jobs"]]


def groups_stonewalls_and_group_reporting_as_fio():
    """new_group and stonewall start groups, a second job file starts one
    behind a stonewall, group_reporting merges a job into the entry before
    it of its group: the entries, groups and group lines fio prints."""
    with bl.TempDir() as d:
        g = bl.write_file(os.path.join(d, "g.fio"), GROUPS_FILE)
        h = bl.write_file(os.path.join(d, "h.fio"), SECOND_FILE)
        rep = bl.run_json([g, h], cwd=d)
        want = [("a", 0, 20, 0), ("a", 0, 20, 0), ("b", 1, 0, 20), ("c", 2, 40, 0), ("d", 2, 20, 0), ("e", 3, 0, 10)]
        check(entries(rep) == want, f"entries {entries(rep)}, expected {want}")
        rc, out, err = bl.run([g, h], cwd=d)
        check(rc == 0, f"exit {rc}: {err.strip()}")
        s = summary(classify(out))
        check(s["groups"] == ["0", "1", "2", "3"], f"groups {s['groups']}")
        check([x[1] for x in s["jobs"]] == ["0", "0", "1", "2", "2", "3"] and s["jobs"][3][2] == "2",
              f"job headers {s['jobs']}")
        check(re.findall(r"^\S+: \(g=(\d+)\)", out, re.M) == ["0", "1", "2", "2", "3"], "the (g=N) header lines")
        if bl.tool("fio"):
            p = subprocess.run(["fio", "--output-format=json", g, h], cwd=d, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=120)
            check(p.returncode == 0, f"fio: exit {p.returncode}: {p.stderr.strip()}")
            fj = json.loads(p.stdout[p.stdout.index("{"):])
            check(entries(fj) == entries(rep), f"fio: {entries(fj)}, uwdf-bench: {entries(rep)}")
            p = subprocess.run(["fio", g, h], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=120)
            f = summary(classify(p.stdout))
            check(f == s, f"fio's report says {f},\nuwdf-bench's {s}")


def stonewall_waits_for_the_jobs_before_it():
    with bl.TempDir() as d:
        base = ["--ioengine=null", "--size=1m", "--time_based", "--runtime=400ms", "--name=a", "--name=b"]
        for extra in ([], ["--stonewall"]):
            rep = bl.run_json(base + extra, cwd=d)
            a, b = rep["jobs"]
            check([a["groupid"], b["groupid"]] == ([0, 0] if not extra else [0, 1]),
                  f"{extra}: groups {[a['groupid'], b['groupid']]}")
            check(all(350 <= j["job_runtime"] <= 2000 for j in (a, b)),
                  f"{extra}: runtimes {[a['job_runtime'], b['job_runtime']]}")
            sa, sb = a["uwdf"]["start_ms"], b["uwdf"]["start_ms"]
            if extra:  # b starts when a has ended
                check(sb >= sa + a["job_runtime"] - 5, f"stonewall: b started at {sb} ms, a at {sa} for "
                                                        f"{a['job_runtime']} ms")
            else:
                check(sb < sa + a["job_runtime"] / 2, f"b started at {sb} ms, a at {sa}: together")


if __name__ == "__main__":
    bl.main([
        ("normal_report_has_fios_lines_and_values", normal_report_has_fios_lines_and_values),
        ("latency_units_and_percentiles_follow_fios_rules", latency_units_and_percentiles_follow_fios_rules),
        ("io_depths_and_cpu_are_measured_per_job", io_depths_and_cpu_are_measured_per_job),
        ("io_depths_count_sent_ios_not_idle_slots", io_depths_count_sent_ios_not_idle_slots),
        ("percentile_options_as_fio", percentile_options_as_fio),
        ("groups_stonewalls_and_group_reporting_as_fio", groups_stonewalls_and_group_reporting_as_fio),
        ("stonewall_waits_for_the_jobs_before_it", stonewall_waits_for_the_jobs_before_it),
    ])
