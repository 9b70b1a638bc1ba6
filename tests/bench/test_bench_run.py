#!/usr/bin/env python3
"""uwdf-bench: short real runs.

- every --api (async, sync, flt, and stack when this build has it) on every
  engine (io_uring, libaio, null), on a file, and on a loop device when root;
- --api=stack through 1, 2 and 4 filters, forwarding or sending and
  forgetting, writes and verified reads;
- --verify=crc32c: a block corrupted behind uwdf's back fails the read-verify
  run (exit 1, the offset named), --verify_fatal stops at the first;
- no --filename: the file is made in the current directory and removed after
  (also when interrupted), an existing one is used and kept;
- --eta: the status line on a terminal or with --eta=always, never on a pipe
  by default or with --eta=never;
- the final report follows the last job's end at once, not at the monitor's
  next tick.
"""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import Failed, Skip, check  # noqa: E402

ENGINES = ("io_uring", "libaio", "null")
BS = 4096
SIZE = 256 * 1024
NBLOCKS = SIZE // BS
# The quick job of quickstart run and the README (uwdf-bench, as fio, runs
# nothing without a job); its generated file, <name>.<clone>.0.
QUICK = ["--name=quick", "--rw=randread", "--bs=4k", "--iodepth=32", "--direct=1", "--runtime=10", "--time_based"]
DEFAULT_FILE = "quick.0.0"


def apis():
    """The --api values this build accepts: async, sync, flt, and stack once
    it is there (an option before --help is checked before the help)."""
    found = []
    for api in ("async", "sync", "flt", "stack"):
        rc, _, _ = bl.run([f"--api={api}", "--help"])
        if rc == 0:
            found.append(api)
    check(found[:3] == ["async", "sync", "flt"], f"--api values accepted: {found}")
    return found


def one_job(rep):
    check(len(rep["jobs"]) == 1, f"{len(rep['jobs'])} jobs")
    return rep["jobs"][0]


def every_api_on_every_engine():
    with bl.TempDir() as d:
        target = os.path.join(d, "smoke.dat")
        for api in apis():
            for engine in ENGINES:
                label = f"--api={api} --ioengine={engine}"
                rep = bl.run_json(["--name=s", f"--filename={target}", f"--size={SIZE}", f"--bs={BS}",
                                   "--rw=randrw", "--iodepth=4", f"--api={api}", f"--ioengine={engine}"], cwd=d)
                j = one_job(rep)
                ios = j["read"]["total_ios"] + j["write"]["total_ios"]
                check(j["error"] == 0, f"{label}: error {j['error']}")
                check(ios == NBLOCKS, f"{label}: {ios} I/Os over a {NBLOCKS}-block region")
                check(j["read"]["total_ios"] and j["write"]["total_ios"], f"{label}: randrw did not mix")
                check(j["uwdf"]["backend"] == engine, f"{label}: backend {j['uwdf']['backend']}")
                check(j["uwdf"]["api"] == api, f"{label}: api {j['uwdf']['api']}")
                check(j["read"]["clat_ns"]["N"] == j["read"]["total_ios"], f"{label}: latency samples")


def request_options_on_each_api():
    """--reuse=0, --request_timeout, --numjobs, write-through and flushes: short
    time-bound runs that must end without an error."""
    with bl.TempDir() as d:
        target = os.path.join(d, "opts.dat")
        runs = [[f"--api={a}", "--reuse=0"] for a in apis()]
        runs += [["--api=async", "--request_timeout=5000", "--ioengine=io_uring"],
                 ["--api=sync", "--request_timeout=5000", "--ioengine=libaio"],
                 ["--api=async", "--ioengine=null", "--numjobs=2"],
                 ["--api=async", "--rw=randwrite", "--sync=1", "--fsync=8"],
                 ["--api=sync", "--rw=write", "--fdatasync=4"]]
        for extra in runs:
            flushes = "--fsync=8" in extra or "--fdatasync=4" in extra
            # A count, not a time, where flushes are checked: a slow (sanitized,
            # loaded) run may write fewer than --fsync blocks in 150 ms.
            bound = ["--number_ios=64"] if flushes else ["--runtime=150ms", "--time_based"]
            rep = bl.run_json(["--name=o", f"--filename={target}", f"--size={SIZE}", "--rw=randread",
                               "--iodepth=4"] + bound + extra, cwd=d)
            for j in rep["jobs"]:
                ios = j["read"]["total_ios"] + j["write"]["total_ios"]
                check(j["error"] == 0 and ios > 0, f"{extra}: error {j['error']}, {ios} I/Os")
                if flushes:
                    check(ios == 64, f"{extra}: {ios} I/Os, not --number_ios")
                    check(j["sync"]["total_ios"] > 0, f"{extra}: no flush")


