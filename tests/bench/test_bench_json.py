#!/usr/bin/env python3
"""uwdf-bench: the JSON, JSON+ and terse reports follow fio's layout.

The reports must parse (python's json module), carry fio's field names where
fio puts them (tools written for fio's JSON read them), and hold figures that
agree with each other. When fio is installed, the same job is run through fio
and every field fio prints must be in uwdf-bench's report too, with the same
JSON type; without fio the fixed list below (fio 3.x) is checked alone.
"""

import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import Failed, Skip, check  # noqa: E402

PCT_KEYS = ["1.000000", "5.000000", "10.000000", "20.000000", "30.000000", "40.000000", "50.000000",
            "60.000000", "70.000000", "80.000000", "90.000000", "95.000000", "99.000000", "99.500000",
            "99.900000", "99.950000", "99.990000"]
TOP_KEYS = ["fio version", "timestamp", "timestamp_ms", "time", "jobs"]
JOB_KEYS = ["jobname", "groupid", "error", "eta", "elapsed", "job options", "read", "write", "trim", "sync",
            "job_runtime", "usr_cpu", "sys_cpu", "ctx", "majf", "minf", "iodepth_level", "latency_ns", "latency_us", "latency_ms", "latency_depth", "latency_target",
            "latency_percentile", "latency_window"]
DDIR_KEYS = ["io_bytes", "io_kbytes", "bw_bytes", "bw", "iops", "runtime", "total_ios", "short_ios", "drop_ios",
             "slat_ns", "clat_ns", "lat_ns", "bw_min", "bw_max", "bw_agg", "bw_mean", "bw_dev", "bw_samples",
             "iops_min", "iops_max", "iops_mean", "iops_stddev", "iops_samples"]
LAT_KEYS = ["min", "max", "mean", "stddev", "N"]
# fio's fields uwdf-bench leaves out because nothing here measures them:
# requests are sent one by one and the framework batches them, so there are
# no submit or reap calls whose sizes fio's histograms count.
LEFT_OUT = {"iodepth_submit", "iodepth_complete"}

BS = 4096
NIOS = 2000


def job_args(d, fmt, extra=()):
    return ["--name=j", f"--filename={d}/data.dat", "--size=1m", f"--bs={BS}", "--rw=randrw", "--ioengine=null",
            "--iodepth=4", f"--number_ios={NIOS}", "--time_based", "--runtime=10", f"--output-format={fmt}"] + list(extra)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_keys(obj, keys, where):
    check(isinstance(obj, dict), f"{where} is not an object")
    missing = [k for k in keys if k not in obj]
    check(not missing, f"{where}: missing {missing}")


def check_lat(lat, where, with_pct):
    check_keys(lat, LAT_KEYS, where)
    for k in LAT_KEYS:
        check(is_number(lat[k]), f"{where}.{k} is not a number: {lat[k]!r}")
    if lat["N"]:
        check(lat["min"] <= lat["mean"] <= lat["max"], f"{where}: min {lat['min']} mean {lat['mean']} max {lat['max']}")
    if with_pct and lat["N"]:
        check_keys(lat, ["percentile"], where)
        pct = lat["percentile"]
        check(list(pct) == PCT_KEYS, f"{where}.percentile keys {list(pct)}")
        vals = [pct[k] for k in PCT_KEYS]
        check(all(isinstance(v, int) for v in vals), f"{where}.percentile values are not integers (ns)")
        check(vals == sorted(vals), f"{where}.percentile not monotonic: {vals}")
        # Percentiles from a histogram: within 1/128 of the observed range.
        check(vals[0] >= lat["min"] * (1 - 1 / 128) and vals[-1] <= lat["max"] * (1 + 1 / 128) + 1,
              f"{where}.percentile outside [min, max]: {vals[0]}..{vals[-1]} vs {lat['min']}..{lat['max']}")


