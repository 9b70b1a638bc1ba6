#!/usr/bin/env python3
"""bench/qd1-trace: a QD1 read's latency split into its parts.

A made-up `perf script --ns` trace of two reads by one thread on one
device (and a read of another thread on another device, which must not
count) is read back with --script: every part of each read comes out at
the microseconds put in, the thread's switches and migration are counted,
and the slow read is the one the report gives as the slowest.
"""

import io
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

SRCDIR = os.environ.get("srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.abspath(os.path.join(SRCDIR, "bench", "qd1-trace"))


def load():
    return bl.load_script(SCRIPT, "qd1_trace")


def ev(comm, tid, cpu, us, name, rest):
    return "%16s %6d [%03d] %.9f: %s: %s" % (comm, tid, cpu, 1 + us / 1e6, name, rest)


def enter(us, submit, cpu=1):
    return ev("uwdf-engine", 100, cpu, us, "syscalls:sys_enter_io_uring_enter",
              "fd: 0x00000000, to_submit: 0x%08x, min_complete: 0x%08x, flags: 0x00000011, argp: 0x00000000, "
              "argsz: 0x00000008" % (1 if submit else 0, 0 if submit else 1))


def leave(us, cpu=1):
    return ev("uwdf-engine", 100, cpu, us, "syscalls:sys_exit_io_uring_enter", "0x1")


def switch(comm, tid, cpu, us, prev, state, ncomm, nxt):
    return ev(comm, tid, cpu, us, "sched:sched_switch",
              "prev_comm=%s prev_pid=%d prev_prio=120 prev_state=%s ==> next_comm=%s next_pid=%d next_prio=120"
              % (comm, prev, state, ncomm, nxt))


def wakeup(comm, tid, cpu, us, wcomm, pid, target):
    return ev(comm, tid, cpu, us, "sched:sched_wakeup", "comm=%s pid=%d prio=120 target_cpu=%03d" % (wcomm, pid, target))


def rq(comm, tid, cpu, us, what, dev, sector):
    if what == "issue":
        return ev(comm, tid, cpu, us, "block:block_rq_issue", "%s R 4096 () %d + 8 0x2,0,4 [%s]" % (dev, sector, comm))
    return ev(comm, tid, cpu, us, "block:block_rq_complete", "%s R () %d + 8 0x2,0,4 [0]" % (dev, sector))


def read(t, device, worker_cpu, preempt=False, cpu=1):
    """One read at t us: submit 1 us, gap 2, worker 2.5 after its wake-up,
    device `device` us, wake 0.5, runq 1.0, post 0.5."""
    iss, cmp = t + 0.5, t + 0.5 + device
    lines = [enter(t, True, cpu), rq("uwdf-engine", 100, cpu, iss, "issue", "7,9", 8 * int(t)),
             wakeup("uwdf-engine", 100, cpu, t + 0.6, "kworker/u8:1", 35, worker_cpu),
             leave(t + 1, cpu)]
    if preempt:
        lines += [switch("uwdf-engine", 100, cpu, t + 1.5, 100, "R", "other", 300),
                  switch("other", 300, cpu, t + 2.5, 300, "S", "uwdf-engine", 100)]
    lines += [enter(t + 3, False, cpu), switch("uwdf-engine", 100, cpu, t + 3.1, 100, "S", "kworker/u8:1", 35),
              rq("kworker/u8:1", 35, cpu, cmp, "complete", "7,9", 8 * int(t)),
              wakeup("kworker/u8:1", 35, cpu, cmp + 0.5, "uwdf-engine", 100, cpu),
              switch("kworker/u8:1", 35, cpu, cmp + 1.5, 35, "S", "uwdf-engine", 100),
              leave(cmp + 2.0, cpu)]
    return lines


def noise(t):
    """Another thread's read on another device, inside the first read."""
    return [rq("fio", 200, 0, t, "issue", "7,0", 4096), rq("fio", 200, 0, t + 0.2, "complete", "7,0", 4096),
            wakeup("fio", 200, 0, t + 0.3, "uwdf-engine", 100, 1)]


def trace():
    a = read(100, 9.5, 1)
    a[4:4] = noise(101.5)  # after the submit's exit: must not end or wake the read
    b = read(200, 100.0, 1, preempt=True, cpu=0)
    return sorted(a + b, key=lambda line: float(line.split("]")[1].split(":")[0]))


def near(a, b):
    return a is not None and abs(a - b) < 0.01


def parts_of_each_read():
    m = load()
    r = m.analyse(m.parse(trace()), "7,9")
    check(r is not None and r["tid"] == 100, "the I/O thread is the one issuing on 7,9: %r" % (r and r["tid"]))
    check(len(r["ios"]) == 2, "two reads, got %d" % len(r["ios"]))
    want = [dict(gap=2.0, device=9.5, worker=2.5, wake=0.5, runq=1.0, post=0.5),
            dict(gap=2.0, device=100.0, worker=2.5, wake=0.5, runq=1.0, post=0.5)]
    for i, (io_, w) in enumerate(zip(r["ios"], want)):
        got = m.parts(io_)
        for k, v in w.items():
            check(near(got[k], v), "read %d: %s %r, want %r" % (i, k, got[k], v))
        total = (io_["t1"] - io_["t0"]) * 1e6
        check(abs(total - (w["device"] + 1.5)) < 0.01, "read %d: latency %.3f" % (i, total))


def switches_and_report():
    m = load()
    r = m.analyse(m.parse(trace()), "7,9")
    check(r["vol"] == 2 and r["invol"] == 1, "voluntary %d, involuntary %d: want 2, 1" % (r["vol"], r["invol"]))
    check(r["by"] == {"other": 1}, "preempted by %r" % dict(r["by"]))
    check(r["migr"] == 1, "migrations %d, want 1 (CPU 1 then CPU 0)" % r["migr"])
    out = io.StringIO()
    m.report(r, out)
    text = out.getvalue()
    check("2 I/Os" in text, text)
    check("for 2 I/Os, 1 of them on its CPU" in text, "the worker on the thread's CPU once: " + text)
    check("slowest 0.1%  (1, mean 101.5 us)" in text and "device 100.0" in text, text)


if __name__ == "__main__":
    bl.main([
        ("parts_of_each_read", parts_of_each_read),
        ("switches_and_report", switches_and_report),
    ])