def stacked_filters_carry_the_data():
    """--api=stack with 1, 2 and 4 filter layers (--stack_layers), each
    forwarding with a completion routine or sent and forgotten
    (--stack_forget): a write pass with crc32c headers, then a random read
    pass that verifies every block, end without an error on the engines
    that move data; the null engine runs the same stacks."""
    if "stack" not in apis():
        raise Skip("no --api=stack in this build")
    with bl.TempDir() as d:
        target = os.path.join(d, "stack.dat")
        for layers in (1, 2, 4):
            for forget in (0, 1):
                for engine in ENGINES:
                    label = f"--stack_layers={layers} --stack_forget={forget} --ioengine={engine}"
                    common = [f"--filename={target}", f"--size={SIZE}", f"--bs={BS}", "--iodepth=8", "--api=stack",
                              f"--stack_layers={layers}", f"--stack_forget={forget}", f"--ioengine={engine}"]
                    # (a write pass with --verify reads its blocks back too)
                    passes = [(["--name=w", "--rw=write"], "write"), (["--name=r", "--rw=randread"], "read")]
                    for p, ddir in passes:
                        extra = [] if engine == "null" else ["--verify=crc32c", "--verify_fatal=1"]
                        rep = bl.run_json(p + common + extra, cwd=d)
                        j = one_job(rep)
                        ios = j[ddir]["total_ios"]
                        check(j["error"] == 0, f"{label} {p}: error {j['error']}")
                        check(ios == NBLOCKS, f"{label} {p}: {ios} {ddir}s over a {NBLOCKS}-block region")
                        check(j["uwdf"]["backend"] == engine, f"{label}: backend {j['uwdf']['backend']}")


def loop_device_direct():
    if not bl.have_root():
        raise Skip("needs root for losetup")
    with bl.TempDir() as d:
        backing = bl.make_data_file(os.path.join(d, "backing.img"), 4 << 20)
        p = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", backing], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if p.returncode != 0:
            raise Skip(f"losetup failed: {p.stderr.strip()}")
        dev = p.stdout.strip()
        try:
            for engine in ("io_uring", "libaio"):
                for api in ("async", "sync"):
                    rep = bl.run_json(["--name=l", f"--filename={dev}", "--direct=1", "--rw=randread", "--bs=4k",
                                       "--iodepth=8", f"--ioengine={engine}", f"--api={api}", "--number_ios=500"],
                                      cwd=d)
                    j = one_job(rep)
                    check(j["error"] == 0 and j["read"]["total_ios"] == 500,
                          f"{dev} {engine} {api}: error {j['error']}, {j['read']['total_ios']} reads")
                # write with verify through the device, read back by the job
                rep = bl.run_json(["--name=lv", f"--filename={dev}", "--direct=1", "--rw=randwrite", "--bs=8k",
                                   "--size=1m", "--iodepth=4", f"--ioengine={engine}", "--verify=crc32c"], cwd=d)
                j = one_job(rep)
                check(j["error"] == 0 and j["uwdf"]["verified_blocks"] == 128,
                      f"{dev} {engine} verify: error {j['error']}, {j['uwdf']['verified_blocks']} verified")
        finally:
            subprocess.run(["losetup", "-d", dev], timeout=60)


# ---- verify ----

