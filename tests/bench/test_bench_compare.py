#!/usr/bin/env python3
"""bench/compare-fio: fio at its defaults and at its best batching beside
uwdf-bench at its defaults and with fio's batching options, the three
tables printed with the uwdf/fio ratios of IOPS, p99 and p99.9, the gnuplot
picture of IOPS and p99, and the latency-vs-QD picture.

A short run on the null engines of a small file (no root, no device): what
is checked is the shape (both modes, the batching options on fio's command
line, a row per case with figures, the SVG), not any performance. The
outside CPU per I/O is checked against each tool's own figure (the same
run's, loosely: a process tree or I/O count gone wrong is off by far more),
and its choice of window on made-up interim reports.
"""


import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import check  # noqa: E402

SRCDIR = os.environ.get("srcdir", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
COMPARE = os.path.abspath(os.path.join(SRCDIR, "bench", "compare-fio"))
US = r"[\d.]+ us"
RATIO = r"([\d.]+|-)"
# case, IOPS, IOPS, ratio, outside CPU/IO fio, uwdf, ratio, own CPU/IO fio, uwdf, p99s, p99.9s
ROW = re.compile(r"^null QD(\d+) +[\d.]+[kM]? +[\d.]+[kM]? +[\d.]+ +([\d.]+) us +([\d.]+) us +%s +%s +%s +%s +%s "
                 r"+%s +%s +%s +%s +null$" % (RATIO, US, US, US, US, RATIO, US, US, RATIO))
# -v: each run's figures, ns
RUN = re.compile(r"^  (\w+(?: batched)?) null QD(\d+) round 1: .*, ([\d.]+) us CPU/IO own, ([\d.]+) us outside, "
                 r"p99 (\d+) ns, p99.9 (\d+) ns,")


def load_compare():
    return bl.load_script(COMPARE, "compare_fio")


def check_ratio(text, uwdf_ns, fio_ns, what, rel=1e-9):
    """rel: the -v figures' own rounding, relative"""
    if fio_ns == 0:
        check(text == "-", f"{what}: fio's is 0, the ratio {text!r} should be '-'")
        return
    want = uwdf_ns / fio_ns
    check(text != "-" and abs(float(text) - want) <= 0.005 + rel * want,
          f"{what}: printed {text}, uwdf {uwdf_ns} ns / fio {fio_ns} ns = {want:.4f}")


def compare_fio_prints_both_modes_and_plots():
    bl.tool("fio")
    bl.tool("gnuplot", "gnuplot-nox")
    with bl.TempDir() as d:
        target = bl.make_data_file(os.path.join(d, "t.img"), 4 << 20)
        svg = os.path.join(d, "cmp.svg")
        lat = os.path.join(d, "lat.svg")
        env = dict(os.environ, **bl.BENCH_ENV)
        p = subprocess.run([sys.executable, COMPARE, f"--bench={bl.BENCH}", f"--filename={target}", "--size=4m",
                            "--engines=null", "--iodepths=1,4", "--runtime=2", "--rounds=1", f"--plot={svg}",
                            f"--lat-plot={lat}", "-v"],
                           cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        out = p.stdout
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr[-800:]}\n{out}")
        lines = out.splitlines()
        batched = [ln for ln in lines if ln.startswith("  fio batched:") and "--iodepth=4 " in ln]
        check(batched and all(o in batched[0] for o in ("--iodepth_batch_submit=4", "--iodepth_batch_complete_min=1",
                                                        "--iodepth_batch_complete_max=4")),
              f"fio's batched command: {batched}")
        check(any(ln.startswith("  fio default:") and "--iodepth_batch" not in ln for ln in lines),
              "no fio command at its defaults")
        # uwdf-bench with its defaults, and beside fio batched with the same options
        ubatched = [ln for ln in lines if ln.startswith("  uwdf batched:") and "--iodepth=4 " in ln]
        check(ubatched and ubatched[0].split("--iodepth_batch_submit")[1] == batched[0].split("--iodepth_batch_submit")[1],
              f"uwdf's batched command differs from fio's: {ubatched} {batched}")
        check(any(ln.startswith("  uwdf:") and "--iodepth_batch" not in ln for ln in lines),
              "no uwdf command at its defaults")
        heads = [i for i, ln in enumerate(lines) if ln.startswith("fio defaults") or ln.startswith("fio at its best")]
        check(len(heads) == 3, f"expected three tables (fio defaults and batched against uwdf's defaults, "
                               f"fio batched against uwdf batched), got:\n{out}")
        check(sum("uwdf with the same options" in lines[i] for i in heads) == 1, f"no batched pairing:\n{out}")
        runs = {}
        for ln in p.stderr.splitlines():
            m = RUN.match(ln)
            if m:
                runs[(m.group(1), int(m.group(2)))] = (int(m.group(5)), int(m.group(6)), float(m.group(3)),
                                                       float(m.group(4)))
        check(len(runs) == 8, f"-v figures of 4 runs per depth expected: {sorted(runs)}\n{p.stderr[-2000:]}")
        for key, (_, _, own, outside) in runs.items():
            # the whole tree in the steady window against the tool's own account of its
            # job: close on the null engine; fio's job process left out would be a few %
            # of it, a window's I/Os against the whole run's count some 0.6
            check(0.75 <= outside / own <= 1.33, f"{key}: outside CPU/IO {outside} us, own {own} us")
        # the tables against uwdf's defaults: their ratios are those of the -v figures
        for i, mode in zip(heads[:2], ("default", "batched")):
            for k in (3, 4):
                m = ROW.match(lines[i + k])
                check(m, f"row of {lines[i]!r}: {lines[i + k]!r}")
                qd = int(m.group(1))
                u, f = runs.get(("uwdf", qd)), runs.get((mode, qd))
                check(u and f, f"no -v figures for QD{qd}: {sorted(runs)}")
                check(abs(float(m.group(2)) - f[3]) < 0.0011 and abs(float(m.group(3)) - u[3]) < 0.0011,
                      f"{mode} QD{qd} outside CPU/IO {m.group(2)} {m.group(3)} against -v's {f[3]} {u[3]}")
                # -v's four decimals of 0.1 us or more: 0.1 % each
                check_ratio(m.group(4), u[3], f[3], f"{mode} QD{qd} CPU/IO u/f", rel=2e-3)
                check_ratio(m.group(5), u[0], f[0], f"{mode} QD{qd} p99 u/f")
                check_ratio(m.group(6), u[1], f[1], f"{mode} QD{qd} p99.9 u/f")
        for k in (3, 4):
            check(ROW.match(lines[heads[2] + k]), f"row of {lines[heads[2]]!r}: {lines[heads[2] + k]!r}")
        check(os.path.exists(svg), "no plot")
        with open(svg) as f:
            text = f.read()
        check(all(s in text for s in ("fio batched", "uwdf", "null QD4", "IOPS", "p99")), "the plot lacks its series")
        check(os.path.exists(lat), "no latency plot")
        with open(lat) as f:
            text = f.read()
        want = [f"{t} {p}" for t in ("fio", "fio batched", "uwdf") for p in ("p50", "p99", "p99.9")]
        check(all(s in text for s in want + ["queue depth", "clat (us)"]),
              f"the latency plot lacks {[s for s in want if s not in text]}")


def rbd_random_writes_run_both_tools_without_random_map():
    # fio's random map clusters its writes (next free block on a repeat),
    # which librbd merges: on rbd both tools get uniform offsets for random
    # writes, the same options for both, --randommap keeps the maps
    cf = load_compare()

    class Ceph:
        def opts(self):
            return ["--ioengine=rbd", "--pool=p", "--rbdname=i", "--clientname=admin"]

    class Target:
        path, size, ceph, nbd = "/dev/null", 1 << 20, Ceph(), None

    class Args:
        rw, bs, runtime, ramp_time, size, opt, randommap, outside_cpu = "randwrite", "4k", 1, 0, 1 << 20, [], False, True

    args = Args()
    for rw, engine, keep, want in (("randwrite", "rbd", False, True), ("randrw", "rbd", False, True),
                                   ("randtrim", "rbd", False, False), ("randread", "rbd", False, False),
                                   ("write", "rbd", False, False), ("randwrite", "rbd", True, False),
                                   ("randwrite", "io_uring", False, False)):
        args.rw, args.randommap = rw, keep
        cmds = {t: cf.common_opts(Target(), (engine, 32), args, t) for t in ("fio", "uwdf")}
        check(cmds["fio"] == cmds["uwdf"], f"{rw} on {engine}: the tools' options differ: {cmds}")
        check(("--norandommap" in cmds["fio"]) == want,
              f"{rw} on {engine}{' --randommap' if keep else ''}: --norandommap "
              f"{'missing' if want else 'given'}: {cmds['fio']}")


def runs_the_binary_behind_the_libtool_wrapper():
    # ./uwdf-bench in a shared build is libtool's wrapper script, whose shell
    # and forks cost ~0.1 s of CPU per run in wait4's rusage (the rbd rows'
    # CPU/IO) and more wall time: compare-fio runs the ELF behind it
    wrapper = bl.bench_path()
    with open(wrapper, "rb") as f:
        if not f.read(2) == b"#!":
            raise bl.Skip(f"{wrapper} is no wrapper script (a static build, or UWDF_BENCH)")
    bl.tool("fio")
    cf = load_compare()
    real, env = cf.unwrap_libtool(wrapper)
    with open(real, "rb") as f:
        check(f.read(4) == b"\x7fELF", f"unwrap_libtool({wrapper}) = {real}, not a binary")
    check(env.get("LD_LIBRARY_PATH"), f"no library path for {real}: {env}")
    # and a run takes it, given the wrapper
    with bl.TempDir() as d:
        target = bl.make_data_file(os.path.join(d, "t.img"), 1 << 20)
        p = subprocess.run([sys.executable, COMPARE, f"--bench={wrapper}", f"--filename={target}", "--size=1m",
                            "--engines=null", "--iodepths=1", "--runtime=1", "--rounds=1", "--fio-modes=default",
                            "--uwdf-modes=default", "--no-outside-cpu"],
                           cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr[-800:]}")
        cmd = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("  uwdf:")]
        check(cmd == [real], f"uwdf-bench ran as {cmd}, not {real}")


