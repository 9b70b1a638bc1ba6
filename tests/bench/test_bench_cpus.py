#!/usr/bin/env python3
"""uwdf-bench: fio's cpus_allowed and cpus_allowed_policy.

The job threads run on the CPUs the option gives (seen in /proc while the
run goes on): shared puts every job on the whole set, split one job per
CPU of the set. The values fio accepts and refuses are accepted and refused.
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402


def thread_cpu_lists(args, d, want_threads):
    """Starts uwdf-bench (args) and returns the Cpus_allowed_list of each of
    its threads once want_threads of them are pinned to less than all."""
    env = dict(os.environ)
    env.pop("UWDF_BACKEND", None)
    env.update(bl.BENCH_ENV)
    every = subprocess.run(["nproc", "--all"], stdout=subprocess.PIPE, text=True).stdout.strip()
    every = "0" if every == "1" else f"0-{int(every) - 1}"
    p = subprocess.Popen(list(bl.WRAP) + [bl.BENCH] + args, cwd=d, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline and p.poll() is None:
            seen = []
            try:
                for tid in os.listdir(f"/proc/{p.pid}/task"):
                    with open(f"/proc/{p.pid}/task/{tid}/status") as f:
                        for ln in f:
                            if ln.startswith("Cpus_allowed_list:"):
                                seen.append(ln.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                pass
            if sum(c != every for c in seen) >= want_threads:
                break
            time.sleep(0.02)
        return sorted(c for c in seen if c != every)
    finally:
        p.kill()
        p.wait()


def job_threads_run_on_the_cpus_given():
    if os.cpu_count() < 2:
        raise bl.Skip("needs 2 CPUs")
    with bl.TempDir() as d:
        base = ["--ioengine=null", "--size=1m", "--time_based", "--runtime=10", "--api=sync",
                f"--filename={d}/data", "--output=/dev/null", "--eta=never"]
        got = thread_cpu_lists(["--name=s", "--numjobs=2", "--cpus_allowed=1"] + base, d, 2)
        check(got == ["1", "1"], f"cpus_allowed=1, numjobs=2: pinned threads {got}")
        got = thread_cpu_lists(["--name=p", "--numjobs=2", "--cpus_allowed=0-1", "--cpus_allowed_policy=split"] + base,
                               d, 2)
        check(got == ["0", "1"], f"cpus_allowed=0-1 split, numjobs=2: pinned threads {got}")


def values_as_fio():
    with bl.TempDir() as d:
        n = os.cpu_count()
        good = ["0", f"0-{n - 1}", f"{n - 1}-0", ",".join(str(c) for c in range(n))]
        bad = [str(n + 3), f"0-{n + 3}"]
        for v in good + bad:
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", f"--cpus_allowed={v}"],
                                cwd=d)
            check((rc == 0) == (v in good), f"cpus_allowed={v}: exit {rc}: {err.strip()}")
            if v in bad:
                check(f"CPU {n + 3} too large (max={n - 1})" in err, f"cpus_allowed={v}: {err.strip()}")
            if bl.tool("fio"):
                # (fio checks the options before --parse-only: it goes last)
                p = subprocess.run(["fio", "--name=x", "--ioengine=null", "--size=1m", f"--cpus_allowed={v}",
                                    "--parse-only"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, timeout=60)
                check(("failed parsing" in p.stdout) == (v in bad), f"fio, cpus_allowed={v}: {p.stdout.strip()}")
        for v, ok in (("shared", True), ("split", True), ("bogus", False)):
            rc, _, err = bl.run(["--parse-only", "--name=x", "--ioengine=null", "--size=1m", "--cpus_allowed=0",
                                 f"--cpus_allowed_policy={v}"], cwd=d)
            check((rc == 0) == ok, f"cpus_allowed_policy={v}: exit {rc}: {err.strip()}")


if __name__ == "__main__":
    bl.main([
        ("job_threads_run_on_the_cpus_given", job_threads_run_on_the_cpus_given),
        ("values_as_fio", values_as_fio),
    ])