def corrupt(path, offset, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def job_cpu_counts_a_shared_thread_once():
    """64 files on one engine share its completion thread: the job's CPU
    counts that thread once, so it stays within what the machine has (it
    once summed the thread per file: ~570% on 2 CPUs)."""
    with bl.TempDir() as d:
        for api in ("async", "sync"):
            rep = bl.run_json(["--name=c", "--nrfiles=64", "--size=16m", "--rw=randread", f"--bs={BS}",
                               "--iodepth=16", f"--api={api}", "--ioengine=io_uring", "--runtime=600ms",
                               "--time_based"], cwd=d, env=dict(os.environ, UWDF_ENGINES="1"))
            j = one_job(rep)
            cpu = j["usr_cpu"] + j["sys_cpu"]
            check(j["error"] == 0 and j["read"]["total_ios"] > 0, f"{api}: error {j['error']}")
            check(cpu <= 100.0 * (os.cpu_count() or 1) + 10.0, f"{api}: job CPU {cpu:.0f}%")


def run_rss(args, cwd):
    """Runs uwdf-bench with args (JSON reports) on its own; (its final
    report, peak RSS in KiB)."""
    env = dict(os.environ)
    env.pop("UWDF_BACKEND", None)
    env.update(bl.BENCH_ENV)
    with open(os.path.join(cwd, "rss.json"), "w+") as out:
        p = subprocess.Popen([bl.BENCH] + args + ["--output-format=json"], cwd=cwd, env=env,
                             stdout=out, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        check(os.waitstatus_to_exitcode(status) == 0, f"{args}: exit status {status}")
        out.seek(0)
        text, reps, at = out.read(), [], 0
        dec = json.JSONDecoder()
        while text[at:].strip():  # the interim reports, then the final one
            rep, end = dec.raw_decode(text[at:].lstrip())
            at = len(text) - len(text[at:].lstrip()) + end
            reps.append(rep)
        check(len(reps) >= 1, f"{args}: no report")
        return reps[-1], ru.ru_maxrss


def statistics_stay_flat_in_the_number_of_files():
    """A job's statistics are kept per completion thread, not per file:
    2,000 files cost the run about what one file does (per file they were
    574 MB against 27 MB), and every I/O is still counted."""
    if bl.WRAP:
        raise Skip("peak RSS of the wrapper, not of uwdf-bench")
    ios = 40000
    rss = {}
    with bl.TempDir() as d:
        for n in (1, 2000):
            rep, rss[n] = run_rss(["--name=m", "--ioengine=null", "--rw=randread", f"--bs={BS}", f"--nrfiles={n}",
                                   f"--size={n}m", f"--number_ios={ios}", "--time_based", "--runtime=60",
                                   "--iodepth=32", "--eta=never"], d)
            j = one_job(rep)
            check(j["error"] == 0 and j["read"]["total_ios"] == ios,
                  f"{n} files: error {j['error']}, {j['read']['total_ios']} of {ios} reads counted")
    # ~2 MiB more here (the targets), ~23 MiB under ASan; per file: +547 MiB
    check(rss[2000] <= rss[1] + 64 * 1024, f"peak RSS {rss[1]} KiB with 1 file, {rss[2000]} KiB with 2,000")


def verify_catches_a_corrupted_block():
    with bl.TempDir() as d:
        for engine in ("io_uring", "libaio"):
            for api in ("async", "sync"):
                label = f"{engine} {api}"
                f = os.path.join(d, f"v-{engine}-{api}.dat")
                common = [f"--filename={f}", f"--bs={BS}", f"--ioengine={engine}", f"--api={api}",
                          "--verify=crc32c"]
                # Written and read back by the write job itself.
                j = one_job(bl.run_json(["--name=w", f"--size={SIZE}", "--rw=write", "--iodepth=4"] + common, cwd=d))
                check(j["error"] == 0 and j["uwdf"]["verified_blocks"] == NBLOCKS,
                      f"{label}: write+verify {j['uwdf']['verified_blocks']} of {NBLOCKS} blocks")
                # A read-only job checks every block it reads.
                j = one_job(bl.run_json(["--name=r", "--rw=read"] + common, cwd=d))
                check(j["uwdf"]["verified_blocks"] == NBLOCKS and j["uwdf"]["verify_errors"] == 0,
                      f"{label}: clean read-verify {j['uwdf']}")
                # Behind uwdf's back: the payload of block 5, the header
                # (offset field) of block 9.
                corrupt(f, 5 * BS + 100, b"\xde\xad\xbe\xef")
                corrupt(f, 9 * BS + 8, b"\x01")
                for rw, depth in (("read", 1), ("randread", 8)):
                    rc, out, err = bl.run(["--name=r", f"--rw={rw}", f"--iodepth={depth}",
                                           "--output-format=json"] + common, cwd=d)
                    check(rc == 1, f"{label} {rw}: exit {rc} after corruption")
                    fails = [l for l in err.splitlines() if "verify failed" in l]
                    check(len(fails) == 2, f"{label} {rw}: {len(fails)} failures reported: {err}")
                    check(any(f"offset {5 * BS} " in l and "crc32c" in l for l in fails),
                          f"{label} {rw}: block 5 (offset {5 * BS}) not named: {fails}")
                    check(any(f"offset {9 * BS} " in l and "header offset" in l for l in fails),
                          f"{label} {rw}: block 9 (offset {9 * BS}) not named: {fails}")
                    j = one_job(json.loads(out))
                    check(j["error"] != 0 and j["uwdf"]["verify_errors"] == 2 and
                          j["uwdf"]["verified_blocks"] == NBLOCKS - 2, f"{label} {rw}: {j['error']} {j['uwdf']}")
                # --verify_fatal: stops at the first (sequential, one in flight).
                rc, out, err = bl.run(["--name=r", "--rw=read", "--verify_fatal", "--output-format=json"] + common,
                                      cwd=d)
                fails = [l for l in err.splitlines() if "verify failed" in l]
                check(rc == 1 and len(fails) == 1 and f"offset {5 * BS} " in fails[0],
                      f"{label} verify_fatal: exit {rc}: {err}")
                j = one_job(json.loads(out))
                check(j["read"]["total_ios"] == 6 and j["uwdf"]["verified_blocks"] == 5,
                      f"{label} verify_fatal: {j['read']['total_ios']} reads, {j['uwdf']['verified_blocks']} verified")
                # The direct path sees the same blocks.
                if api == "async":
                    rc, out, err = bl.run(["--name=r", "--rw=read", "--direct=1", "--output-format=json"] + common,
                                          cwd=d)
                    check(rc == 1 and err.count("verify failed") == 2, f"{label} direct: exit {rc}: {err}")


# ---- the default target ----

def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise Failed(f"timed out waiting for {what}")


def start(args, cwd, **kw):
    env = dict(os.environ)
    env.pop("UWDF_BACKEND", None)
    env.update(bl.BENCH_ENV)
    opts = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    opts.update(kw)
    return subprocess.Popen(list(bl.WRAP) + [bl.BENCH] + list(args), cwd=cwd, env=env, **opts)


def many_files_each_service_type():
    """--nrfiles files named by --filename_format (in a directory it makes),
    --size divided among them: sequential writes with each
    --file_service_type do one I/O per block of the job, without error;
    roundrobin and sequential leave no block of any file unwritten; the
    files the run created go at the end, files that existed stay."""
    nfiles, per = 8, 256 << 10
    blocks = nfiles * per // BS
    with bl.TempDir() as d:
        for svc in ["roundrobin", "roundrobin:3", "sequential", "sequential:5", "random", "random:2"]:
            fmt = os.path.join(d, "sub", "f.$filenum")
            # First run: the bench makes the directory and the files and removes the files.
            rep = bl.run_json(["--name=mf", f"--nrfiles={nfiles}", f"--filename_format={fmt}",
                               f"--size={nfiles * per}", "--rw=write", f"--bs={BS}",
                               f"--file_service_type={svc}", "--iodepth=4", "--ioengine=io_uring"], cwd=d)
            j = one_job(rep)
            check(j["error"] == 0, f"{svc}: error {j['error']}")
            check(j["write"]["total_ios"] == blocks, f"{svc}: {j['write']['total_ios']} writes, want {blocks}")
            check(os.listdir(os.path.join(d, "sub")) == [], f"{svc}: left behind {os.listdir(os.path.join(d, 'sub'))}")
            if svc.startswith("random"):
                continue
            # Files that exist (zeros) are used and kept: every block written.
            paths = [os.path.join(d, "sub", f"f.{k}") for k in range(nfiles)]
            for p in paths:
                with open(p, "wb") as f:
                    f.write(bytes(per))
            rep = bl.run_json(["--name=mf", f"--nrfiles={nfiles}", f"--filename_format={fmt}",
                               f"--size={nfiles * per}", "--rw=write", f"--bs={BS}",
                               f"--file_service_type={svc}", "--iodepth=4", "--ioengine=io_uring"], cwd=d)
            check(one_job(rep)["error"] == 0, f"{svc}: error on existing files")
            for p in paths:
                with open(p, "rb") as f:
                    data = f.read()
                check(len(data) == per, f"{svc}: {p} is {len(data)} bytes")
                zero = bytes(BS)
                unwritten = [i for i in range(0, per, BS) if data[i:i + BS] == zero]
                check(not unwritten, f"{svc}: {p}: blocks at {unwritten[:4]} never written")
                os.unlink(p)


def engine_threads(pid):
    """The process's engine threads now (named uwdf-engine)."""
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                n += f.read().strip() == "uwdf-engine"
        except OSError:
            pass
    return n


def a_jobs_files_share_one_engine():
    """--engine_group (default 1): the files of a job join one engine of a
    pool of two, as a fio job's files share its one ring (one engine thread
    in the whole run); --engine_group=0 leaves them to the pool, which
    spreads them over its two engines."""
    if bl.WRAP:
        return  # the threads are the wrapper's to name
    with bl.TempDir() as d:
        for group, want in ((None, 1), (1, 1), (0, 2)):
            args = ["--name=g", "--nrfiles=8", "--size=8m", "--rw=randread", f"--bs={BS}", "--iodepth=8",
                    "--ioengine=io_uring", "--runtime=1500ms", "--time_based", "--output-format=json"]
            if group is not None:
                args.append(f"--engine_group={group}")
            env = dict(os.environ)
            env.pop("UWDF_BACKEND", None)
            env.update(bl.BENCH_ENV)
            env["UWDF_ENGINES"] = "2"
            p = subprocess.Popen([bl.BENCH] + args, cwd=d, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen = 0
            try:
                while p.poll() is None:
                    seen = max(seen, engine_threads(p.pid))
                    time.sleep(0.01)
            finally:
                if p.poll() is None:
                    p.kill()
                out, err = p.communicate()
            check(p.returncode == 0, f"engine_group={group}: exit {p.returncode}: {err}")
            j = one_job(json.loads(out))
            check(j["error"] == 0 and j["read"]["total_ios"] > 0, f"engine_group={group}: error {j['error']}")
            check(seen == want, f"engine_group={group}: {seen} engine threads, want {want}")


def size_of(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def default_target_is_created_and_removed():
    with bl.TempDir() as d:
        path = os.path.join(d, DEFAULT_FILE)
        # The default size (1 GiB), allocated without writing (null engine).
        p = start(QUICK + ["--ioengine=null", "--runtime=400ms"], d)
        wait_for(lambda: size_of(path) == 1 << 30, 30, f"a 1 GiB {DEFAULT_FILE}")
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, f"exit {p.returncode}: {err}")
        check(f"Laying out IO file (1 file / 1024MiB)" in out, f"no layout line: {out[:300]}")
        check(os.listdir(d) == [], f"left behind: {os.listdir(d)}")
        # A smaller one through a real engine (written with data first).
        p = start(QUICK + ["--size=4m", "--runtime=400ms", "--output-format=json"], d)
        wait_for(lambda: size_of(path) == 4 << 20, 30, f"a 4 MiB {DEFAULT_FILE}")
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, f"exit {p.returncode}: {err}")
        check(json.loads(out)["jobs"][0]["read"]["total_ios"] > 0, "no reads")
        check(os.listdir(d) == [], f"left behind: {os.listdir(d)}")


def existing_default_target_is_kept():
    with bl.TempDir() as d:
        path = bl.make_data_file(os.path.join(d, DEFAULT_FILE), 2 << 20, seed=7)
        with open(path, "rb") as f:
            before = f.read()
        rc, out, err = bl.run(QUICK + ["--size=2m", "--runtime=200ms"], cwd=d)
        check(rc == 0, f"exit {rc}: {err}")
        with open(path, "rb") as f:
            check(f.read() == before, "the existing file changed")
        check(os.listdir(d) == [DEFAULT_FILE], f"files: {os.listdir(d)}")


def interrupted_run_removes_the_default_target():
    with bl.TempDir() as d:
        path = os.path.join(d, DEFAULT_FILE)
        # One SIGINT: the jobs stop, the report is printed, the file goes
        # (no report when it came before the jobs started: slow under valgrind).
        p = start(QUICK + ["--ioengine=null", "--size=4m", "--runtime=60"], d)
        wait_for(lambda: size_of(path) == 4 << 20, 30, DEFAULT_FILE)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        check("interrupted" in err, f"exit {p.returncode}, no interruption message: {err}")
        if "stopping the jobs" in err:
            check(p.returncode == 0 and "IOPS=" in out, f"exit {p.returncode}, no report after the interruption")
        check(os.listdir(d) == [], f"left behind after SIGINT: {os.listdir(d)}")
        # Two: abort at once (exit 130), still removing it.
        p = start(QUICK + ["--ioengine=null", "--size=4m", "--runtime=60"], d)
        wait_for(lambda: size_of(path) == 4 << 20, 30, DEFAULT_FILE)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        # 130 when the second came while the jobs ran (perhaps before the
        # monitor said "interrupted": it looks every 25 ms, slower under
        # valgrind); 0 or 1 when the first had already ended the run (or came
        # before the jobs started).
        check(p.returncode == 130 or (p.returncode in (0, 1) and "interrupted" in err),
              f"exit {p.returncode} after two SIGINTs: {err}")
        check(os.listdir(d) == [], f"left behind after two SIGINTs: {os.listdir(d)}")


# ---- the ETA line ----

ETA_RE = re.compile(r"Jobs: 1 \(f=1\): \[r\(1\)\]\[\d+\.\d%\]\[r=[^\]]+B/s\]\[r=[^\]]+ IOPS\]\[eta \d\dm:\d\ds\]")
# 2.5 s: the line comes once a second, and a loaded machine may take a
# second to set the job up; at least one line must show the job running.
ETA_ARGS = ["--name=e", "--ioengine=null", "--size=1m", "--rw=randread", "--runtime=2500ms", "--time_based"]


def eta_on_a_pipe(eta, d):
    args = ETA_ARGS + [f"--filename={d}/eta-{eta}.dat"] + ([f"--eta={eta}"] if eta else [])
    rc, out, err = bl.run(args, cwd=d)
    return rc, out, err


def eta_on_a_tty(eta, d):
    """stderr on a pseudo-terminal; returns what it showed."""
    master, slave = pty.openpty()
    args = ETA_ARGS + [f"--filename={d}/eta-tty-{eta}.dat"] + ([f"--eta={eta}"] if eta else [])
    try:
        p = start(args, d, stderr=slave)
    finally:
        os.close(slave)
    shown = b""
    try:
        while True:
            r, _, _ = select.select([master], [], [], 30)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    out, _ = p.communicate(timeout=60)
    return p.returncode, out, shown.decode(errors="replace")


def eta_line_follows_the_terminal():
    with bl.TempDir() as d:
        cases = {"pipe-always": (eta_on_a_pipe, "always"), "pipe-default": (eta_on_a_pipe, None),
                 "pipe-never": (eta_on_a_pipe, "never"), "tty-default": (eta_on_a_tty, None),
                 "tty-auto": (eta_on_a_tty, "auto"), "tty-never": (eta_on_a_tty, "never")}
        results = {}

        def worker(name, fn, eta):
            try:
                results[name] = fn(eta, d)
            except Exception as e:  # reported below
                results[name] = e

        # The line comes once a second: run the cases side by side.
        threads = [threading.Thread(target=worker, args=(n, fn, eta)) for n, (fn, eta) in cases.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name in cases:
            r = results.get(name)
            if isinstance(r, Exception):
                raise Failed(f"{name}: {r!r}")
            rc, out, err = r
            check(rc == 0, f"{name}: exit {rc}: {err}")
            check("IOPS=" in out and "Jobs:" not in out, f"{name}: the report on stdout is wrong")
            want = name in ("pipe-always", "tty-default", "tty-auto")
            lines = [l for l in re.split(r"[\r\n]", err) if l.strip()]
            if want:
                check(any(ETA_RE.fullmatch(l.strip()) for l in lines),
                      f"{name}: no fio-style status line in {err!r}")
                # Erased at the end: blanks over the last line (text mode
                # reads the carriage returns as newlines).
                tail = re.split(r"[\r\n]", err.rstrip("\r\n"))[-1]
                check(tail.strip() == "" and len(tail) >= len(lines[-1].strip()) if tail else False,
                      f"{name}: status line not cleared: {err[-100:]!r}")
            else:
                check("Jobs:" not in err and "eta" not in err, f"{name}: unexpected status output {err!r}")


def final_report_follows_the_jobs_end():
    # The monitor wakes when the last job ends: between the job thread's exit
    # and the report's first write, no wait for its next 25 ms tick. A job
    # of 1,000 null reads ends before the first tick, which the old monitor
    # then slept out (gaps of 24-26 ms under strace; now about 2 ms).
    strace = bl.tool("strace", "strace")
    gaps = []
    with bl.TempDir() as d:
        for i in range(5):
            trace = os.path.join(d, "trace%d" % i)
            rc, _, err = bl.run(["--name=g", "--ioengine=null", "--rw=randread", "--bs=4k", "--size=1m",
                                 "--number_ios=1000", "--output-format=json"], cwd=d,
                                wrapper=(strace, "-f", "-qq", "-ttt", "-e", "trace=write,exit", "-o", trace))
            check(rc == 0, f"exit {rc}: {err.strip()}")
            exits, report = [], None
            with open(trace) as f:
                for line in f:
                    p = line.split()
                    if len(p) < 3:
                        continue
                    if p[2].startswith("exit("):
                        exits.append(float(p[1]))
                    elif p[2].startswith("write(1,") and report is None:
                        report = float(p[1])
            ended = [t for t in exits if report is not None and t < report]
            check(ended, f"no thread exit before the report in {trace}")
            gaps.append((report - max(ended)) * 1e3)
    gaps.sort()
    check(gaps[len(gaps) // 2] < 12, "the report came %.1f ms after the job's end (median; all: %s)"
          % (gaps[len(gaps) // 2], " ".join("%.1f" % g for g in gaps)))


if __name__ == "__main__":
    bl.main([
        ("every_api_on_every_engine", every_api_on_every_engine),
        ("request_options_on_each_api", request_options_on_each_api),
        ("stacked_filters_carry_the_data", stacked_filters_carry_the_data),
        ("loop_device_direct", loop_device_direct),
        ("many_files_each_service_type", many_files_each_service_type),
        ("a_jobs_files_share_one_engine", a_jobs_files_share_one_engine),
        ("job_cpu_counts_a_shared_thread_once", job_cpu_counts_a_shared_thread_once),
        ("statistics_stay_flat_in_the_number_of_files", statistics_stay_flat_in_the_number_of_files),
        ("verify_catches_a_corrupted_block", verify_catches_a_corrupted_block),
        ("default_target_is_created_and_removed", default_target_is_created_and_removed),
        ("existing_default_target_is_kept", existing_default_target_is_kept),
        ("interrupted_run_removes_the_default_target", interrupted_run_removes_the_default_target),
        ("eta_line_follows_the_terminal", eta_line_follows_the_terminal),
        ("final_report_follows_the_jobs_end", final_report_follows_the_jobs_end),
    ])
