#!/usr/bin/env python3
"""uwdf-bench: command-line options and fio job files.

Every unknown or invalid option (on the command line or in a job file) must
give one message naming it, exit 1, and run nothing: no file created or
changed, no report, no engine set up (checked with strace when it works
here). Good command lines and job files must mean what they mean to fio:
[global] sections apply to the job sections after them, command-line options
before any --name act as a [global] read before the job files.
"""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import Failed, Skip, check  # noqa: E402

# (arguments, the option the message must name). Appended to a good job
# (see BASE) unless the bad option must come first.
BAD_OPTIONS = [
    (["--bogus"], "bogus"),
    (["--bogus=1"], "bogus"),
    (["-x"], "-x"),
    (["--"], "--"),
    (["--size=abc"], "size"),
    (["--size=0"], "size"),
    (["--size=-4k"], "size"),
    (["--size=4q"], "size"),
    (["--size=101%"], "size"),
    (["--bs=0"], "bs"),
    (["--bs=4k,8k,16k,32k"], "bs"),  # reads, writes, trims: three at most
    (["--bs=4k,0"], "bs"),
    (["--bsrange=4k"], "bsrange"),
    (["--bsrange=4k-x"], "bsrange"),
    (["--bssplit=4k/60:8k/50"], "bssplit"),  # more than 100%
    (["--bssplit=4k/50:8k/40"], "bssplit"),  # less, with none blank
    (["--bssplit=4k/x"], "bssplit"),
    (["--bssplit="], "bssplit"),
    (["--bs=1k-4k"], "bs"),
    (["--bs=512m"], "bs"),
    (["--blocksize=x"], "blocksize"),
    (["--rw=foo"], "rw"),
    (["--rw=randtrimwrite"], "rw"),
    (["--readwrite=sideways"], "readwrite"),
    (["--iodepth=0"], "iodepth"),
    (["--iodepth=65537"], "iodepth"),
    (["--iodepth=x"], "iodepth"),
    (["--iodepth=4.5"], "iodepth"),
    (["--iodepth_batch_submit=-1"], "iodepth_batch_submit"),
    (["--numjobs=0"], "numjobs"),
    (["--numjobs=4097"], "numjobs"),
    (["--runtime=-1"], "runtime"),
    (["--runtime=5q"], "runtime"),
    (["--ramp_time=x"], "ramp_time"),
    (["--number_ios=x"], "number_ios"),
    (["--number_ios=10%"], "number_ios"),
    (["--offset=x"], "offset"),
    (["--rwmixread=101"], "rwmixread"),
    (["--rwmixwrite=-1"], "rwmixwrite"),
    (["--ioengine=psync"], "ioengine"),
    (["--ioengine=spdk"], "ioengine"),
    (["--api=bogus"], "api"),
    (["--verify=md5"], "verify"),
    (["--direct=2"], "direct"),
    (["--buffered=maybe"], "buffered"),
    (["--thread=maybe"], "thread"),
    (["--time_based=yes please"], "time_based"),
    (["--reuse=2"], "reuse"),
    (["--verify_fatal=x"], "verify_fatal"),
    (["--group_reporting=x"], "group_reporting"),
    (["--fixedbufs=3"], "fixedbufs"),
    (["--registerfiles=3"], "registerfiles"),
    (["--timeout=abc"], "timeout"),
    (["--request_timeout=abc"], "request_timeout"),
    (["--request_timeout=2d"], "request_timeout"),
    (["--runtime=(2*"], "runtime"),
    (["--bs=(4k/0)"], "bs"),
    (["--randseed=x"], "randseed"),
    (["--randrepeat=2"], "randrepeat"),
    (["--sync=foo"], "sync"),
    (["--fsync=-1"], "fsync"),
    (["--fdatasync=x"], "fdatasync"),
    (["--name="], "name"),
    (["--filename="], "filename"),
    (["--filename=-"], "filename"),
    (["--nrfiles=0"], "nrfiles"),
    (["--nrfiles=65537"], "nrfiles"),
    (["--nr_files=x"], "nr_files"),
    (["--filename_format="], "filename_format"),
    (["--filename_format=$clientuid.$filenum"], "filename_format"),
    (["--file_service_type=bogus"], "file_service_type"),
    (["--file_service_type=zipf:1.2"], "file_service_type"),
    (["--file_service_type=random:0"], "file_service_type"),
    (["--file_service_type=roundrobin:x"], "file_service_type"),
    (["--output="], "output"),
    (["--output-format=xml"], "output-format"),
    (["--output-format="], "output-format"),
    (["--eta=sometimes"], "eta"),
    (["--minimal=1"], "minimal"),
    # a value-taking option at the end, or followed by another option
    (["--size"], "size"),
    (["--rw", "--bs=4k"], "rw"),
    (["--output"], "output"),
    # combinations refused before anything runs
    (["--direct=1", "--bs=100"], "bs"),
    (["--direct=1", "--rw=write", "--bs=4k,1000"], "bs"),
    (["--verify=crc32c", "--rw=write", "--bsrange=4k-8k"], "verify"),
    (["--verify=crc32c", "--bs=16"], "verify"),
    (["--verify=crc32c", "--rw=trim"], "verify"),
    (["--verify=crc32c", "--ioengine=null", "--rw=write"], "verify"),
    (["--api=flt", "--verify=crc32c", "--rw=write"], "verify"),
    (["--api=flt", "--request_timeout=100"], "request_timeout"),
    # fio's limits of random_distribution (fio refuses the same: test_bench_random)
    (["--random_distribution=zipf:1"], "random_distribution"),
    (["--random_distribution=pareto:1"], "random_distribution"),
    (["--random_distribution=pareto:0"], "random_distribution"),
    (["--random_distribution=normal:100"], "random_distribution"),
    (["--random_distribution=zipf:1.2:1.5"], "random_distribution"),
    (["--random_distribution=zoned:60/10:30/90"], "random_distribution"),
    (["--random_distribution=zoned:50/50"], "random_distribution"),
    (["--random_distribution=zoned"], "random_distribution"),
    (["--random_distribution=bogus"], "random_distribution"),
    (["--random_distribution=zipf:x"], "random_distribution"),
    (["--norandommap=2"], "norandommap"),
    (["--write_iops_log=x", "--log_avg_msec=-1"], "log_avg_msec"),
    (["--write_bw_log="], "write_bw_log"),
    (["--api=flt", "--rw=trim"], "rw"),
    (["--api=flt", "--fsync=4", "--rw=write"], "fsync"),
    (["--api=flt", "--sync=1", "--rw=write"], "sync"),
]

