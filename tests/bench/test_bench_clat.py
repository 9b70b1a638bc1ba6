#!/usr/bin/env python3
"""uwdf-bench: where clat starts (--clat_start), beside fio.

fio's io_uring, libaio and null engines start an I/O's clat when their
commit hands it to the kernel (the issue time their "queued" hook stamps),
so an I/O's wait for the rest of its submit batch is slat. uwdf-bench's
--api=async starts clat at the engine's hand-over (UwdfIoTargetSetHandOverTimes)
by default, and at the return of WdfRequestSend with --clat_start=send.
The same job (null engine, QD16, submit and completion batches of 16, so
every I/O waits for 15 others before it is handed over) run by both: with
the hand-over the wait is a large share of lat in both tools' slat; with
--clat_start=send it is clat and slat is only the send call.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

JOB = ["--name=c", "--ioengine=null", "--rw=randread", "--bs=4k", "--size=16m", "--iodepth=16",
       "--iodepth_batch_submit=16", "--iodepth_batch_complete_min=16", "--iodepth_batch_complete_max=16",
       "--runtime=1", "--time_based"]
# What share of lat the batch wait is, at least, where it counts as slat
# (fio: 0.8-0.9 on an idle machine; uwdf-bench about 0.5, its completion
# routines run in the round).
SLAT_SHARE = 0.25


def slat_share(rep, who):
    r = rep["jobs"][0]["read"]
    lat = r["lat_ns"]["mean"]
    check(lat > 0 and r["total_ios"] > 1000, f"{who}: {r['total_ios']} I/Os, lat {lat}")
    return r["slat_ns"]["mean"] / lat


def batch_wait_is_slat_as_in_fio():
    bl.tool("fio")
    with bl.TempDir() as d:
        path = os.path.join(d, "data")
        bl.make_data_file(path, 16 << 20)
        job = JOB + [f"--filename={path}"]
        p = subprocess.run(["fio", "--output-format=json"] + job, cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=120)
        check(p.returncode == 0, f"fio: exit {p.returncode}: {p.stderr.strip()}")
        fio = slat_share(json.loads(p.stdout), "fio")
        check(fio >= SLAT_SHARE, f"fio's slat is {fio:.2f} of lat (the job does not batch as expected)")
        handover = slat_share(bl.run_json(job, cwd=d), "uwdf-bench")
        send = slat_share(bl.run_json(job + ["--clat_start=send"], cwd=d), "uwdf-bench --clat_start=send")
        check(handover >= SLAT_SHARE, f"uwdf-bench's slat is {handover:.2f} of lat, fio's {fio:.2f}")
        check(send < handover / 2, f"--clat_start=send: slat {send:.2f} of lat, with the hand-over {handover:.2f}")


def a_trim_without_hand_over_time_starts_clat_at_the_send():
    with bl.TempDir() as d:
        # the null engine's trims are answered by the framework, never handed
        # over: their slat is the send call, as with --clat_start=send, not 0
        rep = bl.run_json(["--name=t", "--ioengine=null", "--rw=randtrim", "--size=1m", "--iodepth=2"], cwd=d)
        t = rep["jobs"][0]["trim"]
        check(t["total_ios"] == 256 and t["slat_ns"]["min"] > 0,
              f"{t['total_ios']} trims, slat min {t['slat_ns']['min']} ns, mean {t['slat_ns']['mean']}")


def clat_start_values():
    with bl.TempDir() as d:
        for opt, ok in (("--clat_start=handover", True), ("--clat_start=send", True), ("--clat_start=kernel", False)):
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", opt], cwd=d)
            check((rc == 0) == ok, f"{opt}: exit {rc}: {err.strip()}")


if __name__ == "__main__":
    bl.main([
        ("batch_wait_is_slat_as_in_fio", batch_wait_is_slat_as_in_fio),
        ("a_trim_without_hand_over_time_starts_clat_at_the_send", a_trim_without_hand_over_time_starts_clat_at_the_send),
        ("clat_start_values", clat_start_values),
    ])
