#!/usr/bin/env python3
"""bench/compare-fio: fio at its defaults and at its best batching beside
uwdf-bench, both tables printed, and the gnuplot picture of IOPS and p99.

A short run on the null engines of a small file (no root, no device): what
is checked is the shape (both modes, the batching options on fio's command
line, a row per case with figures, the SVG), not any performance.
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
ROW = re.compile(r"^null QD4 +[\d.]+[kM]? +[\d.]+[kM]? +[\d.]+ +[\d.]+ us +[\d.]+ us +\d+ us +\d+ us +null$")


def compare_fio_prints_both_modes_and_plots():
    bl.tool("fio")
    bl.tool("gnuplot", "gnuplot-nox")
    with bl.TempDir() as d:
        target = bl.make_data_file(os.path.join(d, "t.img"), 4 << 20)
        svg = os.path.join(d, "cmp.svg")
        env = dict(os.environ, **bl.BENCH_ENV)
        p = subprocess.run([sys.executable, COMPARE, f"--bench={bl.BENCH}", f"--filename={target}", "--size=4m",
                            "--engines=null", "--iodepths=4", "--runtime=1", "--rounds=1", f"--plot={svg}"],
                           cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
        out = p.stdout
        check(p.returncode == 0, f"exit {p.returncode}: {p.stderr[-800:]}\n{out}")
        lines = out.splitlines()
        batched = [ln for ln in lines if ln.startswith("  fio batched:")]
        check(batched and all(o in batched[0] for o in ("--iodepth_batch_submit=4", "--iodepth_batch_complete_min=1",
                                                        "--iodepth_batch_complete_max=4")),
              f"fio's batched command: {batched}")
        check(any(ln.startswith("  fio default:") and "--iodepth_batch" not in ln for ln in lines),
              "no fio command at its defaults")
        heads = [i for i, ln in enumerate(lines) if ln.startswith("fio defaults") or ln.startswith("fio at its best")]
        check(len(heads) == 2, f"expected the two tables, got:\n{out}")
        for i in heads:
            check(ROW.match(lines[i + 3]), f"row of {lines[i]!r}: {lines[i + 3]!r}")
        check(os.path.exists(svg), "no plot")
        with open(svg) as f:
            text = f.read()
        check(all(s in text for s in ("fio batched", "uwdf", "null QD4", "IOPS", "p99")), "the plot lacks its series")


if __name__ == "__main__":
    bl.main([("compare_fio_prints_both_modes_and_plots", compare_fio_prints_both_modes_and_plots)])