# Refused wherever they appear: first on the command line.
BAD_FIRST = [
    (["-", "--name=j"], "stdin"),
    (["--help=1"], "help"),
]


def base_args(d):
    """A good job that would create new.dat and report.txt if it ran."""
    return ["--name=j", f"--filename={d}/new.dat", "--size=1m", "--ioengine=null", "--number_ios=16",
            f"--output={d}/report.txt"]


def snapshot(d):
    """Names, sizes, contents and mtimes of everything in d."""
    snap = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        st = os.stat(p)
        with open(p, "rb") as f:
            snap[name] = (st.st_size, st.st_mtime_ns, f.read())
    return snap


HAVE_STRACE = None
TRACED = "io_uring_setup,io_setup,io_submit,pwrite64,pwritev,pwritev2,fallocate,ftruncate,unlink," \
         "unlinkat,openat,open,creat,mkdir,clone,clone3"


def trace_violations(trace, d):
    """Syscalls that mean the run started: an engine, a write, a file opened
    for writing or in the test directory, a thread."""
    bad = []
    for line in trace.splitlines():
        if re.search(r"= -1 E", line):
            continue  # failed: the libtool wrapper's shell probes /dev/tty
        if re.search(r'"/tmp/tsan\.rodata\.\d+"', line):
            continue  # ThreadSanitizer's runtime (--enable-tsan) maps its own file before main
        if re.search(r"\b(io_uring_setup|io_setup|io_submit|pwrite64|pwritev2?|fallocate|ftruncate|"
                     r"unlink|unlinkat|mkdir)\(", line):
            bad.append(line)
        elif re.search(r"\b(openat|open|creat)\(", line):
            if re.search(r"O_WRONLY|O_RDWR|O_CREAT", line) and "/dev/null" not in line:
                bad.append(line)
            elif d in line and not re.search(r'\.fio", O_RDONLY', line):
                bad.append(line)  # only the job files may be read
        elif re.search(r"\bclone3?\(", line) and "CLONE_THREAD" in line:
            bad.append(line)
    return bad