def check_report(rep, plus):
    check_keys(rep, TOP_KEYS, "report")
    check(rep["fio version"].startswith("uwdf-bench-"), f"fio version {rep['fio version']!r}")
    check(is_number(rep["timestamp"]) and is_number(rep["timestamp_ms"]), "timestamps")
    check(abs(rep["timestamp_ms"] // 1000 - rep["timestamp"]) <= 1, "timestamp_ms disagrees with timestamp")
    check(len(rep["jobs"]) == 1, f"{len(rep['jobs'])} jobs")
    j = rep["jobs"][0]
    check_keys(j, JOB_KEYS, "jobs[0]")
    check(j["jobname"] == "j" and j["error"] == 0, f"jobname {j['jobname']!r}, error {j['error']}")
    for k in ("usr_cpu", "sys_cpu"):
        check(is_number(j[k]) and j[k] >= 0, f"{k} {j[k]!r}")
    total = 0
    for dd in ("read", "write", "trim"):
        d = j[dd]
        check_keys(d, DDIR_KEYS, dd)
        for k in DDIR_KEYS:
            if not k.endswith("_ns"):
                check(is_number(d[k]), f"{dd}.{k} is not a number: {d[k]!r}")
        check(d["io_bytes"] == d["total_ios"] * BS, f"{dd}: io_bytes {d['io_bytes']} for {d['total_ios']} I/Os")
        check(d["io_kbytes"] == d["io_bytes"] >> 10, f"{dd}: io_kbytes")
        check(d["bw"] == d["bw_bytes"] >> 10, f"{dd}: bw {d['bw']} KiB/s vs bw_bytes {d['bw_bytes']}")
        if d["total_ios"]:
            # iops from the I/O count and the runtime, which is printed in
            # whole ms (rounded; at least 1, so "1" covers any run under 1.5 ms)
            rt = d["runtime"]
            lo, hi = (rt - 0.5 if rt > 1 else 0.0) / 1000.0, (rt + 0.5) / 1000.0
            check(rt > 0 and d["total_ios"] / hi <= d["iops"] * 1.0001 and
                  (lo == 0 or d["iops"] <= d["total_ios"] / lo * 1.0001),
                  f"{dd}: iops {d['iops']} over {d['runtime']} ms for {d['total_ios']} I/Os")
            check(abs(d["bw_bytes"] - d["iops"] * BS) <= d["bw_bytes"] * 0.001 + BS,
                  f"{dd}: bw_bytes {d['bw_bytes']} vs iops {d['iops']} * {BS}")
        for k in ("slat_ns", "lat_ns"):
            check_lat(d[k], f"{dd}.{k}", False)
        check_lat(d["clat_ns"], f"{dd}.clat_ns", True)
        check(d["clat_ns"]["N"] == d["total_ios"] and d["lat_ns"]["N"] == d["total_ios"],
              f"{dd}: latency samples {d['clat_ns']['N']} for {d['total_ios']} I/Os")
        if d["total_ios"]:
            # lat = slat + clat, I/O by I/O
            s = d["slat_ns"]["mean"] + d["clat_ns"]["mean"]
            check(abs(d["lat_ns"]["mean"] - s) <= 0.01 * s + 1, f"{dd}: lat mean {d['lat_ns']['mean']} vs {s}")
        if plus and d["total_ios"]:
            bins = d["clat_ns"].get("bins")
            check(isinstance(bins, dict) and bins, f"{dd}.clat_ns.bins missing in json+")
            check(all(k.isdigit() and isinstance(v, int) and v > 0 for k, v in bins.items()),
                  f"{dd}.clat_ns.bins: keys must be ns values, counts positive")
            check(sum(bins.values()) == d["clat_ns"]["N"], f"{dd}: bins hold {sum(bins.values())} of "
                                                           f"{d['clat_ns']['N']} samples")
            keys = sorted(int(k) for k in bins)
            for p, v in d["clat_ns"]["percentile"].items():
                check(v in keys, f"{dd}: percentile {p} = {v} is not a bin")
        elif not plus:
            check("bins" not in d["clat_ns"], f"{dd}: bins in plain json")
        total += d["total_ios"]
    check(total == NIOS, f"{total} I/Os for number_ios={NIOS}")
    check(j["read"]["total_ios"] > 0 and j["write"]["total_ios"] > 0, "randrw: reads and writes")
    for k in ("iodepth_level", "latency_ns", "latency_us", "latency_ms"):
        check(isinstance(j[k], dict) and all(is_number(v) for v in j[k].values()), f"{k}")
    # as fio, a bucket with any I/O shows at least 0.1%
    check(99.99 <= sum(j["iodepth_level"].values()) <= 100.71, "iodepth_level does not sum to 100%")
    dist = sum(j["latency_ns"].values()) + sum(j["latency_us"].values()) + sum(j["latency_ms"].values())
    check(abs(dist - 100.0) < 0.5, f"latency_ns/us/ms sum to {dist}%")
    check(j["job options"].get("rw") == "randrw" and j["job options"].get("bs") == str(BS),
          f"job options {j['job options']}")
    return j


def same_shape(ours, theirs, path, problems):
    """Every key of fio's report is in ours, with the same JSON type; maps
    keyed by values (percentiles, bins) are compared as maps only."""
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            problems.append(f"{path}: object in fio, {type(ours).__name__} here")
            return
        if path.endswith((".percentile", ".bins")):
            return
        for k, v in theirs.items():
            if k == "disk_util":
                continue  # fio's view of the block devices, not a job figure
            if k in LEFT_OUT:
                if k in ours:
                    problems.append(f"{path}.{k}: reported, but nothing measures it")
                continue
            if k not in ours:
                problems.append(f"{path}.{k}: missing")
            else:
                same_shape(ours[k], v, f"{path}.{k}", problems)
    elif isinstance(theirs, list):
        if not isinstance(ours, list):
            problems.append(f"{path}: array in fio, {type(ours).__name__} here")
        elif theirs and ours:
            same_shape(ours[0], theirs[0], path + "[0]", problems)
    elif is_number(theirs):
        if not is_number(ours):
            problems.append(f"{path}: number in fio, {ours!r} here")
    elif isinstance(theirs, str):
        if not isinstance(ours, str):
            problems.append(f"{path}: string in fio, {ours!r} here")


def fio_report(d, fmt):
    if not shutil.which("fio"):
        raise Skip("fio is not installed")
    args = ["fio", "--name=j", f"--filename={d}/fio.dat", "--size=1m", f"--bs={BS}", "--rw=randrw",
            "--ioengine=null", "--iodepth=4", f"--number_ios={NIOS}", f"--output-format={fmt}"]
    p = subprocess.run(args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    check(p.returncode == 0, f"fio failed: {p.stderr}")
    # fio may print its job header line before the JSON
    return json.loads(p.stdout[p.stdout.index("{"):])


def json_report_has_fio_layout():
    with bl.TempDir() as d:
        check_report(bl.run_json(job_args(d, "json"), cwd=d, fmt="json"), False)


def json_plus_report_has_fio_layout_and_bins():
    with bl.TempDir() as d:
        check_report(bl.run_json(job_args(d, "json+"), cwd=d, fmt="json+"), True)


def json_fields_match_what_fio_prints():
    with bl.TempDir() as d:
        for fmt in ("json", "json+"):
            ours = bl.run_json(job_args(d, fmt), cwd=d, fmt=fmt)
            theirs = fio_report(d, fmt)
            problems = []
            same_shape(ours, theirs, "", problems)
            check(not problems, f"{fmt}: " + "; ".join(problems[:20]))


def json_escapes_names():
    with bl.TempDir() as d:
        name = 'q"uote \\back\tslash é ✓'
        fname = os.path.join(d, 'da"ta\\1.dat')
        rep = bl.run_json([f"--name={name}", f"--filename={fname}", "--size=64k", "--ioengine=null",
                           "--number_ios=8"], cwd=d)
        j = rep["jobs"][0]
        check(j["jobname"] == name, f"jobname {j['jobname']!r}")
        check(j["job options"].get("filename") == fname, f"filename {j['job options'].get('filename')!r}")


def json_goes_to_the_output_file():
    with bl.TempDir() as d:
        out = os.path.join(d, "report.json")
        rc, so, se = bl.run(job_args(d, "json", [f"--output={out}"]), cwd=d)
        check(rc == 0, f"exit {rc}: {se}")
        check(so == "", f"stdout not empty: {so[:200]}")
        with open(out) as f:
            check_report(json.load(f), False)


def several_jobs_are_several_entries():
    with bl.TempDir() as d:
        rep = bl.run_json([f"--filename={d}/data.dat", "--size=1m", "--ioengine=null", "--number_ios=10",
                           "--name=a", "--rw=read", "--name=b", "--rw=write", "--numjobs=3"], cwd=d)
        check([j["jobname"] for j in rep["jobs"]] == ["a", "b", "b", "b"],
              f"jobs {[j['jobname'] for j in rep['jobs']]}")
        check(all(j["read"]["total_ios"] + j["write"]["total_ios"] == 10 for j in rep["jobs"]), "I/O counts")


def terse_has_fio_field_count():
    with bl.TempDir() as d:
        rc, out, err = bl.run(["--name=j", f"--filename={d}/data.dat", "--size=1m", "--ioengine=null",
                               "--number_ios=100", "--minimal"], cwd=d)
        check(rc == 0, f"exit {rc}: {err}")
        lines = out.splitlines()
        check(len(lines) == 1, f"{len(lines)} lines")
        f = lines[0].split(";")
        # fio's terse version 3: 121 fields; version, fio version, name, groupid, error
        check(len(f) == 121, f"{len(f)} fields, fio's terse v3 has 121")
        check(f[0] == "3" and f[1].startswith("uwdf-bench-") and f[2] == "j" and f[4] == "0", f"{f[:5]}")
        check(int(f[5]) == 100 * 4096 // 1024, f"read KiB {f[5]}")
        if shutil.which("fio"):
            p = subprocess.run(["fio", "--name=j", f"--filename={d}/fio.dat", "--size=1m", "--ioengine=null",
                                "--number_ios=100", "--minimal"], cwd=d, stdout=subprocess.PIPE, text=True,
                               timeout=120)
            theirs = p.stdout.strip().splitlines()[-1].split(";")
            check(len(theirs) == len(f), f"fio prints {len(theirs)} terse fields, uwdf-bench {len(f)}")


if __name__ == "__main__":
    bl.main([
        ("json_report_has_fio_layout", json_report_has_fio_layout),
        ("json_plus_report_has_fio_layout_and_bins", json_plus_report_has_fio_layout_and_bins),
        ("json_fields_match_what_fio_prints", json_fields_match_what_fio_prints),
        ("json_escapes_names", json_escapes_names),
        ("json_goes_to_the_output_file", json_goes_to_the_output_file),
        ("several_jobs_are_several_entries", several_jobs_are_several_entries),
        ("terse_has_fio_field_count", terse_has_fio_field_count),
    ])