def stand_in(path, ios):
    """A stand-in for fio or uwdf-bench: --version, else one job of ios
    reads in fio's JSON; each run appends its CEPH_ARGS (or "unset") to
    PATH.log."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                "[ \"$1\" = --version ] && { echo tool-1; exit 0; }\n"
                "echo \"${CEPH_ARGS-unset}\" >> \"$0.log\"\n"
                "echo '{\"jobs\": [{\"read\": {\"total_ios\": %d, \"iops\": %d, \"clat_ns\": {}},"
                " \"usr_cpu\": 0, \"sys_cpu\": 0, \"job_runtime\": 1}]}'\n" % (ios, ios))
    os.chmod(path, 0o755)


def ceph_args_reach_both_tools_only():
    # --ceph-args: CEPH_ARGS in both tools' runs, nothing added without it
    # (the cluster's ceph CLI, which refuses librbd options, never sees it)
    cf = load_compare()

    class Args:
        ceph_args = "--rbd_io_scheduler=none"

    env = cf.tool_env(Args())
    check(env and env.get("CEPH_ARGS") == "--rbd_io_scheduler=none", f"CEPH_ARGS not set: {env and env.get('CEPH_ARGS')}")
    check(env.get("PATH") == os.environ.get("PATH"), "the rest of the environment is not kept")
    Args.ceph_args = None
    check(cf.tool_env(Args()) is None, "an environment of its own without --ceph-args")
    # through a whole run: stand-ins for both tools note what they got
    with bl.TempDir() as d:
        fake = os.path.join(d, "tool")
        stand_in(fake, 1)
        target = bl.make_data_file(os.path.join(d, "t.img"), 1 << 20)
        for extra, want in ((["--ceph-args=--x=1"], "--x=1"), ([], "unset")):
            if os.path.exists(fake + ".log"):
                os.unlink(fake + ".log")
            p = subprocess.run([sys.executable, COMPARE, f"--bench={fake}", f"--fio={fake}", f"--filename={target}",
                                "--size=1m", "--engines=null", "--iodepths=1", "--runtime=1", "--rounds=1",
                                "--fio-modes=default", "--uwdf-modes=default"] + extra,
                               cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
            check(p.returncode == 0, f"exit {p.returncode}: {p.stderr[-800:]}")
            with open(fake + ".log") as f:
                got = f.read().split()
            check(got == [want, want], f"{extra}: the two runs had CEPH_ARGS {got}, not {want}")


def rbd_rows_report_osd_ops_per_io():
    # the OSD's operations per I/O of each tool, from its counter read
    # before and after each run: here 900 per run, against 1000 fio I/Os
    # and 2000 uwdf I/Os
    import contextlib
    import io
    cf = load_compare()

    class FakeCeph:
        def __init__(self, args):
            self.ops, self.after = 5000, False

        def opts(self):
            return ["--ioengine=rbd", "--pool=p", "--rbdname=i", "--clientname=admin"]

        def osd_ops(self):
            if self.after:
                self.ops += 900
            self.after = not self.after
            return self.ops

        def stop(self):
            pass

    cf.CephCluster = FakeCeph
    with bl.TempDir() as d:
        stand_in(os.path.join(d, "fio"), 1000)
        stand_in(os.path.join(d, "bench"), 2000)
        out = io.StringIO()
        argv = sys.argv
        sys.argv = ["compare-fio", f"--bench={d}/bench", f"--fio={d}/fio", "--engines=rbd", "--iodepths=1,32",
                    "--runtime=1", "--rounds=3", "--fio-modes=default", "--uwdf-modes=default", "--size=1m"]
        try:
            with contextlib.redirect_stdout(out):
                rc = cf.main()
        finally:
            sys.argv = argv
        text = out.getvalue()
        check(rc == 0, f"exit {rc}:\n{text}")
        for qd in (1, 32):
            check(re.search(r"^  rbd QD%d +fio default 0\.900  uwdf 0\.450$" % qd, text, re.M),
                  f"no OSD operations per I/O for QD{qd} (fio 0.900, uwdf 0.450):\n{text}")


def steady_window_leaves_out_setup_ramp_and_end():
    """Made-up interim reports (wall s, {pid: CPU s}, I/Os, job runtime ms,
    timestamp ms) at 100k IOPS, 0.5 s of CPU a second in the job process 2:
    one from setup, two from the ramp (its end resets the counts), four
    steady ones, sampled 10 to 50 ms after their timestamps, with process 3
    born inside the window, and one after the I/O stopped. The window is
    the four steady reports, the I/Os carried to the samples' moments; with
    a process of the first gone by the last, it ends at the one before."""
    cf = load_compare()

    def steady(t, lag, gone=99.0):
        w = t + lag
        return (w, {1: 0.3, 2: 0.5 * (w - 10.0), 3: 0.1 * (w - 11.2) if w > 11.2 else None,
                    4: 0.05 if t < gone else None}, round(100000 * (t - 11.0)) + 20000,
                round((t - 11.0) * 1000) + 200, round(t * 1000))

    def points(gone):
        pts = [(10.01, {1: 0.2}, 0, 0, 10000),
               (10.41, {1: 0.3, 2: 0.2}, 30000, 300, 10400),
               (10.81, {1: 0.3, 2: 0.4}, 70000, 700, 10800)]
        pts += [steady(t, lag, gone) for t, lag in ((11.0, 0.010), (11.5, 0.030), (12.0, 0.020), (12.5, 0.050))]
        pts += [(13.02, {1: 0.3, 2: 0.5 * 3.0}, 170000, 1700, 13000)]
        return [(w, {q: c for q, c in cpus.items() if c is not None}, ios, rt, ts) for w, cpus, ios, rt, ts in pts]

    pts = points(99.0)
    got = cf.steady_window(pts)
    check(got is not None, "no window")
    want_cpu = 0.5 * 1.54 + 0.1 * (12.55 - 11.2)
    check(abs(got["window_s"] - 1.54) < 1e-9, f"window {got['window_s']} s, want 1.54 s (11.01 to 12.55)")
    check(abs(got["ios"] - 154000) < 1e-6, f"{got['ios']} I/Os, want 154000 (carried to the samples)")
    check(abs(got["cpu_s"] - want_cpu) < 1e-9, f"{got['cpu_s']} s CPU, want {want_cpu}")
    check(abs(got["cpu_per_io_s"] - want_cpu / 154000) < 1e-15, f"{got['cpu_per_io_s']} s per I/O")
    # process 4 gone at 12.5: the window ends at 12.0 (12.02), 101000 I/Os
    cut = cf.steady_window(points(12.5))
    want_cpu = 0.5 * 1.01 + 0.1 * (12.02 - 11.2)
    check(cut and abs(cut["window_s"] - 1.01) < 1e-9 and abs(cut["ios"] - 101000) < 1e-6
          and abs(cut["cpu_s"] - want_cpu) < 1e-9, f"process 4 gone at the last report: {cut}")
    check(cf.steady_window(pts[:1] + pts[3:4] + pts[-1:]) is None, "a window from one steady report")
    check(cf.steady_window([]) is None, "a window without reports (a tool that printed only its final one)")
    two = cf.steady_window(pts[1:5] + pts[-1:])
    check(two and abs(two["window_s"] - 0.52) < 1e-9, f"of two series as long, not the later one: {two}")


if __name__ == "__main__":
    bl.main([("compare_fio_prints_both_modes_and_plots", compare_fio_prints_both_modes_and_plots),
             ("rbd_random_writes_run_both_tools_without_random_map", rbd_random_writes_run_both_tools_without_random_map),
             ("ceph_args_reach_both_tools_only", ceph_args_reach_both_tools_only),
             ("rbd_rows_report_osd_ops_per_io", rbd_rows_report_osd_ops_per_io),
             ("runs_the_binary_behind_the_libtool_wrapper", runs_the_binary_behind_the_libtool_wrapper),
             ("steady_window_leaves_out_setup_ramp_and_end", steady_window_leaves_out_setup_ramp_and_end)])