def expect_refused(args, option, d, where=""):
    """Runs args in d; checks the refusal and that nothing ran. Then again
    under strace, when it works here, to see that no engine, write or thread
    was started (LeakSanitizer cannot run under ptrace: off for that run)."""
    global HAVE_STRACE
    if HAVE_STRACE is None:
        HAVE_STRACE = bl.strace_usable()
    before = snapshot(d)
    label = " ".join(args)
    rc, out, err = bl.run(args, cwd=d)
    lines = err.splitlines()
    check(rc == 1, f"[{label}]: exit {rc}, expected 1 (stderr: {err.strip()})")
    check(out == "", f"[{label}]: printed a report: {out[:300]}")
    check(len(lines) == 1, f"[{label}]: expected one message, got {len(lines)}: {err.strip()}")
    check(lines[0].startswith("uwdf-bench: "), f"[{label}]: message without the program name: {lines[0]}")
    if option:
        check(re.search(r"(?<![\w-])-{0,2}" + re.escape(option) + r"(?![\w-])", lines[0]),
              f"[{label}]: message does not name '{option}': {lines[0]}")
    if where:
        check(where in lines[0], f"[{label}]: message does not say where ({where}): {lines[0]}")
    check(snapshot(d) == before, f"[{label}]: files changed: {sorted(os.listdir(d))}")
    if not HAVE_STRACE:
        return
    tr = os.path.join(os.path.dirname(d), os.path.basename(d) + ".trace")
    try:
        rc, _, err = bl.run(args, cwd=d,
                            wrapper=["strace", "-f", "-qq", "-o", tr, "-e", "trace=" + TRACED])
        with open(tr) as f:
            trace = f.read()
    finally:
        if os.path.exists(tr):
            os.unlink(tr)
    check(rc == 1, f"[{label}]: exit {rc} under strace: {err.strip()}")
    bad = trace_violations(trace, d)
    check(not bad, f"[{label}]: the run started: " + "; ".join(bad[:5]))
    check(snapshot(d) == before, f"[{label}]: files changed under strace")


def bad_command_line_options_are_refused_and_nothing_runs():
    with bl.TempDir() as d:
        bl.make_data_file(os.path.join(d, "existing.dat"), 64 * 1024)
        for extra, option in BAD_OPTIONS:
            if option is None:
                continue
            expect_refused(base_args(d) + extra, option, d)
            # The same option before the job and as a [global] option.
            if not any(a in ("--size", "--output") for a in extra) and extra[0] != "--":
                expect_refused(extra + base_args(d), option, d)
        for extra, option in BAD_FIRST:
            expect_refused(extra, option, d)
        # A bad option after a good job file: the job file is not run.
        jf = bl.write_file(os.path.join(d, "good.fio"),
                           f"[g]\nfilename={d}/new.dat\nsize=1m\nioengine=null\nnumber_ios=4\n")
        expect_refused([jf, "--bogus"], "bogus", d)


# Job files with one mistake each: (text, option or phrase, line of the
# mistake in text). Each follows a good [global] and job section (JOB_PREFIX,
# 5 lines), which must not run either.
BAD_JOB_FILES = [
    ("[a]\nbogus=1\n", "bogus", 2),
    ("[a]\nbogus\n", "bogus", 2),
    ("[a]\nbs=0\n", "bs", 2),
    ("[a]\nrw=\n", "rw", 2),
    ("[a]\niodepth\n", "iodepth", 2),
    ("[a]\nverify=sha1\n", "verify", 2),
    ("[a]\nioengine=posixaio\n", "ioengine", 2),
    ("[a]\nnumjobs = 0\n", "numjobs", 2),
    ("[a\nrw=read\n", "section", 1),
    ("[]\nrw=read\n", "section", 1),
    ("[a] trailing\nrw=read\n", "section", 1),
    ("[a]\ninclude other.fio\n", "include", 2),
    ("[a]\neta=always\n", "eta", 2),       # command-line only, as in fio
    ("[a]\noutput=x.txt\n", "output", 2),  # command-line only
]
JOB_PREFIX_LINES = 5


def bad_job_files_are_refused_with_file_and_line():
    with bl.TempDir() as d:
        prefix = f"[global]\nioengine=null\nsize=1m\n[ok]\nfilename={d}/new.dat\n"
        assert prefix.count("\n") == JOB_PREFIX_LINES
        for i, (text, what, line) in enumerate(BAD_JOB_FILES):
            jf = bl.write_file(os.path.join(d, f"bad{i}.fio"), prefix + text)
            expect_refused([jf], what, d, where=f"{jf}:{JOB_PREFIX_LINES + line}:")
            os.unlink(jf)
        # An option before any section.
        jf = bl.write_file(os.path.join(d, "nosection.fio"), "; comment\nrw=read\n[a]\n")
        expect_refused([jf], "section", d, where=f"{jf}:2:")
        os.unlink(jf)
        # Only [global]: no job.
        jf = bl.write_file(os.path.join(d, "noglobal.fio"), "[global]\nrw=read\nsize=1m\n")
        expect_refused([jf], "jobs", d)
        os.unlink(jf)
        # A missing job file; the mistake in a second file stops the first.
        expect_refused([os.path.join(d, "missing.fio")], "missing.fio", d)
        good = bl.write_file(os.path.join(d, "good.fio"),
                             f"[g]\nfilename={d}/new.dat\nsize=1m\nioengine=null\n")
        bad = bl.write_file(os.path.join(d, "bad.fio"), "[h]\nnumjobs=0\n")
        expect_refused([good, bad], "numjobs", d, where=f"{bad}:2:")


def jobs_that_cannot_start_leave_no_report_file():
    with bl.TempDir() as d:
        report = os.path.join(d, "report.txt")
        for args, what in (([f"--filename={d}/missing.dat"], "missing.dat"),  # no size to create it
                           (["--filename=/dev/null", "--size=1m"], "/dev/null"),  # not a file or device
                           ([f"--filename={d}/new.dat", "--size=1k", "--bs=4k"], "block")):
            rc, out, err = bl.run(["--name=j", "--ioengine=null", f"--output={report}"] + args, cwd=d)
            check(rc == 1 and what in err, f"{args}: exit {rc}: {err.strip()}")
            check(os.listdir(d) == [], f"{args}: left {os.listdir(d)}")
        # The engine chosen by UWDF_BACKEND counts for --verify too.
        rc, out, err = bl.run(["--name=j", f"--filename={d}/new.dat", "--size=1m", "--rw=write",
                               "--verify=crc32c", f"--output={report}"], cwd=d, env={"UWDF_BACKEND": "null"})
        check(rc == 1 and "verify" in err and "null" in err, f"UWDF_BACKEND=null --verify: exit {rc}: {err}")
        check(os.listdir(d) == [], f"UWDF_BACKEND=null --verify: left {os.listdir(d)}")


def per_job(report):
    return {j["jobname"]: j for j in report["jobs"]}


def job_file_global_sections_apply_to_the_jobs_after_them():
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "inherit.fio"), f"""; uwdf-bench job file test
# both comment styles
[global]
ioengine=null
filename={d}/data.dat
size=1m
bs=8k
number_ios=10

[a]
rw=read

[b]
rw=write
bs=16k
iodepth=2

[global]
number_ios=5

[c]
rw=randread
""")
        rep = bl.run_json([jf], cwd=d)
        jobs = per_job(rep)
        check(sorted(jobs) == ["a", "b", "c"], f"jobs {sorted(jobs)}")
        a, b, c = jobs["a"], jobs["b"], jobs["c"]
        check(a["read"]["total_ios"] == 10 and a["read"]["io_bytes"] == 10 * 8192 and
              a["write"]["total_ios"] == 0, f"a: {a['read']['total_ios']} reads of {a['read']['io_bytes']} B")
        check(b["write"]["total_ios"] == 10 and b["write"]["io_bytes"] == 10 * 16384 and
              b["read"]["total_ios"] == 0, f"b: {b['write']['total_ios']} writes of {b['write']['io_bytes']} B")
        check(c["read"]["total_ios"] == 5 and c["read"]["io_bytes"] == 5 * 8192,
              f"c (second [global]): {c['read']['total_ios']} reads of {c['read']['io_bytes']} B")
        for j in (a, b, c):
            check(j["uwdf"]["backend"] == "null", f"{j['jobname']}: backend {j['uwdf']['backend']}")
        check(a["uwdf"]["requests"] == 1 and b["uwdf"]["requests"] == 2 and c["uwdf"]["requests"] == 1,
              "iodepth of a job section leaked to the next")
        # fio's JSON: a job's own options, and the [global] ones apart.
        check(b["job options"] == {"rw": "write", "bs": "16k", "iodepth": "2"},
              f"b job options {b['job options']}")
        g = rep.get("global options", {})
        check(g.get("ioengine") == "null" and g.get("bs") == "8k" and g.get("number_ios") == "5",
              f"global options {g}")
        check(not os.path.exists(os.path.join(d, "data.dat")) or
              os.path.getsize(os.path.join(d, "data.dat")) == 1 << 20, "data.dat size")


def command_line_options_before_a_job_file_are_its_global_defaults():
    with bl.TempDir() as d:
        jf = bl.write_file(os.path.join(d, "j.fio"), f"""[global]
bs=8k
[x]
filename={d}/data.dat
size=1m
number_ios=6
""")
        # --bs is overridden by the file's [global]; --iodepth and --ioengine apply.
        rep = bl.run_json(["--bs=4k", "--iodepth=3", "--ioengine", "null", jf], cwd=d)
        x = per_job(rep)["x"]
        check(x["read"]["io_bytes"] == 6 * 8192, f"io_bytes {x['read']['io_bytes']}: the job file's bs lost")
        check(x["uwdf"]["requests"] == 3, f"requests {x['uwdf']['requests']}: --iodepth lost")
        check(x["uwdf"]["backend"] == "null", f"backend {x['uwdf']['backend']}")


def command_line_jobs_follow_fio():
    with bl.TempDir() as d:
        data = os.path.join(d, "data.dat")
        rep = bl.run_json(["--ioengine=null", f"--filename={data}", "--size=1m", "--number_ios=4",
                           "--name=global", "--bs=8k",
                           "--name=r", "--rw=read",
                           "--name=w", "--rw", "write", "--bs", "16k", "--numjobs=2"], cwd=d)
        names = [j["jobname"] for j in rep["jobs"]]
        check(names == ["r", "w", "w"], f"jobs {names} (numjobs=2 makes two w)")
        r, w1, w2 = rep["jobs"]
        check(r["read"]["io_bytes"] == 4 * 8192 and r["write"]["total_ios"] == 0,
              f"r: {r['read']['io_bytes']} B read")
        for w in (w1, w2):
            check(w["write"]["io_bytes"] == 4 * 16384 and w["read"]["total_ios"] == 0,
                  f"w: {w['write']['io_bytes']} B written")
        # group_reporting (as in fio: all the jobs of the group as one entry,
        # named after the first)
        rep = bl.run_json(["--ioengine=null", f"--filename={data}", "--size=1m", "--number_ios=4",
                           "--name=r", "--rw=read", "--name=w", "--rw=write", "--numjobs=2",
                           "--group_reporting"], cwd=d)
        names = [j["jobname"] for j in rep["jobs"]]
        check(names == ["r"], f"group_reporting: jobs {names}")
        check(rep["jobs"][0]["read"]["total_ios"] == 4 and rep["jobs"][0]["write"]["total_ios"] == 8,
              "group_reporting: totals")
        # Bare flags do not swallow a job file name; "--flag 0" takes the 0.
        jf = bl.write_file(os.path.join(d, "t.fio"), f"[t]\nfilename={data}\nsize=1m\nioengine=null\n"
                                                     "number_ios=2\n")
        rep = bl.run_json(["--thread", jf, "--direct", "0"], cwd=d)
        check(list(per_job(rep)) == ["t"], f"jobs {list(per_job(rep))}")
        check(per_job(rep)["t"]["read"]["total_ios"] == 2, "t: total_ios")


def no_job_prints_fios_usage_and_exits_1():
    """As fio: "No job(s) defined" on stderr, the usage on stdout, exit 1,
    nothing created; compared with fio itself when it is installed."""
    with bl.TempDir() as d:
        rc, out, err = bl.run([], cwd=d)
        check(rc == 1, f"exit {rc}")
        check(err.splitlines()[:1] == ["No job(s) defined"], f"stderr {err!r}")
        check(out.splitlines()[1:2] == ["uwdf-bench [options] [job options] <job file(s)>"], f"usage {out[:200]!r}")
        check(os.listdir(d) == [], f"left behind: {os.listdir(d)}")
        if bl.tool("fio"):
            p = subprocess.run(["fio"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            check(p.returncode == rc, f"fio exits {p.returncode}, uwdf-bench {rc}")
            check(p.stderr.splitlines()[:1] == err.splitlines()[:1], f"fio: {p.stderr!r}, uwdf-bench: {err!r}")
            check(p.stdout.splitlines()[1].replace("fio", "uwdf-bench") == out.splitlines()[1],
                  f"usage line: fio {p.stdout.splitlines()[1]!r}")


def timeout_is_fios_alias_of_runtime():
    with bl.TempDir() as d:
        rep = bl.run_json(["--name=t", "--ioengine=null", "--size=1m", "--time_based", "--timeout=300ms"], cwd=d)
        rt = rep["jobs"][0]["job_runtime"]
        check(250 <= rt <= 2000, f"job_runtime {rt} ms for --timeout=300ms")
        check(rep["jobs"][0]["uwdf"]["request_timeout_us"] == 0, "timeout set a request timeout")
        # the per-request timeout has its own name: milliseconds without a unit (µs given
        # in a unit, but long enough that a loaded machine cannot time a null I/O out)
        for val, us in (("5000", 5000000), ("2s", 2000000), ("1500001us", 1500001)):
            rep = bl.run_json(["--name=t", "--ioengine=null", "--size=1m", "--number_ios=8",
                               f"--request_timeout={val}"], cwd=d)
            got = rep["jobs"][0]["uwdf"]["request_timeout_us"]
            check(got == us, f"--request_timeout={val}: {got} us, expected {us}")
            check(rep["jobs"][0]["read"]["total_ios"] == 8, f"--request_timeout={val}: I/Os")
        rc, out, _ = bl.run(["--cmdhelp=timeout"])
        check(rc == 0 and re.search(r"^\s+runtime: ", out, re.M) and re.search(r"alias: timeout", out),
              f"--cmdhelp=timeout: {out!r}")


# Typos of options fio and uwdf-bench share; fio's suggestion is the check.
TYPOS = ["rww", "iodepht", "runtme", "blocksze", "numjbos", "filenme", "ioengne", "randsed", "rwmixred",
         "timebased"]


def unknown_options_suggest_the_closest_name_as_fio():
    with bl.TempDir() as d:
        for typo in TYPOS:
            rc, out, err = bl.run(["--name=j", "--ioengine=null", "--size=1m", f"--{typo}=1"], cwd=d)
            m = re.search(r"did you mean --([\w-]+)\?", err)
            check(rc == 1 and m, f"--{typo}: exit {rc}, no suggestion: {err.strip()}")
            jf = bl.write_file(os.path.join(d, "t.fio"), f"[j]\nioengine=null\nsize=1m\n{typo}=1\n")
            rc, _, err2 = bl.run([jf], cwd=d)
            m2 = re.search(r"did you mean '([\w-]+)'\?", err2)
            check(rc == 1 and m2 and m2.group(1) == m.group(1), f"{typo} in a job file: {err2.strip()}")
            if bl.tool("fio"):
                p = subprocess.run(["fio", "--name=j", "--ioengine=null", "--size=1m", f"--{typo}=1"], cwd=d,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
                f = re.search(r"Did you mean (\S+)\?", p.stdout + p.stderr)
                check(p.returncode == 1 and f and f.group(1) == m.group(1),
                      f"--{typo}: fio suggests {f.group(1) if f else None}, uwdf-bench {m.group(1)}")
        rc, _, err = bl.run(["--cmdhelp=iodepht"])
        check(rc == 1 and "iodepth" in err, f"--cmdhelp=iodepht: exit {rc}: {err.strip()}")
        rc, _, err = bl.run(["--name=j", "--zzzzzzzzzzzz=1"])
        check(rc == 1 and "did you mean" not in err, f"far from every name, yet: {err.strip()}")


def substitutions_as_fio():
    """${VAR} in job files and $ncpus: the same job file (null engine) gives
    fio and uwdf-bench the same jobs, I/O counts and bytes."""
    with bl.TempDir() as d:
        ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
        text = ("[global]\nioengine=null\nsize=${SZ}\nrw=read\n"
                "[e]\nbs=8k\nnumber_ios=${N}\nnumjobs=$ncpus\n"
                "[f]\nbs=2k\nnumber_ios=33\n")
        jf = bl.write_file(os.path.join(d, "e.fio"), text)
        env = {"SZ": "1m", "N": "17"}
        rep = bl.run_json([jf], cwd=d, env=env)
        jobs = [(j["jobname"], j["read"]["total_ios"], j["read"]["io_bytes"]) for j in rep["jobs"]]
        want = [("e", 17, 17 * 8192)] * ncpu + [("f", 33, 33 * 2048)]
        check(jobs == want, f"uwdf-bench: {jobs}, expected {want}")
        # --parse-only: checked, nothing run
        rc, out, err = bl.run(["--parse-only", jf], cwd=d, env=env)
        check(rc == 0 and out == "" and err == "", f"--parse-only: exit {rc}: {err.strip()}")
        check(sorted(os.listdir(d)) == ["e.fio"], f"--parse-only left {os.listdir(d)}")
        if bl.tool("fio"):
            p = subprocess.run(["fio", "--output-format=json", jf], cwd=d, env=dict(os.environ, **env),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
            check(p.returncode == 0, f"fio: exit {p.returncode}: {p.stderr.strip()}")
            fj = json.loads(p.stdout[p.stdout.index("{"):])
            fjobs = [(j["jobname"], j["read"]["total_ios"], j["read"]["io_bytes"]) for j in fj["jobs"]]
            check(fjobs == jobs, f"fio: {fjobs}, uwdf-bench: {jobs}")


def expressions_compute_as_fio_documents():
    """fio's arithmetic in parentheses and its "simple math" on $ncpus
    (Debian's fio is built without the arithmetic, so uwdf-bench alone)."""
    with bl.TempDir() as d:
        ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
        rep = bl.run_json(["--ioengine=null", "--size=(512k*2)", "--name=e", "--bs=(4k*2)",
                           "--number_ios=(2*8+1)", "--name=f", "--bs=(1k+1k)", "--number_ios=(100/3)",
                           "--name=g", "--number_ios=$ncpus*3"], cwd=d)
        jobs = [(j["jobname"], j["read"]["total_ios"], j["read"]["io_bytes"]) for j in rep["jobs"]]
        want = [("e", 17, 17 * 8192), ("f", 33, 33 * 2048), ("g", 3 * ncpu, 3 * ncpu * 4096)]
        check(jobs == want, f"{jobs}, expected {want}")
        rc, _, err = bl.run(["--parse-only", "--name=x", "--bs=(4k*"], cwd=d)
        check(rc == 1 and "bs" in err, f"--parse-only with a bad value: exit {rc}")
        # a time whose numbers carry no unit is in the option's own unit (s)
        rep = bl.run_json(["--name=t", "--ioengine=null", "--size=1m", "--time_based", "--runtime=(0.1*3)"], cwd=d)
        rt = rep["jobs"][0]["job_runtime"]
        check(250 <= rt <= 2000, f"job_runtime {rt} ms for --runtime=(0.1*3)")
        rep = bl.run_json(["--name=t", "--ioengine=null", "--size=1m", "--time_based", "--runtime=(2*150ms)"], cwd=d)
        rt = rep["jobs"][0]["job_runtime"]
        check(250 <= rt <= 2000, f"job_runtime {rt} ms for --runtime=(2*150ms)")


def written_blocks(d, extra):
    """The 4 KiB blocks of a zeroed 1 MiB file that 8 random writes hit."""
    path = os.path.join(d, "rr.dat")
    with open(path, "wb") as f:
        f.write(bytes(1 << 20))
    rep = bl.run_json(["--name=r", f"--filename={path}", "--rw=randwrite", "--bs=4k", "--number_ios=8",
                       "--ioengine=io_uring"] + extra, cwd=d)
    check(rep["jobs"][0]["write"]["total_ios"] == 8, f"{extra}: writes")
    with open(path, "rb") as f:
        data = f.read()
    return {i for i in range(256) if any(data[i * 4096:(i + 1) * 4096])}


def randrepeat_and_randseed_as_fio():
    """randrepeat=1 (the default): the same offsets every run; 0: new ones,
    unless randseed is given."""
    with bl.TempDir() as d:
        a, b = written_blocks(d, []), written_blocks(d, [])
        check(len(a) == 8 and a == b, f"randrepeat=1: {sorted(a)} then {sorted(b)}")
        c, e = written_blocks(d, ["--randrepeat=0"]), written_blocks(d, ["--randrepeat=0"])
        check(len(c) == 8 and c != e and c != a, f"randrepeat=0: {sorted(c)} then {sorted(e)} (default {sorted(a)})")
        f, g = written_blocks(d, ["--randrepeat=0", "--randseed=7"]), written_blocks(d, ["--randseed=7"])
        check(f == g and f != a, f"randseed=7: {sorted(f)} with randrepeat=0, {sorted(g)} without")


def help_and_version():
    rc, out, err = bl.run(["--help"])
    check(rc == 0 and "uwdf-bench [options] [job options] <job file(s)>" in out and err == "",
          f"--help: exit {rc}")
    for opt in ("--filename", "--rw", "--bs", "--iodepth", "--numjobs", "--runtime", "--verify",
                "--api", "--reuse", "--request_timeout", "--output-format", "--eta",
                "--parse-only", "--cmdhelp"):
        check(opt in out, f"--help does not document {opt}")
    rc, out, err = bl.run(["--version"])
    check(rc == 0 and re.fullmatch(r"uwdf-bench-\S+\n", out), f"--version: exit {rc}: {out!r}")


if __name__ == "__main__":
    bl.main([
        ("help_and_version", help_and_version),
        ("bad_command_line_options_are_refused_and_nothing_runs",
         bad_command_line_options_are_refused_and_nothing_runs),
        ("bad_job_files_are_refused_with_file_and_line", bad_job_files_are_refused_with_file_and_line),
        ("jobs_that_cannot_start_leave_no_report_file", jobs_that_cannot_start_leave_no_report_file),
        ("job_file_global_sections_apply_to_the_jobs_after_them",
         job_file_global_sections_apply_to_the_jobs_after_them),
        ("command_line_options_before_a_job_file_are_its_global_defaults",
         command_line_options_before_a_job_file_are_its_global_defaults),
        ("command_line_jobs_follow_fio", command_line_jobs_follow_fio),
        ("no_job_prints_fios_usage_and_exits_1", no_job_prints_fios_usage_and_exits_1),
        ("timeout_is_fios_alias_of_runtime", timeout_is_fios_alias_of_runtime),
        ("unknown_options_suggest_the_closest_name_as_fio", unknown_options_suggest_the_closest_name_as_fio),
        ("substitutions_as_fio", substitutions_as_fio),
        ("randrepeat_and_randseed_as_fio", randrepeat_and_randseed_as_fio),
        ("expressions_compute_as_fio_documents", expressions_compute_as_fio_documents),
    ])
